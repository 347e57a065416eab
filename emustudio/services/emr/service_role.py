"""What the Studio's service role must allow when a Workspace attaches to a cluster.

On AWS the attach is EMR Studio's work, done as the Studio's service role: a session
``ElasticMapReduceEditorsSession`` of that role describes the cluster and makes a network
interface for the Workspace in the cluster's subnet, with the engine security group and the tag
``for-use-with-amazon-emr-managed-policies=true`` (AWS's documented service-role policy allows
``ec2:CreateNetworkInterface`` only under that tag, and only in subnets and groups that carry it).
Here the same session makes the same calls through the pipeline's in-process entry, so the
role's policies decide and CloudTrail records each call under the role. The network interface is
asked with ``DryRun`` (the check is real; the Workspace reaches the cluster through the gateway,
not through an interface): see ``docs/decisions.md``, "The service role at attach".
"""

from __future__ import annotations

from emustudio.aws.errors import AwsError
from emustudio.iam.documented import EMR_SERVICE, EMR_TAG
from emustudio.services.base import InProcessCall
from emustudio.services.emr.common import InvalidRequest
from emustudio.services.sts.studio import StudioSessionOperations

SESSION_NAME = "ElasticMapReduceEditorsSession"
AGENT = EMR_SERVICE  # CloudTrail's userAgent of a call a service makes
_FAILED = "Cluster failed to attach to the Workspace. Reason: Attaching the workspace(notebook)"


class ServiceRoleAttach:
    def __init__(self, sts: StudioSessionOperations, call: InProcessCall) -> None:
        self.sts = sts
        self.call = call

    async def check(
        self, service_role: str, cluster_id: str, subnet_id: str, engine_group: str
    ) -> None:
        """Raise the attach's failure (``InvalidRequestException``, AWS's words) unless the
        service role may do what the attach does."""
        try:
            issued = await self.sts.assume_service_role(service_role, SESSION_NAME)
        except AwsError as exc:
            raise InvalidRequest(f"{_FAILED} failed. {exc.message}") from exc
        session = issued.principal
        try:
            await self.call(
                session, "emr", "DescribeCluster", {"ClusterId": cluster_id}, user_agent=AGENT
            )
        except AwsError as exc:
            raise self._refused(exc) from exc
        interface = {
            "SubnetId": subnet_id,
            "Groups": [engine_group],
            "Description": f"EMR Studio Workspace attached to {cluster_id}",
            "TagSpecifications": [
                {"ResourceType": "network-interface", "Tags": [{"Key": EMR_TAG, "Value": "true"}]}
            ],
            "DryRun": True,
        }
        try:
            await self.call(session, "ec2", "CreateNetworkInterface", interface, user_agent=AGENT)
        except AwsError as exc:
            if exc.code != "DryRunOperation":
                raise self._refused(exc) from exc

    @staticmethod
    def _refused(exc: AwsError) -> InvalidRequest:
        return InvalidRequest(
            f"{_FAILED} failed. Service Role does not have the required permissions. {exc.message}"
        )
