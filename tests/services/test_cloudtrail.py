"""An auditor reads the gateway's CloudTrail event history with boto3 and the AWS CLI."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from emustudio.testing.vpc import StudioNetwork, studio_args

ACCOUNT = "000000000000"


@dataclass
class History:
    """What the module's calls did, for the lookups to find."""

    started: datetime
    ended: datetime
    studio_id: str
    create_request_id: str
    describe_request_id: str
    missing_request_id: str
    bad_signature_request_id: str
    vpc_id: str
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    """A gateway of its own: the lookups read the account's whole event history."""
    return {}


@pytest.fixture(scope="module")
def cloudtrail(gateway: GatewayProcess) -> Any:
    return gateway.client("cloudtrail")


@pytest.fixture(scope="module")
def history(
    gateway: GatewayProcess, emr: Any, ec2: Any, network: StudioNetwork, cloudtrail: Any
) -> History:
    started = datetime.now(UTC) - timedelta(seconds=1)
    created = emr.create_studio(**studio_args(network))
    studio_id = created["StudioId"]
    described = emr.describe_studio(StudioId=studio_id)
    with pytest.raises(ClientError) as missing:
        emr.describe_studio(StudioId="es-DOESNOTEXIST0000000000000")
    bad = gateway.client("emr", aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as refused:
        bad.list_studios()
    ended = datetime.now(UTC) + timedelta(seconds=1)
    return History(
        started=started,
        ended=ended,
        studio_id=studio_id,
        create_request_id=created["ResponseMetadata"]["RequestId"],
        describe_request_id=described["ResponseMetadata"]["RequestId"],
        missing_request_id=missing.value.response["ResponseMetadata"]["RequestId"],
        bad_signature_request_id=refused.value.response["ResponseMetadata"]["RequestId"],
        vpc_id=network.vpc_id,
    )


def lookup(cloudtrail: Any, key: str, value: str, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], **kwargs
    )["Events"]
    return events


def record_of(event: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(event["CloudTrailEvent"])
    return record


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_create_studio_is_recorded_as_aws_records_it(cloudtrail: Any, history: History) -> None:
    (event,) = lookup(cloudtrail, "EventName", "CreateStudio")
    assert event["EventName"] == "CreateStudio"
    assert event["EventSource"] == "elasticmapreduce.amazonaws.com"
    assert event["ReadOnly"] == "false"
    assert event["Username"] == "root"
    assert event["AccessKeyId"] == "test"
    assert history.started <= event["EventTime"] <= history.ended
    assert {"ResourceType": "AWS::EMR::Studio", "ResourceName": history.studio_id} in event[
        "Resources"
    ]
    assert {"ResourceType": "AWS::EC2::VPC", "ResourceName": history.vpc_id} in event["Resources"]
    record = record_of(event)
    assert record["eventID"] == event["EventId"]
    assert record["requestID"] == history.create_request_id
    assert record["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "test",
    }
    assert record["requestParameters"]["vpcId"] == history.vpc_id
    assert record["requestParameters"]["defaultS3Location"] == "s3://studio-bucket/workspaces"
    assert record["responseElements"]["studioId"] == history.studio_id
    assert record["awsRegion"] == "us-east-1"
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"].startswith("Boto3/")
    assert record["recipientAccountId"] == ACCOUNT
    assert datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")


def test_describe_studio_has_no_response_elements(cloudtrail: Any, history: History) -> None:
    events = lookup(cloudtrail, "EventName", "DescribeStudio")
    by_request = {record_of(e)["requestID"]: record_of(e) for e in events}
    record = by_request[history.describe_request_id]
    assert record["requestParameters"] == {"studioId": history.studio_id}
    assert record["responseElements"] is None
    assert record["readOnly"] is True
    assert "errorCode" not in record

    failed = by_request[history.missing_request_id]
    assert failed["errorCode"] == "InvalidRequestException"
    assert failed["errorMessage"] == "Studio does not exist"
    assert failed["responseElements"] is None


def test_a_bad_signature_is_recorded_with_the_protocol_code(
    cloudtrail: Any, history: History
) -> None:
    (event,) = lookup(cloudtrail, "EventName", "ListStudios")
    record = record_of(event)
    assert record["requestID"] == history.bad_signature_request_id
    assert record["errorCode"] == "InvalidSignatureException"
    assert record["errorMessage"].startswith("The request signature we calculated does not match")
    assert record["userIdentity"] == {"type": "Unknown", "accessKeyId": "test"}
    assert record["requestParameters"] is None
    assert event["ReadOnly"] == "true"
    assert "Username" not in event


def test_lookup_by_resource_name_is_newest_first(cloudtrail: Any, history: History) -> None:
    events = lookup(cloudtrail, "ResourceName", history.studio_id)
    assert [e["EventName"] for e in events] == ["DescribeStudio", "CreateStudio"]
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    assert lookup(cloudtrail, "ResourceType", "AWS::EMR::Studio")
    assert lookup(cloudtrail, "ResourceName", "es-%") == []


def test_lookup_by_username_source_read_only_and_id(cloudtrail: Any, history: History) -> None:
    mine = lookup(cloudtrail, "Username", "root")
    assert {"CreateStudio", "DescribeStudio", "CreateVpc", "CreateSubnet"} <= {
        e["EventName"] for e in mine
    }
    assert lookup(cloudtrail, "Username", "nobody") == []
    ec2_events = lookup(cloudtrail, "EventSource", "ec2.amazonaws.com")
    assert ec2_events and {e["EventSource"] for e in ec2_events} == {"ec2.amazonaws.com"}
    assert {e["ReadOnly"] for e in lookup(cloudtrail, "ReadOnly", "false")} == {"false"}
    assert {e["ReadOnly"] for e in lookup(cloudtrail, "ReadOnly", "true")} == {"true"}
    (created,) = lookup(cloudtrail, "EventName", "CreateStudio")
    (by_id,) = lookup(cloudtrail, "EventId", created["EventId"])
    assert by_id == created
    assert lookup(cloudtrail, "AccessKeyId", "test")


def test_only_the_first_lookup_attribute_counts(cloudtrail: Any, history: History) -> None:
    events = cloudtrail.lookup_events(
        LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateStudio"},
            {"AttributeKey": "EventName", "AttributeValue": "DescribeStudio"},
        ]
    )["Events"]
    assert [e["EventName"] for e in events] == ["CreateStudio"]


