"""Validation against input shapes: AWS's exact wording per protocol, and Java patterns."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from emustudio.aws.errors import AwsError, ValidationFailed
from emustudio.aws.http import HttpRequest
from emustudio.aws.protocol import collect_violations, coral_message, create_parser, validate
from emustudio.aws.protocol.patterns import compile_pattern, matches, translate
from emustudio.aws.spec import load_service, operation

STUDIO = {
    "Name": "studio",
    "AuthMode": "IAM",
    "VpcId": "vpc-1",
    "SubnetIds": ["subnet-1"],
    "ServiceRole": "arn:aws:iam::123456789012:role/svc",
    "WorkspaceSecurityGroupId": "sg-1",
    "EngineSecurityGroupId": "sg-2",
    "DefaultS3Location": "s3://bucket/prefix",
}


def emr_error(operation_name: str, body: dict[str, Any]) -> AwsError:
    req = HttpRequest.build(
        "POST",
        "/",
        {"X-Amz-Target": f"ElasticMapReduce.{operation_name}"},
        json.dumps(body).encode(),
    )
    with pytest.raises(AwsError) as caught:
        create_parser(load_service("emr")).parse(req)
    return caught.value


def query_error(service: str, params: dict[str, str]) -> AwsError:
    req = HttpRequest.build(
        "POST",
        "/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        urlencode(params).encode(),
    )
    with pytest.raises(AwsError) as caught:
        create_parser(load_service(service)).parse(req)
    return caught.value


# --- json (Coral) -------------------------------------------------------------------------


def test_emr_missing_member() -> None:
    body = {k: v for k, v in STUDIO.items() if k != "Name"}
    error = emr_error("CreateStudio", body)
    assert (error.code, error.status) == ("ValidationException", 400)
    assert error.message == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_emr_enum() -> None:
    error = emr_error("CreateStudio", {**STUDIO, "AuthMode": "FOO"})
    assert error.message == (
        "1 validation error detected: Value 'FOO' at 'authMode' failed to satisfy constraint: "
        "Member must satisfy enum value set: [SSO, IAM]"
    )


def test_emr_too_long() -> None:
    name = "n" * 257
    error = emr_error("CreateStudio", {**STUDIO, "Name": name})
    assert error.message == (
        f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    )


def test_emr_describe_studio_without_id() -> None:
    error = emr_error("DescribeStudio", {})
    assert error.message == (
        "1 validation error detected: Value null at 'studioId' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_several_errors_are_joined() -> None:
    body = {k: v for k, v in STUDIO.items() if k != "Name"}
    error = emr_error("CreateStudio", {**body, "AuthMode": "FOO"})
    assert error.message == (
        "2 validation errors detected: "
        "Value null at 'name' failed to satisfy constraint: Member must not be null; "
        "Value 'FOO' at 'authMode' failed to satisfy constraint: "
        "Member must satisfy enum value set: [SSO, IAM]"
    )


def test_valid_input_passes() -> None:
    op, params = create_parser(load_service("emr")).parse(
        HttpRequest.build(
            "POST",
            "/",
            {"X-Amz-Target": "ElasticMapReduce.CreateStudio"},
            json.dumps(STUDIO).encode(),
        )
    )
    assert op.name == "CreateStudio"
    assert params == STUDIO


def test_validate_is_pure_and_raises_the_protocol_error() -> None:
    validate(operation("emr", "DescribeStudio"), {"StudioId": "es-1"})
    with pytest.raises(ValidationFailed) as caught:
        validate(operation("iam", "GetUser"), {"UserName": ""})
    assert caught.value.code == "ValidationError"


# --- query --------------------------------------------------------------------------------


def test_iam_user_name_too_long() -> None:
    name = "u" * 65
    error = query_error("iam", {"Action": "CreateUser", "Version": "2010-05-08", "UserName": name})
    assert (error.code, error.status) == ("ValidationError", 400)
    assert error.message == (
        f"1 validation error detected: Value '{name}' at 'userName' failed to satisfy "
        "constraint: Member must have length less than or equal to 64"
    )


def test_iam_pattern_and_nested_list_path() -> None:
    error = query_error(
        "iam",
        {
            "Action": "CreateUser",
            "Version": "2010-05-08",
            "UserName": "bad name!",
            "Tags.member.1.Key": "k" * 129,
            "Tags.member.1.Value": "v",
        },
    )
    assert error.message == (
        "2 validation errors detected: "
        "Value 'bad name!' at 'userName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w+=,.@-]+; "
        f"Value '{'k' * 129}' at 'tags.1.key' failed to satisfy constraint: "
        "Member must have length less than or equal to 128"
    )


def test_range_and_sensitive_values() -> None:
    error = query_error("iam", {"Action": "ListUsers", "Version": "2010-05-08", "MaxItems": "0"})
    assert error.message == (
        "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    error = query_error(
        "iam",
        {
            "Action": "ChangePassword",
            "Version": "2010-05-08",
            "OldPassword": "x",
            "NewPassword": "p" * 129,
        },
    )
    # Coral never echoes a sensitive value.
    assert error.message == (
        "1 validation error detected: Value at 'newPassword' failed to satisfy constraint: "
        "Member must have length less than or equal to 128"
    )


def test_list_length_and_value_rendering() -> None:
    shape = load_service("ec2").shape_for("ArchitectureTypeSet")
    violations = collect_violations(shape, ["arm64"] * 4)
    assert [v.constraint for v in violations] == ["Member must have length less than or equal to 3"]
    assert coral_message(violations) == (
        "1 validation error detected: Value '[arm64, arm64, arm64, arm64]' at '' failed to "
        "satisfy constraint: Member must have length less than or equal to 3"
    )


# --- ec2 ----------------------------------------------------------------------------------


def test_ec2_create_vpc_needs_nothing() -> None:
    req = HttpRequest.build("GET", "/?Action=CreateVpc&Version=2016-11-15", {})
    op, params = create_parser(load_service("ec2")).parse(req)
    assert (op.name, params) == ("CreateVpc", {})


def test_ec2_missing_parameter() -> None:
    error = query_error(
        "ec2", {"Action": "CreateSubnet", "Version": "2016-11-15", "CidrBlock": "10.0.0.0/24"}
    )
    assert (error.code, error.status) == ("MissingParameter", 400)
    assert error.message == "The request must contain the parameter VpcId"


def test_ec2_invalid_value_uses_wire_names() -> None:
    error = query_error(
        "ec2",
        {
            "Action": "CreateSubnet",
            "Version": "2016-11-15",
            "VpcId": "vpc-1",
            "TagSpecification.1.ResourceType": "spaceship",
        },
    )
    assert error.code == "InvalidParameterValue"
    assert error.message.startswith(
        "Value (spaceship) for parameter TagSpecification.1.ResourceType is invalid. "
        "Member must satisfy enum value set: [capacity-reservation, "
    )


# --- Java patterns ------------------------------------------------------------------------

XML_CHARS = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*"


def test_surrogate_pair_ranges_become_supplementary_ranges() -> None:
    assert translate(XML_CHARS) == (
        "[\\u0020-\\ud7ff\\ue000-\\ufffd\\U00010000-\\U0010ffff\\r\\n\\t]*"
    )
    assert matches(XML_CHARS, "tab\tand emoji \U0001f600 ok")
    assert not matches(XML_CHARS, "bell \x07")


def test_unicode_property_classes() -> None:
    tag_key = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"
    assert matches(tag_key, "Déjà vu 42 _.:/=+-@")
    assert matches(tag_key, "東京\u3000")
    assert not matches(tag_key, "semi;colon")
    assert matches("\\p{Alpha}+\\P{Digit}", "abcX")
    assert not matches("\\p{Alpha}+", "abc1")


def test_java_word_class_is_ascii() -> None:
    assert matches("[\\w+=,.@-]+", "user.name@x")
    assert not matches("[\\w+=,.@-]+", "usér")


def test_matches_is_a_full_match() -> None:
    assert not matches("[0-9]{12}", "1234567890123")
    assert matches("[0-9]{12}", "123456789012")


def test_untranslatable_patterns_are_skipped_not_fatal() -> None:
    for pattern in ("[a-z&&[^b]]+", "[a[b]]", "\\p{InGreek}+", "(unclosed"):
        assert compile_pattern(pattern) is None
        assert matches(pattern, "anything")


def test_compiled_patterns_are_cached() -> None:
    assert compile_pattern(XML_CHARS) is compile_pattern(XML_CHARS)


def test_every_model_pattern_compiles() -> None:
    from emustudio.aws.spec import SERVICES

    for service in SERVICES:
        model = load_service(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern is not None:
                assert compile_pattern(pattern) is not None, (service, name, pattern)
