"""The models the gateway serves: botocore's, plus emustudio's supplemental Workspace model."""

from __future__ import annotations

import boto3
import botocore.session

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
