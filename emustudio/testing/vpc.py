"""The VPC pieces a Studio needs, made through EC2, and ``CreateStudio``'s arguments on them.

The project's own tests and benchmarks use these; :func:`~emustudio.testing.resources.create_studio`
is the one-call form the ``emu_studio`` fixture uses.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from emustudio.testing.service_role import tag_for_emr

__all__ = ["StudioNetwork", "make_studio_network", "random_block", "studio_args"]


def random_block() -> str:
    """A /16 for a test VPC, away from Docker's own pools and the default VPC."""
    return f"10.{secrets.choice(range(100, 200))}.0.0/16"


@dataclass
class StudioNetwork:
    vpc_id: str
    subnet_ids: list[str]
    workspace_sg: str
    engine_sg: str
    cidr: str


def make_studio_network(ec2: Any, subnets: int = 2) -> StudioNetwork:
    """A VPC on a random /16 with ``subnets`` /24s spread over the first three AZs, and the
    Workspace and engine security groups; subnets and groups tagged for EMR's managed policies."""
    cidr = random_block()
    prefix = cidr.rsplit(".", 2)[0]
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    subnet_ids = [
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"{prefix}.{i}.0/24", AvailabilityZone=zones[i % 3]
        )["Subnet"]["SubnetId"]
        for i in range(subnets)
    ]
    workspace_sg = ec2.create_security_group(
        GroupName="workspace", Description="Workspace", VpcId=vpc_id
    )["GroupId"]
    engine_sg = ec2.create_security_group(GroupName="engine", Description="Engine", VpcId=vpc_id)[
        "GroupId"
    ]
    tag_for_emr(ec2, *subnet_ids, workspace_sg, engine_sg)  # as the EMR Studio guide asks
    return StudioNetwork(vpc_id, subnet_ids, workspace_sg, engine_sg, cidr)


def open_engine_port(ec2: Any, net: StudioNetwork) -> StudioNetwork:
    """AWS's rule for a Studio that attaches clusters: the engine group admits TCP 18888 from
    the Workspace group (the Workspace group's default egress already lets it out)."""
    ec2.authorize_security_group_ingress(
        GroupId=net.engine_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 18888, "ToPort": 18888,
                        "UserIdGroupPairs": [{"GroupId": net.workspace_sg}]}],
    )  # fmt: skip
    return net


def studio_args(net: StudioNetwork, **overrides: Any) -> dict[str, Any]:
    """An IAM-mode ``CreateStudio`` on ``net``'s first two subnets; ``overrides`` replace."""
    args: dict[str, Any] = {
        "Name": "analytics",
        "AuthMode": "IAM",
        "VpcId": net.vpc_id,
        "SubnetIds": net.subnet_ids[:2],
        "ServiceRole": "arn:aws:iam::000000000000:role/EMRStudio_Service_Role",
        "WorkspaceSecurityGroupId": net.workspace_sg,
        "EngineSecurityGroupId": net.engine_sg,
        "DefaultS3Location": "s3://studio-bucket/workspaces",
    }
    args.update(overrides)
    return args
