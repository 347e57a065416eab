"""The life of a Studio, as boto3, the AWS CLI and Terraform's checks see it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    """A gateway of its own: the paging test counts every Studio of the account."""
    return {}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_full_life_of_a_studio(emr: Any, network: StudioNetwork, gateway: GatewayProcess) -> None:
    created = emr.create_studio(
        **studio_args(network, Description="team studio", Tags=[{"Key": "team", "Value": "data"}])
    )
    studio_id = created["StudioId"]
    assert re.fullmatch(r"es-[A-Z0-9]{25}", studio_id)
    assert created["Url"] == f"http://{studio_id}.emrstudio.localhost:{gateway.port}"

    studio = emr.describe_studio(StudioId=studio_id)["Studio"]
    assert re.fullmatch(
        r"arn:aws:elasticmapreduce:us-east-1:000000000000:studio/.+", studio["StudioArn"]
    )
    assert studio["StudioArn"].endswith(f"studio/{studio_id}")
    assert studio["Url"]
    assert studio["Name"] == "analytics"
    assert studio["Description"] == "team studio"
    assert studio["AuthMode"] == "IAM"
    assert studio["VpcId"] == network.vpc_id
    assert studio["SubnetIds"] == network.subnet_ids[:2]
    assert studio["WorkspaceSecurityGroupId"] == network.workspace_sg
    assert studio["EngineSecurityGroupId"] == network.engine_sg
    assert studio["DefaultS3Location"] == "s3://studio-bucket/workspaces"
    assert studio["Tags"] == [{"Key": "team", "Value": "data"}]
    assert studio["CreationTime"].tzinfo is not None

    summaries = emr.list_studios()["Studios"]
    assert studio_id in {s["StudioId"] for s in summaries}

    # Rename in place (Terraform updates Name without replacing the Studio).
    emr.update_studio(StudioId=studio_id, Name="renamed", SubnetIds=network.subnet_ids)
    studio = emr.describe_studio(StudioId=studio_id)["Studio"]
    assert (studio["StudioId"], studio["Name"]) == (studio_id, "renamed")
    assert sorted(studio["SubnetIds"]) == sorted(network.subnet_ids)

    # Tags 1 -> 2 -> 1.
    emr.add_tags(ResourceId=studio_id, Tags=[{"Key": "env", "Value": "dev"}])
    tags = emr.describe_studio(StudioId=studio_id)["Studio"]["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "dev"), ("team", "data")]
    emr.remove_tags(ResourceId=studio_id, TagKeys=["team"])
    assert emr.describe_studio(StudioId=studio_id)["Studio"]["Tags"] == [
        {"Key": "env", "Value": "dev"}
    ]

    emr.delete_studio(StudioId=studio_id)
    with pytest.raises(ClientError) as exc:
        emr.describe_studio(StudioId=studio_id)
    assert error_of(exc) == ("InvalidRequestException", "Studio does not exist")
    assert studio_id not in {s["StudioId"] for s in emr.list_studios()["Studios"]}


def test_every_model_member_round_trips(
    emr: Any, network: StudioNetwork, gateway: GatewayProcess
) -> None:
    # The account's one Identity Center instance, found as AWS's setup guide finds it.
    instance_arn = gateway.client("sso-admin").list_instances()["Instances"][0]["InstanceArn"]
    studio_id = emr.create_studio(
        **studio_args(
            network,
            AuthMode="SSO",
            UserRole="arn:aws:iam::000000000000:role/EMRStudio_User_Role",
            IdcInstanceArn=instance_arn,
            IdcUserAssignment="REQUIRED",
            TrustedIdentityPropagationEnabled=True,
            EncryptionKeyArn="arn:aws:kms:us-east-1:000000000000:key/1234",
        )
    )["StudioId"]
    studio = emr.describe_studio(StudioId=studio_id)["Studio"]
    assert studio["UserRole"] == "arn:aws:iam::000000000000:role/EMRStudio_User_Role"
    assert studio["IdcInstanceArn"] == instance_arn
    assert studio["IdcUserAssignment"] == "REQUIRED"
    assert studio["TrustedIdentityPropagationEnabled"] is True
    assert studio["EncryptionKeyArn"] == "arn:aws:kms:us-east-1:000000000000:key/1234"
    emr.update_studio(
        StudioId=studio_id, EncryptionKeyArn="arn:aws:kms:us-east-1:000000000000:key/5678"
    )
    studio = emr.describe_studio(StudioId=studio_id)["Studio"]
    assert studio["EncryptionKeyArn"].endswith("key/5678")
    emr.delete_studio(StudioId=studio_id)


def test_list_studios_pages_with_marker(emr: Any, network: StudioNetwork) -> None:
    before = {s["StudioId"] for s in emr.list_studios()["Studios"]}
    assert len(before) < 50
    created = [
        emr.create_studio(**studio_args(network, Name=f"studio-{i}"))["StudioId"] for i in range(55)
    ]
    first = emr.list_studios()
    assert len(first["Studios"]) == 50
    assert first["Marker"]
    second = emr.list_studios(Marker=first["Marker"])
    assert "Marker" not in second
    listed = [
        s["StudioId"]
        for page in emr.get_paginator("list_studios").paginate()
        for s in page["Studios"]
    ]
    assert len(listed) == len(set(listed))
    assert set(created) <= set(listed)
    for studio_id in created:
        emr.delete_studio(StudioId=studio_id)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"VpcId": "vpc-0000000000000dead"}, "VPC 'vpc-0000000000000dead' does not exist."),
        (
            {"SubnetIds": ["subnet-0000000000000dead"]},
            "Subnet 'subnet-0000000000000dead' does not exist.",
        ),
        ({"SubnetIds": []}, "A Studio must have at least one subnet."),
        (
            {"WorkspaceSecurityGroupId": "sg-0000000000000dead"},
            "Security group 'sg-0000000000000dead' does not exist.",
        ),
        (
            {"AuthMode": "SSO"},
            "UserRole is required for a Studio that uses IAM Identity Center authentication (AuthMode SSO).",
        ),
        (
            {"AuthMode": "SSO", "UserRole": "r", "IdpAuthUrl": "https://idp.example/sso"},
            "IdpAuthUrl can only be specified for a Studio that uses IAM authentication (AuthMode IAM).",
        ),
        (
            {"DefaultS3Location": "/tmp/x"},
            "DefaultS3Location '/tmp/x' is not a valid Amazon S3 location (s3://bucket/path).",
        ),
        (
            {"Tags": [{"Key": "k" * 129, "Value": "v"}]},
            f"Tag key '{'k' * 129}' is longer than 128 characters.",
        ),
        (
            {"Tags": [{"Key": "k", "Value": "v" * 257}]},
            "Tag value for key 'k' is longer than 256 characters.",
        ),
    ],
)
def test_create_studio_rules_from_the_docs(
    emr: Any, network: StudioNetwork, overrides: dict[str, Any], message: str
) -> None:
    before = emr.list_studios()["Studios"]
    with pytest.raises(ClientError) as exc:
        emr.create_studio(**studio_args(network, **overrides))
    assert error_of(exc) == ("InvalidRequestException", message)
    assert emr.list_studios()["Studios"] == before


def test_resources_must_belong_to_the_studio_vpc(
    emr: Any, ec2: Any, network: StudioNetwork
) -> None:
    other = make_studio_network(ec2, subnets=1)
    with pytest.raises(ClientError) as exc:
        emr.create_studio(
            **studio_args(network, SubnetIds=[network.subnet_ids[0], other.subnet_ids[0]])
        )
    assert error_of(exc) == (
        "InvalidRequestException",
        f"Subnet '{other.subnet_ids[0]}' does not belong to VPC '{network.vpc_id}'.",
    )
    with pytest.raises(ClientError) as exc:
        emr.create_studio(**studio_args(network, EngineSecurityGroupId=other.engine_sg))
    assert error_of(exc) == (
        "InvalidRequestException",
        f"Security group '{other.engine_sg}' (EngineSecurityGroupId) does not belong to VPC '{network.vpc_id}'.",
    )


def test_at_most_five_subnets(emr: Any, ec2: Any) -> None:
    wide = make_studio_network(ec2, subnets=6)
    with pytest.raises(ClientError) as exc:
        emr.create_studio(**studio_args(wide, SubnetIds=wide.subnet_ids))
    assert error_of(exc) == ("InvalidRequestException", "A Studio can have a maximum of 5 subnets.")
    studio_id = emr.create_studio(**studio_args(wide, SubnetIds=wide.subnet_ids[:5]))["StudioId"]
    with pytest.raises(ClientError) as exc:
        emr.update_studio(StudioId=studio_id, SubnetIds=wide.subnet_ids)
    assert error_of(exc) == ("InvalidRequestException", "A Studio can have a maximum of 5 subnets.")
    emr.delete_studio(StudioId=studio_id)


def test_update_cannot_drop_subnets(emr: Any, network: StudioNetwork) -> None:
    studio_id = emr.create_studio(**studio_args(network))["StudioId"]
    with pytest.raises(ClientError) as exc:
        emr.update_studio(StudioId=studio_id, SubnetIds=[network.subnet_ids[0]], Name="changed")
    assert error_of(exc) == (
        "InvalidRequestException",
        "SubnetIds must include all of the subnets previously associated with the Studio;"
        f" missing: {network.subnet_ids[1]}.",
    )
    # The refused update changed nothing, not even the name.
    assert emr.describe_studio(StudioId=studio_id)["Studio"]["Name"] == "analytics"
    emr.delete_studio(StudioId=studio_id)


def test_not_found_errors(emr: Any) -> None:
    missing = "es-" + "X" * 25
    for call in (
        lambda: emr.describe_studio(StudioId=missing),
        lambda: emr.update_studio(StudioId=missing, Name="x"),
        lambda: emr.add_tags(ResourceId=missing, Tags=[{"Key": "a", "Value": "b"}]),
        lambda: emr.remove_tags(ResourceId=missing, TagKeys=["a"]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("InvalidRequestException", "Studio does not exist")


def test_deleting_a_missing_studio_is_a_server_error_as_terraform_expects(
    gateway: GatewayProcess,
) -> None:
    emr = gateway.client(
        "emr", config=__import__("botocore.config").config.Config(retries={"max_attempts": 1})
    )
    with pytest.raises(ClientError) as exc:
        emr.delete_studio(StudioId="es-" + "X" * 25)
    assert error_of(exc) == ("InternalServerException", "Studio does not exist")


def test_the_aws_cli_manages_a_studio(gateway: GatewayProcess, network: StudioNetwork) -> None:
    created = json.loads(
        aws_cli(
            gateway,
            "emr",
            "create-studio",
            "--name",
            "cli-studio",
            "--auth-mode",
            "IAM",
            "--vpc-id",
            network.vpc_id,
            "--subnet-ids",
            *network.subnet_ids[:2],
            "--service-role",
            "arn:aws:iam::000000000000:role/EMRStudio_Service_Role",
            "--workspace-security-group-id",
            network.workspace_sg,
            "--engine-security-group-id",
            network.engine_sg,
            "--default-s3-location",
            "s3://bucket/cli",
        ).stdout
    )
    studio_id = created["StudioId"]
    described = json.loads(
        aws_cli(gateway, "emr", "describe-studio", "--studio-id", studio_id).stdout
    )
    assert described["Studio"]["Name"] == "cli-studio"
    assert isinstance(described["Studio"]["CreationTime"], str | float | int)
    listed = json.loads(aws_cli(gateway, "emr", "list-studios").stdout)["Studios"]
    assert studio_id in [s["StudioId"] for s in listed]
    aws_cli(gateway, "emr", "delete-studio", "--studio-id", studio_id)
    failed = aws_cli(gateway, "emr", "describe-studio", "--studio-id", studio_id, check=False)
    assert failed.returncode != 0
    assert "InvalidRequestException" in failed.stderr and "Studio does not exist" in failed.stderr
