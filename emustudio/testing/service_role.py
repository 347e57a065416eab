"""An EMR Studio service role as the EMR Studio guide sets it up, for tests and examples.

The policy is the guide's (``emustudio/iam/documented.py``); :func:`tag_for_emr` tags subnets
and security groups for EMR's managed policies, as the guide asks.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from emustudio.iam.documented import EMR_TAG, STUDIO_SERVICE_TRUST, studio_service_policy

__all__ = ["EMR_TAG", "SERVICE_ROLE_NAME", "ensure_studio_service_role", "studio_service_policy",
           "tag_for_emr"]  # fmt: skip

SERVICE_ROLE_NAME = "EMRStudio_Service_Role"


def ensure_studio_service_role(
    iam: Any, name: str = SERVICE_ROLE_NAME, *, without: tuple[str, ...] = ()
) -> str:
    """The role ``name`` trusting EMR, with the guide's policy (inline, ``StudioService``),
    made or brought back to that; its ARN."""
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(STUDIO_SERVICE_TRUST))
    iam.put_role_policy(
        RoleName=name,
        PolicyName="StudioService",
        PolicyDocument=json.dumps(studio_service_policy(without=without)),
    )
    return str(iam.get_role(RoleName=name)["Role"]["Arn"])


def tag_for_emr(ec2: Any, *resource_ids: str) -> None:
    """Tag subnets and security groups for EMR's managed policies, as the guide asks."""
    ec2.create_tags(Resources=list(resource_ids), Tags=[{"Key": EMR_TAG, "Value": "true"}])
