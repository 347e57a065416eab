"""CloudTrail records built from RequestContexts, without a gateway: shapes, identities, secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from emustudio.audit import HIDDEN, AuditEntry, Auditor, Resource, is_read_only
from emustudio.aws import spec
from emustudio.aws.errors import AwsError
from emustudio.aws.http import HttpRequest
from emustudio.aws.sigv4 import AuthFailure, AuthKind
from emustudio.context import Principal, RequestContext
from emustudio.services.cloudtrail import CloudTrailService
from emustudio.store import Store

ACCOUNT = "123456789012"
NOW = 1_767_225_600.7  # 2026-01-01T00:00:00Z and a bit

ROOT = Principal(
    kind="Root",
    arn=f"arn:aws:iam::{ACCOUNT}:root",
    account_id=ACCOUNT,
    access_key_id="AKIAROOTROOTROOTROOT",
    name="root",
    user_id=ACCOUNT,
)
USER = Principal(
    kind="IAMUser",
    arn=f"arn:aws:iam::{ACCOUNT}:user/admin",
    account_id=ACCOUNT,
    access_key_id="AKIAUSERUSERUSERUSER",
    name="admin",
    user_id="AIDAEXAMPLEUSERID0001",
)
SESSION = Principal(
    kind="AssumedRole",
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/StudioUser/alice",
    account_id=ACCOUNT,
    access_key_id="ASIASESSIONSESSION01",
    name="StudioUser",
    user_id="AROAEXAMPLEROLEID0001:alice",
    session_name="alice",
    issuer_arn=f"arn:aws:iam::{ACCOUNT}:role/StudioUser",
    issuer_id="AROAEXAMPLEROLEID0001",
    source_identity="alice@example.com",
)

PASSWORD = "Pa55word-do-not-log!"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdonotlog"
SAML_ASSERTION = "PHNhbWxwOlJlc3BvbnNlIGRvLW5vdC1sb2c+"


def context(
    service: str,
    operation: str,
    params: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    *,
    principal: Principal | None = ROOT,
    error: AwsError | None = None,
    headers: dict[str, str] | None = None,
) -> RequestContext:
    model = spec.load_service(service)
    return RequestContext(
        http=HttpRequest.build(
            "POST", "/", {"User-Agent": "aws-cli/1.46 test", **(headers or {})}, b""
        ),
        request_id="11111111-2222-3333-4444-555555555555",
        region="us-east-1",
        account_id=ACCOUNT,
        service=model,
        operation=model.operation_model(operation),
        principal=principal,
        params=params or {},
        result=result,
        error=error,
    )


def auditor(store: Store | None = None) -> Auditor:
    return Auditor(store or Store("sqlite://"), region="us-east-1", account_id=ACCOUNT)


def build(ctx: RequestContext) -> AuditEntry:
    entry = auditor().build(ctx, now=NOW)
    assert entry is not None
    return entry


def test_describe_studio_is_the_documented_record() -> None:
    entry = build(context("emr", "DescribeStudio", {"StudioId": "es-ABC"}, {"Studio": {}}))
    record = entry.record
    assert list(record) == [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "eventType",
        "managementEvent",
        "eventCategory",
        "recipientAccountId",
    ]
    assert record["eventVersion"] == "1.08"
    assert record["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAROOTROOTROOTROOT",
    }
    assert record["eventTime"] == "2026-01-01T00:00:00Z"
    assert record["eventSource"] == "elasticmapreduce.amazonaws.com"
    assert record["eventName"] == "DescribeStudio"
    assert record["awsRegion"] == "us-east-1"
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"] == "aws-cli/1.46 test"
    assert record["requestParameters"] == {"studioId": "es-ABC"}
    assert record["responseElements"] is None
    assert record["requestID"] == "11111111-2222-3333-4444-555555555555"
    assert record["readOnly"] is True
    assert (record["eventType"], record["managementEvent"], record["eventCategory"]) == (
        "AwsApiCall",
        True,
        "Management",
    )
    assert record["recipientAccountId"] == ACCOUNT
    assert entry.username == "root"
    assert entry.resources == (Resource("AWS::EMR::Studio", "es-ABC"),)
    assert entry.event_time == 1_767_225_600


def test_create_studio_converts_members_not_values() -> None:
    params = {
        "Name": "analytics",
        "AuthMode": "IAM",
        "VpcId": "vpc-1",
        "SubnetIds": ["subnet-1", "subnet-2"],
        "ServiceRole": "arn:aws:iam::123456789012:role/Svc",
        "WorkspaceSecurityGroupId": "sg-w",
        "EngineSecurityGroupId": "sg-e",
        "DefaultS3Location": "s3://bucket/path",
        "Tags": [{"Key": "TeamName", "Value": "DataEng"}],
    }
    entry = build(context("emr", "CreateStudio", params, {"StudioId": "es-NEW", "Url": "http://x"}))
    assert entry.record["requestParameters"] == {
        "name": "analytics",
        "authMode": "IAM",
        "vpcId": "vpc-1",
        "subnetIds": ["subnet-1", "subnet-2"],
        "serviceRole": "arn:aws:iam::123456789012:role/Svc",
        "workspaceSecurityGroupId": "sg-w",
        "engineSecurityGroupId": "sg-e",
        "defaultS3Location": "s3://bucket/path",
        "tags": [{"key": "TeamName", "value": "DataEng"}],
    }
    assert entry.record["responseElements"] == {"studioId": "es-NEW", "url": "http://x"}
    assert entry.record["readOnly"] is False
    assert set(entry.resources) == {
        Resource("AWS::EMR::Studio", "es-NEW"),
        Resource("AWS::EC2::VPC", "vpc-1"),
        Resource("AWS::EC2::Subnet", "subnet-1"),
        Resource("AWS::EC2::Subnet", "subnet-2"),
        Resource("AWS::EC2::SecurityGroup", "sg-w"),
        Resource("AWS::EC2::SecurityGroup", "sg-e"),
    }


def test_map_keys_stay_timestamps_are_iso_blobs_are_left_out() -> None:
    run = build(
        context(
            "emr",
            "RunJobFlow",
            {
                "Name": "job",
                "Instances": {"KeepJobFlowAliveWhenNoSteps": True},
                "Configurations": [
                    {"Classification": "spark", "Properties": {"SparkKey": "Value"}}
                ],
            },
            {"JobFlowId": "j-1"},
        )
    )
    assert run.record["requestParameters"] == {
        "name": "job",
        "instances": {"keepJobFlowAliveWhenNoSteps": True},
        "configurations": [{"classification": "spark", "properties": {"SparkKey": "Value"}}],
    }
    assert run.record["responseElements"] == {"jobFlowId": "j-1"}

    listed = build(
        context(
            "emr",
            "ListClusters",
            {"CreatedAfter": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)},
        )
    )
    assert listed.record["requestParameters"] == {"createdAfter": "2026-01-02T03:04:05Z"}

    key = build(
        context("ec2", "ImportKeyPair", {"KeyName": "k", "PublicKeyMaterial": b"ssh-rsa AAAA"})
    )
    assert key.record["requestParameters"] == {"keyName": "k"}


def test_workspaces_are_resources_too() -> None:
    entry = build(
        context(
            "emr",
            "CreateEditor",
            {"StudioId": "es-1", "Name": "ws", "SubnetId": "subnet-1"},
            {"EditorId": "e-1", "EditorArn": "arn:aws:elasticmapreduce:us-east-1:1:editor/e-1"},
        )
    )
    assert set(entry.resources) == {
        Resource("AWS::EMR::Studio", "es-1"),
        Resource("AWS::EC2::Subnet", "subnet-1"),
        Resource("AWS::EMR::Editor", "e-1"),
    }
    tagged = build(context("emr", "AddTags", {"ResourceId": "e-2", "Tags": []}, {}))
    assert tagged.resources == (Resource("AWS::EMR::Editor", "e-2"),)


def test_no_parameters_is_null_and_empty_results_are_null() -> None:
    listed = build(context("emr", "ListStudios", {}, {"Studios": []}))
    assert listed.record["requestParameters"] is None
    deleted = build(context("emr", "DeleteStudio", {"StudioId": "es-1"}, {}))
    assert deleted.record["responseElements"] is None


def test_ec2_response_elements_carry_the_request_id() -> None:
    entry = build(
        context(
            "ec2",
            "CreateVpc",
            {"CidrBlock": "10.0.0.0/16"},
            {"Vpc": {"VpcId": "vpc-9", "CidrBlock": "10.0.0.0/16"}},
        )
    )
    assert entry.record["eventSource"] == "ec2.amazonaws.com"
    assert entry.record["responseElements"] == {
        "requestId": "11111111-2222-3333-4444-555555555555",
        "vpc": {"vpcId": "vpc-9", "cidrBlock": "10.0.0.0/16"},
    }
    assert entry.resources == (Resource("AWS::EC2::VPC", "vpc-9"),)


def test_errors_carry_code_and_message_and_no_response() -> None:
    error = AwsError("Studio does not exist", code="InvalidRequestException")
    entry = build(context("emr", "UpdateStudio", {"StudioId": "es-1", "Name": "n"}, error=error))
    assert entry.record["errorCode"] == "InvalidRequestException"
    assert entry.record["errorMessage"] == "Studio does not exist"
    assert entry.record["requestParameters"] == {"studioId": "es-1", "name": "n"}
    assert entry.record["responseElements"] is None
    keys = list(entry.record)
    assert keys.index("userAgent") < keys.index("errorCode") < keys.index("requestParameters")


@pytest.mark.parametrize(
    ("service", "code"),
    [
        ("emr", "InvalidSignatureException"),
        ("ec2", "AuthFailure"),
        ("iam", "SignatureDoesNotMatch"),
    ],
)
def test_a_failed_signature_names_the_claimed_key_and_the_protocol_code(
    service: str, code: str
) -> None:
    model = spec.load_service(service)
    operation = {"emr": "ListStudios", "ec2": "DescribeVpcs", "iam": "ListUsers"}[service]
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAWHOAMI/20260101/us-east-1/"
        f"{model.signing_name}/aws4_request, SignedHeaders=host, Signature=00"
    }
    if model.protocol == "json":
        headers["X-Amz-Target"] = f"{model.metadata['targetPrefix']}.{operation}"
    ctx = context(
        service,
        operation,
        principal=None,
        error=AuthFailure(AuthKind.BAD_SIGNATURE),
        headers=headers,
    )
    ctx.operation = None
    if model.protocol != "json":
        ctx.http = HttpRequest.build(
            "POST", "/", headers, f"Action={operation}&Version={model.api_version}".encode()
        )
    entry = build(ctx)
    assert entry.record["eventName"] == operation
    assert entry.record["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIAWHOAMI"}
    assert entry.record["errorCode"] == code
    assert entry.access_key_id == "AKIAWHOAMI"
    assert entry.username is None


def test_a_request_naming_no_operation_is_not_recorded() -> None:
    ctx = context("emr", "ListStudios", headers={"X-Amz-Target": "ElasticMapReduce.Nope"})
    ctx.operation = None
    assert auditor().build(ctx) is None
    ctx.service = None
    assert auditor().build(ctx) is None


def test_user_and_assumed_role_identities() -> None:
    user = build(context("emr", "ListStudios", principal=USER))
    assert user.record["userIdentity"] == {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEUSERID0001",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/admin",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAUSERUSERUSERUSER",
        "userName": "admin",
    }
    assert user.username == "admin"

    session = build(context("emr", "ListStudios", principal=SESSION))
    identity = session.record["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["principalId"] == "AROAEXAMPLEROLEID0001:alice"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/StudioUser/alice"
    assert identity["accessKeyId"] == "ASIASESSIONSESSION01"
    assert identity["sessionContext"]["sessionIssuer"] == {
        "type": "Role",
        "principalId": "AROAEXAMPLEROLEID0001",
        "arn": f"arn:aws:iam::{ACCOUNT}:role/StudioUser",
        "accountId": ACCOUNT,
        "userName": "StudioUser",
    }
    assert identity["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    assert identity["sessionContext"]["sourceIdentity"] == "alice@example.com"
    assert session.username == "alice"


def test_global_services_record_their_region_and_source() -> None:
    iam = build(context("iam", "ListUsers"))
    assert (iam.record["eventSource"], iam.record["awsRegion"]) == (
        "iam.amazonaws.com",
        "us-east-1",
    )
    sts = build(context("sts", "GetCallerIdentity"))
    assert sts.record["eventSource"] == "sts.amazonaws.com"
    assert sts.record["readOnly"] is True


@pytest.mark.parametrize(
    ("name", "read_only"),
    [
        ("DescribeStudio", True),
        ("ListStudios", True),
        ("GetCallerIdentity", True),
        ("LookupEvents", True),
        ("SimulatePrincipalPolicy", True),
        ("CreateStudio", False),
        ("AssumeRole", False),
        ("DeleteVpc", False),
    ],
)
def test_read_only(name: str, read_only: bool) -> None:
    assert is_read_only(name) is read_only


# --- secrets --------------------------------------------------------------------------------


def secret_contexts() -> list[RequestContext]:
    return [
        context("iam", "CreateLoginProfile", {"UserName": "bob", "Password": PASSWORD}, {}),
        context(
            "iam",
            "ChangePassword",
            {"OldPassword": PASSWORD, "NewPassword": PASSWORD + "2"},
            {},
            principal=USER,
        ),
        context(
            "iam",
            "CreateAccessKey",
            {"UserName": "bob"},
            {
                "AccessKey": {
                    "UserName": "bob",
                    "AccessKeyId": "AKIABOBBOBBOBBOBBOB1",
                    "Status": "Active",
                    "SecretAccessKey": SECRET_KEY,
                    "CreateDate": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                }
            },
        ),
        context(
            "sts",
            "AssumeRole",
            {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/StudioUser", "RoleSessionName": "alice"},
            {
                "Credentials": {
                    "AccessKeyId": "ASIAALICEALICEALICE1",
                    "SecretAccessKey": SECRET_KEY,
                    "SessionToken": SESSION_TOKEN,
                    "Expiration": dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC),
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": "AROAEXAMPLEROLEID0001:alice",
                    "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/StudioUser/alice",
                },
            },
            principal=USER,
        ),
        context(
            "sts",
            "AssumeRoleWithSAML",
            {
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/StudioUser",
                "PrincipalArn": f"arn:aws:iam::{ACCOUNT}:saml-provider/idp",
                "SAMLAssertion": SAML_ASSERTION,
            },
            {
                "Credentials": {
                    "AccessKeyId": "ASIASAMLSAMLSAMLSAM1",
                    "SecretAccessKey": SECRET_KEY,
                    "SessionToken": SESSION_TOKEN,
                    "Expiration": dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC),
                }
            },
            principal=None,
        ),
    ]


SECRETS = (PASSWORD, SECRET_KEY, SESSION_TOKEN, SAML_ASSERTION)


def test_secrets_are_hidden_in_records() -> None:
    login, change, key, assume, saml = (build(ctx).record for ctx in secret_contexts())
    assert login["requestParameters"] == {"userName": "bob", "password": HIDDEN}
    assert change["requestParameters"] == {"oldPassword": HIDDEN, "newPassword": HIDDEN}
    assert key["responseElements"]["accessKey"]["secretAccessKey"] == HIDDEN
    assert key["responseElements"]["accessKey"]["accessKeyId"] == "AKIABOBBOBBOBBOBBOB1"
    assert key["responseElements"]["accessKey"]["createDate"] == "2026-01-01T00:00:00Z"
    credentials = assume["responseElements"]["credentials"]
    assert credentials["secretAccessKey"] == HIDDEN
    assert credentials["sessionToken"] == HIDDEN
    assert credentials["accessKeyId"] == "ASIAALICEALICEALICE1"
    assert saml["requestParameters"]["sAMLAssertion"] == HIDDEN
    assert saml["responseElements"]["credentials"]["sessionToken"] == HIDDEN


def test_secrets_never_reach_the_table_nor_lookup_events(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    store = Store(f"sqlite:///{db}")
    store.create_all()
    audit = auditor(store)
    cloudtrail = CloudTrailService(store, region="us-east-1", account_id=ACCOUNT)

    async def run() -> dict[str, Any]:
        for ctx in secret_contexts():
            await audit.record(ctx)
        await audit.record_event(
            event_name="ConsoleLogin",
            event_source="signin.amazonaws.com",
            principal=USER,
            source_ip="10.0.0.1",
            user_agent="Mozilla/5.0",
            request_parameters={"password": PASSWORD},
            response_elements={"ConsoleLogin": "Success", "SessionToken": SESSION_TOKEN},
            error_code=None,
            error_message=None,
            read_only=False,
            event_type="AwsConsoleSignIn",
        )
        lookup = context("cloudtrail", "LookupEvents")
        return await cloudtrail.lookup_events(lookup, {})

    try:
        found = asyncio.run(run())
    finally:
        store.close()
    assert len(found["Events"]) == 6
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "ConsoleLogin" in dump and "AKIABOBBOBBOBBOBBOB1" in dump
    text = json.dumps(found, default=str)
    for secret in SECRETS:
        assert secret not in dump
        assert secret not in text
    console = next(e for e in found["Events"] if e["EventName"] == "ConsoleLogin")
    record = json.loads(console["CloudTrailEvent"])
    assert record["eventType"] == "AwsConsoleSignIn"
    assert record["requestParameters"] == {"password": HIDDEN}
    assert record["responseElements"] == {"ConsoleLogin": "Success", "SessionToken": HIDDEN}
    assert "requestID" not in record
    assert console["Username"] == "admin"


def test_record_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStore(Store):
        async def tx(self, fn: Any) -> Any:
            raise RuntimeError("disk on fire")

    store = BrokenStore("sqlite://")
    audit = auditor(store)
    with caplog.at_level(logging.ERROR, logger="emustudio.audit"):
        asyncio.run(audit.record(context("emr", "ListStudios")))
        asyncio.run(
            audit.record_event(
                event_name="ConsoleLogin",
                event_source="signin.amazonaws.com",
                principal=None,
                source_ip="127.0.0.1",
                user_agent="",
                request_parameters=None,
                response_elements=None,
                error_code="Failed authentication",
                error_message="Failed authentication",
                read_only=False,
            )
        )
    store.close()
    assert caplog.text.count("CloudTrail: could not record") == 2
