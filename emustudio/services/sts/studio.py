"""EMR Studio assuming a Studio's roles: the user role on an Identity Center user's behalf, and
the service role for what the Studio itself does (attaching a Workspace to a cluster).

No STS operation of its own: in IAM Identity Center mode, EMR Studio (the service principal
``elasticmapreduce.amazonaws.com``) assumes the Studio's ``UserRole`` for the signed-in user with
the session policies of the user's session mappings, so the session may do what the role allows
*and* what one of those policies allows. The role's trust policy must let the service in
(``sts:AssumeRole`` for ``elasticmapreduce.amazonaws.com``), as the EMR Studio guide's user role
shows; otherwise it is refused as AWS refuses a service whose role does not trust it.
"""

from __future__ import annotations

from emustudio.iam import AuthzRequest, evaluate_trust
from emustudio.services.sts.common import AccessDenied, Issued, StsBase, trust_policy
from emustudio.store.iam_tables import IamRole

EMR_SERVICE = "elasticmapreduce.amazonaws.com"


class StudioSessionOperations(StsBase):
    async def assume_user_role(
        self,
        role_arn: str,
        session_name: str,
        policies: tuple[str, ...],
        *,
        duration: int,
        source_identity: str | None = None,
    ) -> Issued:
        """A role session of ``role_arn`` limited by ``policies`` (JSON documents, at least one).

        ``duration`` is capped at the role's ``MaxSessionDuration``. Raises ``AccessDenied`` when
        the role does not exist or does not trust EMR.
        """
        role = await self._trusting(
            role_arn,
            EMR_SERVICE,
            f"EMR Studio could not assume {role_arn}: the role does not exist or its trust policy"
            f" does not allow {EMR_SERVICE} to call sts:AssumeRole.",
        )
        return await self.issue_role_session(
            role,
            session_name,
            max(900, min(duration, role.max_session_duration)),
            policies=policies,
            source_identity=source_identity,
            federated=True,
        )

    async def assume_service_role(
        self, role_arn: str, session_name: str, *, service: str = EMR_SERVICE
    ) -> Issued:
        """A session of ``role_arn`` for an AWS service acting with it: EMR Studio for a
        Studio's service role (``ElasticMapReduceEditorsSession`` when it attaches a Workspace),
        EC2 for an instance profile's role (the session named by the instance id). No session
        policy: the role's own policies decide. Raises ``AccessDenied`` when the role does not
        exist or does not trust ``service``."""
        role = await self._trusting(
            role_arn,
            service,
            f"{service} could not assume the role {role_arn}: the role does not exist"
            f" or its trust policy does not allow {service} to call sts:AssumeRole.",
        )
        return await self.issue_role_session(role, session_name, 900)

    async def _trusting(self, role_arn: str, service: str, refusal: str) -> IamRole:
        """The role ``role_arn`` if it exists and trusts ``service`` to assume it; else
        ``AccessDenied`` with ``refusal`` (the one message for both: AWS tells no more)."""
        role = await self.iam.get_role(role_arn)
        if role is None:
            raise AccessDenied(refusal)
        request = AuthzRequest("sts:AssumeRole", role_arn, service, {})
        if not evaluate_trust(request, trust_policy(role), {"Service": [service]}).allowed:
            raise AccessDenied(refusal)
        return role
