"""EC2 assuming an instance profile's role for an instance (an EMR node's credentials).

No STS operation of its own: on AWS, EC2 (the service principal ``ec2.amazonaws.com``) assumes
the role of the instance's profile and the instance metadata service hands the session to
whatever runs on the instance. The session is named after the instance
(``assumed-role/<role>/<instance id>``), as on AWS, and the role's trust policy must let EC2 in;
a role that does not trust it gives the instance no credentials.
"""

from __future__ import annotations

from emustudio.iam import AuthzRequest, evaluate_trust
from emustudio.services.sts.common import AccessDenied, Issued, StsBase, trust_policy
from emustudio.store.iam_tables import IamRole

EC2_SERVICE = "ec2.amazonaws.com"


class InstanceProfileSessions(StsBase):
    async def assume_instance_role(self, role: IamRole, instance_id: str) -> Issued:
        """A session of ``role`` for the instance ``instance_id``, lasting the role's
        ``MaxSessionDuration``. Raises ``AccessDenied`` when the role does not trust EC2."""
        role_arn = self.iam.role_arn(role)
        request = AuthzRequest("sts:AssumeRole", role_arn, EC2_SERVICE, {})
        if not evaluate_trust(request, trust_policy(role), {"Service": [EC2_SERVICE]}).allowed:
            raise AccessDenied(
                f"EC2 cannot assume the role {role.name}: its trust policy does not allow"
                f" {EC2_SERVICE} to call sts:AssumeRole."
            )
        return await self.issue_role_session(role, instance_id, role.max_session_duration)