def test_time_range(cloudtrail: Any, history: History) -> None:
    inside = lookup(
        cloudtrail, "EventName", "CreateStudio", StartTime=history.started, EndTime=history.ended
    )
    assert len(inside) == 1
    before = lookup(
        cloudtrail,
        "EventName",
        "CreateStudio",
        StartTime=history.started - timedelta(hours=2),
        EndTime=history.started - timedelta(hours=1),
    )
    assert before == []
    with pytest.raises(ClientError) as exc:
        cloudtrail.lookup_events(StartTime=history.ended, EndTime=history.started)
    assert error_of(exc)[0] == "InvalidTimeRangeException"


def test_pages_of_one(cloudtrail: Any, history: History) -> None:
    # EC2's events: the lookups themselves (root's, too) do not add to them while paging.
    attributes = [{"AttributeKey": "EventSource", "AttributeValue": "ec2.amazonaws.com"}]
    everything = cloudtrail.lookup_events(LookupAttributes=attributes, EndTime=history.ended)
    expected = [e["EventId"] for e in everything["Events"]]
    assert len(expected) >= 5

    seen: list[str] = []
    kwargs: dict[str, Any] = {"LookupAttributes": attributes, "EndTime": history.ended}
    while True:
        page = cloudtrail.lookup_events(MaxResults=1, **kwargs)
        assert len(page["Events"]) <= 1
        seen += [e["EventId"] for e in page["Events"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == expected

    paginated = [
        e["EventId"]
        for page in cloudtrail.get_paginator("lookup_events").paginate(
            LookupAttributes=attributes,
            EndTime=history.ended,
            PaginationConfig={"PageSize": 2},
        )
        for e in page["Events"]
    ]
    assert paginated == expected

    token = cloudtrail.lookup_events(
        MaxResults=1, LookupAttributes=attributes, EndTime=history.ended
    )["NextToken"]
    with pytest.raises(ClientError) as exc:
        cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateStudio"}],
            NextToken=token,
        )
    assert error_of(exc)[0] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as exc:
        cloudtrail.lookup_events(NextToken="not-a-token")
    assert error_of(exc)[0] == "InvalidNextTokenException"


def test_model_constraints_are_validated(cloudtrail: Any) -> None:
    with pytest.raises(ClientError) as exc:
        cloudtrail.lookup_events(MaxResults=51)
    assert error_of(exc) == (
        "ValidationException",
        "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint:"
        " Member must have value less than or equal to 50",
    )
    with pytest.raises(ClientError) as exc:
        cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "Colour", "AttributeValue": "blue"}]
        )
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "_" * 1001}]
        )
    assert error_of(exc)[0] == "InvalidLookupAttributesException"


