"""Code that uses EMR Studio, tested against emustudio: no AWS account, no conftest.

The ``emu_`` fixtures come from emustudio's pytest plugin, registered when emustudio is
installed. Every test here talks to a real gateway through boto3, exactly as it would to AWS.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing import Boto3Factory, IamUserFactory, Studio, Workspace


def allow(action: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_studio_is_described_as_it_was_created(
    emu_boto3: Boto3Factory, emu_studio: Studio
) -> None:
    studio = emu_boto3("emr").describe_studio(StudioId=emu_studio.studio_id)["Studio"]
    assert studio["StudioArn"] == emu_studio.arn
    assert studio["AuthMode"] == "IAM"
    assert studio["VpcId"] == emu_studio.vpc_id
    assert studio["SubnetIds"] == list(emu_studio.subnet_ids)
    assert studio["Url"] == emu_studio.url
    zones = {
        s["AvailabilityZone"]
        for s in emu_boto3("ec2").describe_subnets(SubnetIds=list(emu_studio.subnet_ids))["Subnets"]
    }
    assert len(zones) == 2


def test_a_user_allowed_only_describe_studio_on_one_studio(
    emu_boto3: Boto3Factory, emu_studio: Studio, emu_iam_user: IamUserFactory
) -> None:
    user = emu_iam_user(allow("elasticmapreduce:DescribeStudio", emu_studio.arn))
    emr = user.client("emr")

    # Allowed: that one action on that one Studio.
    assert emr.describe_studio(StudioId=emu_studio.studio_id)["Studio"]["Name"] == emu_studio.name

    # Refused elsewhere: another Studio, another action, another service.
    account = emu_studio.arn.split(":")[4]
    other = emu_boto3("emr").create_studio(
        Name="other",
        AuthMode="IAM",
        VpcId=emu_studio.vpc_id,
        SubnetIds=list(emu_studio.subnet_ids),
        ServiceRole=f"arn:aws:iam::{account}:role/EMRStudio_Service_Role",
        WorkspaceSecurityGroupId=emu_studio.workspace_security_group_id,
        EngineSecurityGroupId=emu_studio.engine_security_group_id,
        DefaultS3Location=emu_studio.default_s3_location,
    )["StudioId"]
    try:
        with pytest.raises(ClientError) as refused:
            emr.describe_studio(StudioId=other)
        assert error_code(refused) == "AccessDeniedException"
        assert "elasticmapreduce:DescribeStudio" in str(refused.value)
        with pytest.raises(ClientError) as refused:
            emr.list_studios()
        assert error_code(refused) == "AccessDeniedException"
        with pytest.raises(ClientError) as refused:
            user.client("ec2").describe_vpcs()
        assert error_code(refused) == "UnauthorizedOperation"
    finally:
        emu_boto3("emr").delete_studio(StudioId=other)


def test_a_workspace_starts_in_the_studio(
    emu_boto3: Boto3Factory, emu_studio: Studio, emu_workspace: Workspace
) -> None:
    assert emu_workspace.status == "Ready"
    editor = emu_boto3("emr-studio").describe_editor(EditorId=emu_workspace.editor_id)["Editor"]
    assert editor["Status"] == "Ready"
    assert editor["StudioId"] == emu_studio.studio_id
    assert editor["SubnetId"] in emu_studio.subnet_ids
    assert editor["Url"].endswith(f"/workspaces/{emu_workspace.editor_id}/lab")
