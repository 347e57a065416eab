"""Bad requests get AWS's error in the service's wire format and leave the store unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.vpc import make_studio_network, studio_args

http = urllib3.PoolManager()


def send(
    gateway: GatewayProcess,
    body: bytes,
    *,
    target: str = "ElasticMapReduce.ListStudios",
    secret: str = "test",
    key: str = "test",
    service: str = "elasticmapreduce",
    content_type: str = "application/x-amz-json-1.1",
    sign: bool = True,
) -> tuple[int, dict[str, Any] | str]:
    request = AWSRequest(
        method="POST",
        url=gateway.endpoint_url + "/",
        data=body,
        headers={"Content-Type": content_type, **({"X-Amz-Target": target} if target else {})},
    )
    if sign:
        SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    response = http.request("POST", prepared.url, body=body, headers=dict(prepared.headers))
    text = response.data.decode()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


@pytest.fixture(scope="module")
def snapshot(gateway: GatewayProcess) -> Iterator[Any]:
    ec2, emr = gateway.client("ec2"), gateway.client("emr")
    net = make_studio_network(ec2, subnets=1)
    emr.create_studio(**studio_args(net))

    def state() -> tuple[Any, ...]:
        return (
            sorted(s["StudioId"] for s in emr.list_studios()["Studios"]),
            sorted(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]),
            sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]),
        )

    before = state()
    yield net
    assert state() == before, "a refused request changed the store"


def test_malformed_json(gateway: GatewayProcess, snapshot: Any) -> None:
    status, body = send(gateway, b'{"Name": ', target="ElasticMapReduce.CreateStudio")
    assert status == 400
    assert isinstance(body, dict) and body["__type"].endswith("SerializationException")


def test_wrong_types(gateway: GatewayProcess, snapshot: Any) -> None:
    args = studio_args(snapshot)
    args["SubnetIds"] = "subnet-not-a-list"
    status, body = send(gateway, json.dumps(args).encode(), target="ElasticMapReduce.CreateStudio")
    assert status == 400
    assert isinstance(body, dict) and body["__type"].endswith("SerializationException")


def test_constraint_violations_use_the_validation_format(
    gateway: GatewayProcess, snapshot: Any
) -> None:
    args = studio_args(snapshot, Name="n" * 257, AuthMode="KERBEROS")
    status, body = send(gateway, json.dumps(args).encode(), target="ElasticMapReduce.CreateStudio")
    assert status == 400
    assert isinstance(body, dict) and body["__type"].endswith("ValidationException")
    message = body.get("message") or body.get("Message")
    assert message.startswith("2 validation errors detected: ")
    assert "Member must have length less than or equal to 256" in message
    assert "Member must satisfy enum value set: [SSO, IAM]" in message


def test_unknown_target(gateway: GatewayProcess, snapshot: Any) -> None:
    status, body = send(gateway, b"{}", target="ElasticMapReduce.LaunchRocket")
    assert status == 400
    assert isinstance(body, dict) and body["__type"].endswith("UnknownOperationException")


def test_huge_body(gateway: GatewayProcess, snapshot: Any) -> None:
    huge = json.dumps(studio_args(snapshot, Description="x" * (3 << 20))).encode()
    status, body = send(gateway, huge, target="ElasticMapReduce.CreateStudio")
    assert status == 413
    assert isinstance(body, dict) and body["__type"].endswith("RequestEntityTooLarge")


def test_bad_signature(gateway: GatewayProcess, snapshot: Any) -> None:
    args = json.dumps(studio_args(snapshot)).encode()
    status, body = send(gateway, args, target="ElasticMapReduce.CreateStudio", secret="wrong")
    assert status in (400, 403)
    assert isinstance(body, dict) and body["__type"].endswith("InvalidSignatureException")


def test_unknown_access_key(gateway: GatewayProcess, snapshot: Any) -> None:
    args = json.dumps(studio_args(snapshot)).encode()
    status, body = send(gateway, args, target="ElasticMapReduce.CreateStudio", key="AKIANOBODY")
    assert status in (400, 403)
    assert isinstance(body, dict) and body["__type"].endswith("UnrecognizedClientException")


def test_unsigned(gateway: GatewayProcess, snapshot: Any) -> None:
    args = json.dumps(studio_args(snapshot)).encode()
    status, body = send(gateway, args, target="ElasticMapReduce.CreateStudio", sign=False)
    assert status in (400, 403)
    assert isinstance(body, dict) and body["__type"].endswith("MissingAuthenticationTokenException")


def test_unsupported_service(gateway: GatewayProcess, snapshot: Any) -> None:
    status, body = send(
        gateway,
        b"{}",
        target="DynamoDB_20120810.ListTables",
        service="dynamodb",
        content_type="application/x-amz-json-1.0",
    )
    assert status == 400
    assert isinstance(body, dict) and "dynamodb" in (body.get("message") or body.get("Message"))


def test_ec2_missing_parameter_is_ec2_shaped(gateway: GatewayProcess, snapshot: Any) -> None:
    status, body = send(
        gateway,
        b"Action=CreateSubnet&Version=2016-11-15&CidrBlock=10.9.0.0%2F24",
        target="",
        service="ec2",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert status == 400
    assert isinstance(body, str)
    assert "<Code>MissingParameter</Code>" in body
    assert "The request must contain the parameter VpcId" in body


def test_unsigned_query_request(gateway: GatewayProcess, snapshot: Any) -> None:
    status, body = send(
        gateway,
        b"Action=DescribeVpcs&Version=2016-11-15",
        target="",
        sign=False,
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert status == 403
    assert isinstance(body, str) and "<Code>MissingAuthenticationToken</Code>" in body


def test_unimplemented_operation_names_itself(gateway: GatewayProcess, snapshot: Any) -> None:
    status, body = send(gateway, b"{}", target="ElasticMapReduce.ListSecurityConfigurations")
    assert status == 501
    assert isinstance(body, dict) and "ListSecurityConfigurations" in (
        body.get("message") or body.get("Message")
    )
