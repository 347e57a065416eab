"""An EMR Studio service role as the EMR Studio guide sets it up, for tests and examples.

The policy is the guide's (``emustudio/iam/documented.py``); :func:`tag_for_emr` tags subnets
and security groups for EMR's managed policies, as the guide asks.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from emustudio.iam.documented import EMR_TAG, STUDIO_SERVICE_TRUST, studio_service_policy

__all__ = ["EMR_TAG", "SERVICE_ROLE_NAME", "ensure_emr_default_roles",
           "ensure_studio_service_role", "studio_service_policy", "tag_for_emr"]  # fmt: skip

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


def _trusting(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def ensure_emr_default_roles(iam: Any) -> None:
    """EMR's default roles, as `aws emr create-default-roles` makes them (without their managed
    policies): ``EMR_DefaultRole`` trusting EMR, and ``EMR_EC2_DefaultRole`` trusting EC2 with
    its instance profile. Kept as they are when another test made them first."""
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(
            RoleName="EMR_DefaultRole",
            AssumeRolePolicyDocument=_trusting("elasticmapreduce.amazonaws.com"),
        )
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(
            RoleName="EMR_EC2_DefaultRole", AssumeRolePolicyDocument=_trusting("ec2.amazonaws.com")
        )
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")
    with contextlib.suppress(iam.exceptions.LimitExceededException):  # the role is in it
        iam.add_role_to_instance_profile(
            InstanceProfileName="EMR_EC2_DefaultRole", RoleName="EMR_EC2_DefaultRole"
        )
