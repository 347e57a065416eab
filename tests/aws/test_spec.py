"""The models the gateway serves: botocore's, plus emustudio's supplemental Workspace model."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import botocore.session
import pytest

from emustudio.aws import spec
from emustudio.aws.spec import DATA_PATH, load_service

EDITOR_OPERATIONS = {
    "CreateEditor",
    "DescribeEditor",
    "ListEditors",
    "StartEditor",
    "StopEditor",
    "DeleteEditor",
    "AttachEditor",
    "DetachEditor",
    "OpenEditorInConsole",
    "CreateStudioPresignedUrl",
}


def test_the_gateway_serves_editor_operations_as_part_of_emr() -> None:
    emr = load_service("emr")
    assert set(emr.operation_names) >= EDITOR_OPERATIONS
    assert {"CreateStudio", "ListClusters"} <= set(emr.operation_names)
    assert emr.operation_model("CreateEditor").input_shape.required_members == ["StudioId", "Name"]


def test_boto3_calls_them_with_the_data_path() -> None:
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    client = boto3.Session(botocore_session=session).client(
        "emr-studio",
        region_name="us-east-1",
        endpoint_url="http://localhost:9",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    model = client.meta.service_model
    assert model.signing_name == "elasticmapreduce"
    assert model.metadata["targetPrefix"] == "ElasticMapReduce"
    assert set(model.operation_names) == EDITOR_OPERATIONS
    assert client.can_paginate("list_editors")


def test_routing_tables_name_each_service_by_its_models_metadata() -> None:
    """The tables route a request to its service without loading every model."""
    assert set(spec.SIGNING_NAMES.values()) == set(spec.SERVICES)
    for name in spec.SERVICES:
        model = load_service(name)
        assert spec.service_by_signing_name(model.signing_name) is model
        prefix = model.metadata.get("targetPrefix")
        if prefix:
            assert spec.service_by_target_prefix(prefix) is model
    assert set(spec.TARGET_PREFIXES.values()) == {
        name for name in spec.SERVICES if load_service(name).metadata.get("targetPrefix")
    }
    assert spec.service_by_signing_name("dynamodb") is None


def test_models_are_kept_without_their_documentation() -> None:
    """The gateway's models drop what it never reads; what it parses and answers with stays."""
    ec2 = load_service("ec2")
    botocores = botocore.session.get_session().get_service_model("ec2")
    assert set(ec2.operation_names) == set(botocores.operation_names)
    assert not ec2.documentation and botocores.documentation
    ours = ec2.operation_model("DescribeVpcs")
    theirs = botocores.operation_model("DescribeVpcs")
    assert list(ours.input_shape.members) == list(theirs.input_shape.members)
    assert ours.output_shape.members["Vpcs"].member.members.keys() == (
        theirs.output_shape.members["Vpcs"].member.members.keys()
    )
    assert not ours.documentation


@pytest.fixture
def fresh_models() -> Iterator[None]:
    """Models loaded anew, and the served operations as they were, around a test."""
    served = dict(spec._served)
    load_service.cache_clear()
    yield
    spec._served.clear()
    spec._served.update(served)
    load_service.cache_clear()


def test_a_model_keeps_the_shapes_of_the_served_operations_and_loads_the_rest_on_use(
    fresh_models: None,
) -> None:
    """The gateway keeps, of EC2's 830 operations, the shapes of the ones it answers; another
    operation still parses as botocore's model says (and then answers NotImplemented)."""
    spec.serve_only({"ec2": {"DescribeVpcs", "CreateVpc"}})
    ec2 = load_service("ec2")
    botocores = botocore.session.get_session().get_service_model("ec2")
    assert set(ec2.operation_names) == set(botocores.operation_names)
    assert len(ec2.shape_names) < len(botocores.shape_names) / 10
    vpcs = ec2.operation_model("DescribeVpcs").output_shape
    assert vpcs.members["Vpcs"].member.members.keys() == (
        botocores.operation_model("DescribeVpcs").output_shape.members["Vpcs"].member.members.keys()
    )
    # Error shapes are all kept: a serializer finds any of them by its code.
    assert {s.name for s in ec2.error_shapes} == {s.name for s in botocores.error_shapes}
    # An operation not served: its input is botocore's, member for member.
    ours = ec2.operation_model("DescribeInstances").input_shape
    theirs = botocores.operation_model("DescribeInstances").input_shape
    assert list(ours.members) == list(theirs.members)
    assert ours.members["Filters"].member.members.keys() == (
        theirs.members["Filters"].member.members.keys()
    )
