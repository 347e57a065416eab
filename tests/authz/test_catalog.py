"""The authorization catalogue names real operations and plans the checks AWS makes."""

from __future__ import annotations

import pytest

from emustudio.authz import Catalog
from emustudio.aws.spec import load_service

REGION, ACCOUNT = "us-east-1", "000000000000"


def plan(service: str, operation: str, **params: object):  # type: ignore[no-untyped-def]
    return Catalog.load().plan(service, operation, dict(params), region=REGION, account=ACCOUNT)


@pytest.mark.parametrize("service", sorted(k for k in Catalog.load().data if not k.startswith("_")))
def test_every_catalogued_operation_exists_in_the_model(service: str) -> None:
    names = set(load_service(service).operation_names)
    assert set(Catalog.load().data[service]["operations"]) <= names


def test_studio_operations_are_checked_on_the_studio_arn() -> None:
    p = plan("emr", "DescribeStudio", StudioId="es-ABC")
    assert p.action == "elasticmapreduce:DescribeStudio"
    assert p.resources == ("arn:aws:elasticmapreduce:us-east-1:000000000000:studio/es-ABC",)
    assert p.resource_ids == ("es-ABC",)
    assert plan("emr", "ListStudios").resources == ("*",)


def test_create_studio_carries_request_tags_and_passes_its_roles() -> None:
    p = plan(
        "emr", "CreateStudio", Tags=[{"Key": "team", "Value": "data"}],
        ServiceRole="EMRStudio_Service_Role", UserRole="arn:aws:iam::000000000000:role/U",
    )  # fmt: skip
    assert p.request_tags == {"team": "data"}
    assert p.pass_roles == (
        "arn:aws:iam::000000000000:role/EMRStudio_Service_Role",
        "arn:aws:iam::000000000000:role/U",
    )
    assert p.passed_to == "elasticmapreduce.amazonaws.com"
    assert plan("emr", "CreateStudio").request_tags is None


def test_tags_resolve_resource_types_by_id_prefix() -> None:
    assert plan("emr", "AddTags", ResourceId="es-X", Tags=[]).resources == (
        "arn:aws:elasticmapreduce:us-east-1:000000000000:studio/es-X",
    )
    p = plan("ec2", "CreateTags", Resources=["vpc-1", "sg-2"], Tags=[{"Key": "a", "Value": "b"}])
    assert p.resources == (
        "arn:aws:ec2:us-east-1:000000000000:vpc/vpc-1",
        "arn:aws:ec2:us-east-1:000000000000:security-group/sg-2",
    )
    assert p.request_tags == {"a": "b"}


def test_iam_defaults_follow_the_named_member() -> None:
    assert plan("iam", "GetRole", RoleName="r").resources == ("arn:aws:iam::000000000000:role/r",)
    assert plan("iam", "ListUsers").resources == ("*",)
    assert plan("sts", "GetCallerIdentity").exempt


def test_ec2_refusals_use_ec2_words() -> None:
    denied = plan("ec2", "CreateVpc").denied
    assert (denied.code, denied.status) == ("UnauthorizedOperation", 403)
    assert denied.message_prefix == "You are not authorized to perform this operation. "
