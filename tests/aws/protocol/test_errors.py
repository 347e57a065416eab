"""Error forms, unknown operations and unreadable input, checked through real botocore clients.

The clients never touch the network: a ``before-send`` hook hands each prepared request to
our parser and serializer (a gateway in miniature) and returns our response to botocore.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser as botocore_parser

from emustudio.aws.errors import AwsError, InternalFailure
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.protocol import create_parser, create_serializer, operation_from_request
from emustudio.aws.spec import load_service

REQUEST_ID = "0b1e5d1e-1111-4c2d-8e3f-abcdefabcdef"
Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def to_http_request(request: Any) -> HttpRequest:
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = {
        k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in request.headers.items()
    }
    return HttpRequest.build(request.method, request.url, headers, body)


def answer(service: str, req: HttpRequest, handler: Handler) -> HttpResponse:
    model = load_service(service)
    serializer = create_serializer(model)
    try:
        op, params = create_parser(model).parse(req)
        return serializer.serialize_response(op, handler(op.name, params), REQUEST_ID)
    except AwsError as error:
        return serializer.serialize_error(error, REQUEST_ID)


def client(service: str, handler: Handler, validate: bool = True) -> Any:
    session = botocore.session.get_session()
    made = session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url="http://emustudio.test",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=validate),
    )

    def before_send(request: Any, **_: Any) -> AWSResponse:
        response = answer(service, to_http_request(request), handler)
        return AWSResponse(request.url, response.status, response.headers, _Raw(response.body))

    made.meta.events.register("before-send", before_send)
    return made


def raising(error: AwsError) -> Handler:
    def handler(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise error

    return handler


# --- modelled and unmodelled errors, per protocol ------------------------------------------


def test_json_error_with_extra_member() -> None:
    error = AwsError("Studio es-1 does not exist", code="InvalidRequestException")
    error.extra["ErrorCode"] = "NoSuchStudio"
    emr = client("emr", raising(error))
    with pytest.raises(emr.exceptions.InvalidRequestException) as caught:
        emr.describe_studio(StudioId="es-1")
    response = caught.value.response
    assert response["Error"]["Code"] == "InvalidRequestException"
    assert response["Error"]["Message"] == "Studio es-1 does not exist"
    assert response["ErrorCode"] == "NoSuchStudio"
    assert response["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_json_error_body_form() -> None:
    error = AwsError("boom", code="InvalidRequestException", ErrorCode="E1")
    response = create_serializer(load_service("emr")).serialize_error(error, REQUEST_ID)
    assert json.loads(response.body) == {
        "__type": "InvalidRequestException",
        "Message": "boom",
        "ErrorCode": "E1",
    }
    assert response.headers["x-amzn-RequestId"] == REQUEST_ID
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"


def test_query_modelled_error() -> None:
    error = AwsError("The user with name bob cannot be found.", code="NoSuchEntity", status=404)
    iam = client("iam", raising(error))
    with pytest.raises(iam.exceptions.NoSuchEntityException) as caught:
        iam.get_user(UserName="bob")
    response = caught.value.response
    assert response["Error"] == {
        "Type": "Sender",
        "Code": "NoSuchEntity",
        "Message": "The user with name bob cannot be found.",
    }
    assert response["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_query_server_fault_is_receiver() -> None:
    sts = client("sts", raising(InternalFailure("oops")))
    with pytest.raises(ClientError) as caught:
        sts.get_caller_identity()
    error = caught.value.response["Error"]
    assert (error["Type"], error["Code"], error["Message"]) == (
        "Receiver",
        "InternalFailure",
        "oops",
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_query_error_extra_members_travel_in_the_error_element() -> None:
    error = AwsError("slow down", code="Throttling", RetryAfter="5")
    response = create_serializer(load_service("iam")).serialize_error(error, REQUEST_ID)
    parsed = botocore_parser("query").parse(
        {"status_code": 400, "headers": {}, "body": response.body}, None
    )
    assert parsed["Error"]["RetryAfter"] == "5"
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_ec2_error() -> None:
    error = AwsError("The vpc ID 'vpc-1' does not exist", code="InvalidVpcID.NotFound")
    ec2 = client("ec2", raising(error))
    with pytest.raises(ClientError) as caught:
        ec2.describe_vpcs(VpcIds=["vpc-1"])
    response = caught.value.response
    assert response["Error"]["Code"] == "InvalidVpcID.NotFound"
    assert response["Error"]["Message"] == "The vpc ID 'vpc-1' does not exist"
    assert response["ResponseMetadata"]["RequestId"] == REQUEST_ID
    body = answer("ec2", HttpRequest.build("POST", "/", {}, b"Action=Nope"), raising(error)).body
    assert b"<Response><Errors><Error><Code>InvalidAction</Code>" in body
    assert f"<RequestID>{REQUEST_ID}</RequestID>".encode() in body


def test_success_through_clients() -> None:
    def handler(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        assert (operation, params) == ("GetUser", {"UserName": "bob"})
        return {
            "User": {
                "Path": "/",
                "UserName": "bob",
                "UserId": "AIDA1",
                "Arn": "arn:x",
                "CreateDate": "2026-01-01T00:00:00Z",
            }
        }

    user = client("iam", handler).get_user(UserName="bob")["User"]
    assert user["UserName"] == "bob"
    assert user["CreateDate"].year == 2026


# --- unknown operations ---------------------------------------------------------------------


def _error_of(service: str, req: HttpRequest) -> tuple[int, dict[str, Any]]:
    response = answer(service, req, raising(AwsError("unreachable")))
    protocol = load_service(service).protocol
    parsed = botocore_parser(protocol).parse(
        {
            "status_code": response.status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.body,
        },
        None,
    )
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    return response.status, parsed["Error"]


@pytest.mark.parametrize("target", ["ElasticMapReduce.Nope", "Other.ListClusters", ""])
def test_json_unknown_or_missing_target(target: str) -> None:
    headers = {"X-Amz-Target": target} if target else {}
    status, error = _error_of("emr", HttpRequest.build("POST", "/", headers, b"{}"))
    assert status == 400
    assert error["Code"] == "UnknownOperationException"


@pytest.mark.parametrize("service", ["iam", "sts", "ec2"])
def test_query_unknown_and_missing_action(service: str) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, error = _error_of(
        service, HttpRequest.build("POST", "/", form, b"Action=Nope&Version=1")
    )
    assert status == 400
    assert error["Code"] == "InvalidAction"
    assert error["Message"] == "The action Nope is not valid for this web service."
    status, error = _error_of(service, HttpRequest.build("POST", "/", form, b"Version=1"))
    assert (status, error["Code"], error["Message"]) == (400, "MissingAction", "Missing Action")


def test_operation_from_request() -> None:
    emr, iam = load_service("emr"), load_service("iam")
    target = {"X-Amz-Target": "ElasticMapReduce.ListStudios"}
    assert operation_from_request(emr, HttpRequest.build("POST", "/", target, b"")) == "ListStudios"
    assert operation_from_request(emr, HttpRequest.build("POST", "/", {}, b"")) is None
    get = HttpRequest.build("GET", "/?Action=ListUsers", {})
    assert operation_from_request(iam, get) == "ListUsers"
    assert operation_from_request(iam, HttpRequest.build("GET", "/?Action=Nope", {})) is None


def test_unknown_protocol() -> None:
    model = load_service("emr")
    fake = type(model)(dict(model._service_description, metadata={"protocol": "rest-json"}), "x")
    with pytest.raises(NotImplementedError):
        create_parser(fake)


# --- unreadable input ------------------------------------------------------------------------


def _json_error(operation: str, body: bytes) -> tuple[str, str]:
    req = HttpRequest.build("POST", "/", {"X-Amz-Target": f"ElasticMapReduce.{operation}"}, body)
    status, error = _error_of("emr", req)
    assert status == 400
    return error["Code"], error["Message"]


@pytest.mark.parametrize("body", [b"{", b"[]", b'"x"', b"\xff\xfe", b"null"])
def test_malformed_json(body: bytes) -> None:
    code, _ = _json_error("ListStudios", body)
    assert code == "SerializationException"


def test_empty_json_body_is_an_empty_object() -> None:
    op, params = create_parser(load_service("emr")).parse(
        HttpRequest.build("POST", "/", {"X-Amz-Target": "ElasticMapReduce.ListStudios"}, b"")
    )
    assert (op.name, params) == ("ListStudios", {})


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        (
            "DescribeStudio",
            {"StudioId": {"a": 1}},
            "Start of structure or map found where not expected.",
        ),
        ("DescribeStudio", {"StudioId": ["a"]}, "Start of list found where not expected"),
        ("DescribeStudio", {"StudioId": 5}, "NUMBER_VALUE can not be converted to a String"),
        (
            "ListClusters",
            {"ClusterStates": "RUNNING"},
            "STRING_VALUE can not be converted to a List",
        ),
        ("ListClusters", {"CreatedAfter": True}, "TRUE_VALUE can not be converted to a Date"),
        ("ListStudios", {"Marker": False}, "FALSE_VALUE can not be converted to a String"),
        (
            "CreateStudio",
            {"Tags": {"Key": "k"}},
            "Start of structure or map found where not expected.",
        ),
        (
            "PutAutoTerminationPolicy",
            {"ClusterId": "j-1", "AutoTerminationPolicy": {"IdleTimeout": "60"}},
            "STRING_VALUE can not be converted to a Long",
        ),
        (
            "PutAutoTerminationPolicy",
            {"ClusterId": "j-1", "AutoTerminationPolicy": {"IdleTimeout": 1.5}},
            "NUMBER_VALUE can not be converted to a Long",
        ),
    ],
)
def test_wrong_json_types(operation: str, body: dict[str, Any], message: str) -> None:
    assert _json_error(operation, json.dumps(body).encode()) == ("SerializationException", message)


def test_json_integer_out_of_range() -> None:
    body = {"ClusterId": "j-1", "StepConcurrencyLevel": 2**31}
    code, message = _json_error("ModifyCluster", json.dumps(body).encode())
    assert (code, message) == (
        "SerializationException",
        f"Numeric value ({2**31}) out of range of int",
    )


def test_json_null_members_are_absent() -> None:
    body = json.dumps({"Marker": None}).encode()
    req = HttpRequest.build("POST", "/", {"X-Amz-Target": "ElasticMapReduce.ListStudios"}, body)
    assert create_parser(load_service("emr")).parse(req)[1] == {}


def test_query_values_that_do_not_convert() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"Action=ListUsers&Version=2010-05-08&MaxItems=many"
    status, error = _error_of("iam", HttpRequest.build("POST", "/", form, body))
    assert (status, error["Code"]) == (400, "InvalidParameterValue")
    assert (
        error["Message"] == "Value (many) for parameter MaxItems is invalid. Expected: 'Integer'."
    )
    body = b"Action=DescribeVpcs&Version=2016-11-15&DryRun=maybe"
    status, error = _error_of("ec2", HttpRequest.build("POST", "/", form, body))
    assert (status, error["Code"]) == (400, "InvalidParameterValue")
    assert "DryRun" in error["Message"]