def test_lookup_events_itself_is_recorded(cloudtrail: Any, history: History) -> None:
    cloudtrail.lookup_events(MaxResults=1)
    events = lookup(cloudtrail, "EventName", "LookupEvents")
    assert events
    record = record_of(events[0])
    assert record["eventSource"] == "cloudtrail.amazonaws.com"
    assert record["readOnly"] is True
    assert record["responseElements"] is None


def test_the_aws_cli_looks_up_events(gateway: GatewayProcess, history: History) -> None:
    out = aws_cli(
        gateway,
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=CreateStudio",
    )
    events = json.loads(out.stdout)["Events"]
    assert [e["EventName"] for e in events] == ["CreateStudio"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["responseElements"]["studioId"] == history.studio_id
    cli_record = record_of(lookup(gateway.client("cloudtrail"), "EventName", "LookupEvents")[0])
    assert cli_record["userAgent"].startswith("aws-cli/")


def _iam_secrets(gateway: GatewayProcess) -> list[str]:
    """Make the calls that carry secrets (IAM and STS are served: any refusal but a new key's
    short delay is a failure, not a reason to skip)."""
    iam, sts = gateway.client("iam"), gateway.client("sts")
    secrets: list[str] = []

    def attempt(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidClientTokenId":
                raise
            return None  # the new key, not honoured yet (the retry below)

    password = "CloudTrail-Must-Not-See-1!"
    attempt(lambda: iam.create_user(UserName="ct-audited"))
    secrets.append(password)
    attempt(lambda: iam.create_login_profile(UserName="ct-audited", Password=password))
    key = attempt(lambda: iam.create_access_key(UserName="ct-audited"))
    if key is None:
        return secrets
    secret = key["AccessKey"]["SecretAccessKey"]
    secrets.append(secret)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/ct-audited"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = attempt(
        lambda: iam.create_role(
            RoleName="ct-audited-role", AssumeRolePolicyDocument=json.dumps(trust)
        )
    )
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    attempt(
        lambda: iam.put_user_policy(
            UserName="ct-audited", PolicyName="assume", PolicyDocument=json.dumps(allow)
        )
    )
    if role is None:
        return secrets
    user_sts = gateway.client(
        "sts", aws_access_key_id=key["AccessKey"]["AccessKeyId"], aws_secret_access_key=secret
    )
    del sts
    for _ in range(20):  # a new key may take a moment to be honoured, as on AWS
        assumed = attempt(
            lambda: user_sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="audited")
        )
        if assumed is not None:
            secrets += [
                assumed["Credentials"]["SecretAccessKey"],
                assumed["Credentials"]["SessionToken"],
            ]
            break
        time.sleep(0.1)
    return secrets


def stored_and_listed(gateway: GatewayProcess, cloudtrail: Any) -> tuple[str, str]:
    """The raw audit table, and every event LookupEvents gives, as text to search."""
    with sqlite3.connect(gateway.data_dir / "emustudio.db") as db:
        rows = db.execute("SELECT * FROM audit_event").fetchall()
    events = [
        e for page in cloudtrail.get_paginator("lookup_events").paginate() for e in page["Events"]
    ]
    return json.dumps(rows), json.dumps(events, default=str)


def test_no_signature_or_secret_is_stored(
    gateway: GatewayProcess, cloudtrail: Any, history: History
) -> None:
    stored, listed = stored_and_listed(gateway, cloudtrail)
    assert "CreateStudio" in stored and "CreateStudio" in listed
    for text in (stored, listed):
        assert "Signature=" not in text
        assert "not-the-secret" not in text  # the refused call's secret never travels anyway


def test_iam_and_sts_secrets_never_reach_the_history(
    gateway: GatewayProcess, cloudtrail: Any, history: History
) -> None:
    secrets = _iam_secrets(gateway)
    stored, listed = stored_and_listed(gateway, cloudtrail)
    assert "CreateLoginProfile" in stored
    for secret in secrets:
        assert secret not in stored
        assert secret not in listed
