"""The models the gateway serves: botocore's, plus emustudio's supplemental Workspace model."""

from __future__ import annotations

import boto3
import botocore.session

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
