"""Shared fixtures: a fresh gateway per test module, and the VPC pieces a Studio needs."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from emustudio.testing.gateway import GatewayProcess


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProcess]:
    gw = GatewayProcess()
    try:
        yield gw.start()
    finally:
        gw.close()


@pytest.fixture(scope="module")
def emr(gateway: GatewayProcess) -> Any:
    return gateway.client("emr")


@pytest.fixture(scope="module")
def ec2(gateway: GatewayProcess) -> Any:
    return gateway.client("ec2")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


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
    return StudioNetwork(vpc_id, subnet_ids, workspace_sg, engine_sg, cidr)


@pytest.fixture(scope="module")
def network(ec2: Any) -> StudioNetwork:
    return make_studio_network(ec2, subnets=3)


def studio_args(net: StudioNetwork, **overrides: Any) -> dict[str, Any]:
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


def identity_store_of(gateway: GatewayProcess) -> str:
    """The Identity Store of the gateway's IAM Identity Center instance, found as AWS's guide
    finds it: ``aws sso-admin list-instances``."""
    instances = gateway.client("sso-admin").list_instances()["Instances"]
    return str(instances[0]["IdentityStoreId"])


def aws_cli(
    gateway: GatewayProcess, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the AWS CLI (from PyPI, in this venv) against the gateway, JSON output."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            *args,
            "--output",
            "json",
            "--endpoint-url",
            gateway.endpoint_url,
        ],
        env=gateway.cli_env(),
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )
