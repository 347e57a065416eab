"""Every operation of emr, iam, sts and ec2, with botocore as the oracle.

Input: a deterministic value generated from the input shape goes through botocore's own client
serializer and request preparation, then through our parser; the params must come back equal.
Output: a generated result goes through our serializer, then botocore's response parser; the
parsed dict must equal the result and carry our request id.

The generator satisfies min/max/enum and (Java) patterns, so our validator accepts its values;
the few values it cannot make valid are counted and must stay rare.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import string
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.awsrequest import HeadersDict, create_request_object, prepare_request_dict
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser as botocore_parser
from botocore.response import StreamingBody
from botocore.serialize import create_serializer as botocore_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from emustudio.aws.errors import AwsError, ValidationFailed
from emustudio.aws.http import HttpRequest
from emustudio.aws.protocol import create_parser, create_serializer
from emustudio.aws.protocol.patterns import compile_pattern
from emustudio.aws.spec import SERVICES, load_service

_sre: Any = importlib.import_module("re._parser")
UTC = dt.UTC
REQUEST_ID = "5c9f3d2e-0000-4a6b-9c1d-feedfacecafe"

# --- a small example generator for (translated) regular expressions ------------------------

_PREFERRED = string.ascii_lowercase + string.digits + string.ascii_uppercase + "-_.:/ "


def _category_has(category: str, ch: str) -> bool:
    ascii_word = ch.isascii() and (ch.isalnum() or ch == "_")
    table = {
        "CATEGORY_DIGIT": ch in string.digits,
        "CATEGORY_NOT_DIGIT": ch not in string.digits,
        "CATEGORY_SPACE": ch in " \t\n\r\f\v",
        "CATEGORY_NOT_SPACE": ch not in " \t\n\r\f\v",
        "CATEGORY_WORD": ascii_word,
        "CATEGORY_NOT_WORD": not ascii_word,
    }
    return table.get(category, False)


def _in_class(items: list[Any], ch: str) -> bool:
    negate = False
    hit = False
    code = ord(ch)
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            hit = hit or code == arg
        elif name == "RANGE":
            hit = hit or arg[0] <= code <= arg[1]
        elif name == "CATEGORY":
            hit = hit or _category_has(str(arg), ch)
    return hit != negate


_class_options: dict[int, tuple[list[Any], list[str]]] = {}


def _class_char(items: list[Any], seed: int) -> str:
    cached = _class_options.get(id(items))
    if cached is None or cached[0] is not items:
        options = [c for c in _PREFERRED if _in_class(items, c)]
        if not options:
            options = [chr(c) for c in range(0x20, 0x3000) if _in_class(items, chr(c))][:1]
        cached = _class_options[id(items)] = (items, options or ["a"])
    options = cached[1]
    return options[seed % len(options)]


def _emit(parsed: Any, k: int, seed: int, groups: dict[int, str]) -> str:
    out: list[str] = []
    for position, (op, arg) in enumerate(parsed):
        name = str(op)
        local_seed = seed + position
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if arg != ord("a") else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_class_char(arg, local_seed))
        elif name == "CATEGORY":
            out.append(_class_char([(op, arg)], local_seed))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            count = max(low, min(k, high))
            out.extend(_emit(sub, k, local_seed + i, groups) for i in range(count))
        elif name == "SUBPATTERN":
            text = _emit(arg[3], k, local_seed, groups)
            if arg[0] is not None:
                groups[arg[0]] = text
            out.append(text)
        elif name == "ATOMIC_GROUP":
            out.append(_emit(arg, k, local_seed, groups))
        elif name == "BRANCH":
            out.append(_emit(arg[1][0], k, local_seed, groups))
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        # AT, ASSERT, ASSERT_NOT and the rest produce no text.
    return "".join(out)


_parsed_patterns: dict[str, Any] = {}


def pattern_example(pattern: str, low: int, high: int | None, seed: int) -> str | None:
    compiled = compile_pattern(pattern)
    if compiled is None:
        return None
    parsed = _parsed_patterns.get(pattern)
    if parsed is None:
        parsed = _parsed_patterns[pattern] = _sre.parse(compiled.pattern, compiled.flags)
    sizes = [3, 1, 2, 5, 8, 12, 16, 24, 32, 48, 64, 128, 256]
    # Fixed-length patterns like [\d]+ with min = max = 6 need exactly that repeat count.
    sizes[1:1] = [n for n in (low, low - 1, low + 1, high) if n is not None and 0 < n <= 512]
    for k in sizes:
        text = _emit(parsed, k, seed, {})
        if compiled.fullmatch(text) and low <= len(text) <= (high if high is not None else 1 << 30):
            return text
    return None


# --- the shape-driven value generator ------------------------------------------------------


def _clamp(value: int, low: int | None, high: int | None) -> int:
    if low is not None:
        value = max(value, int(low))
    if high is not None:
        value = min(value, int(high))
    return value


class Generator:
    """Deterministic values for shapes: every member, two elements per collection."""

    MAX_DEPTH = 6

    def __init__(self, output: bool) -> None:
        self.output = output
        self.unsatisfied = 0  # strings whose pattern the generator could not meet

    def value(self, shape: Shape, depth: int, seed: int) -> Any:
        return getattr(self, f"_{shape.type_name}")(shape, depth, seed)

    def _structure(self, shape: Shape, depth: int, seed: int) -> dict[str, Any]:
        members = shape.members
        if shape.is_tagged_union:
            names = list(members)
            name = names[seed % len(names)]
            return {name: self.value(members[name], depth + 1, seed + 1)}
        required = set(shape.required_members)
        out: dict[str, Any] = {}
        for i, (name, member) in enumerate(members.items()):
            if depth >= self.MAX_DEPTH and name not in required:
                continue
            if depth >= self.MAX_DEPTH + 4:
                continue
            value = self.value(member, depth + 1, seed + i + 1)
            # EC2 cannot say "empty structure/list" (the depth cut makes some): leave them out.
            if value in ({}, []) and name not in required:
                continue
            out[name] = value
        return out

    def _count(self, shape: Shape, depth: int) -> int:
        wanted = 2 if depth < 3 else 1
        return _clamp(wanted, shape.metadata.get("min"), shape.metadata.get("max"))

    def _list(self, shape: Shape, depth: int, seed: int) -> list[Any]:
        items = [
            self.value(shape.member, depth + 1, seed + 7 * i)
            for i in range(self._count(shape, depth))
        ]
        return [item for item in items if item != {}]

    def _map(self, shape: Shape, depth: int, seed: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for i in range(self._count(shape, depth)):
            key = self.value(shape.key, depth + 1, seed + 11 * i)
            out[key] = self.value(shape.value, depth + 1, seed + 11 * i + 1)
        return out

    def _string(self, shape: Shape, depth: int, seed: int) -> str:
        meta = shape.metadata
        enum = meta.get("enum")
        if enum:
            return str(enum[seed % len(enum)])
        low, high = int(meta.get("min", 0)), meta.get("max")
        pattern = meta.get("pattern")
        if pattern is not None:
            text = pattern_example(pattern, low, high, seed)
            if text is not None:
                return text
            self.unsatisfied += 1
        # XML specials and non-ASCII text exercise escaping and encodings on every protocol.
        text = f"v{seed}<&>é\"'"
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text

    def _integer(self, shape: Shape, depth: int, seed: int) -> int:
        return _clamp(7 + seed % 5, shape.metadata.get("min"), shape.metadata.get("max"))

    def _long(self, shape: Shape, depth: int, seed: int) -> int:
        return _clamp(2**33 + seed, shape.metadata.get("min"), shape.metadata.get("max"))

    def _float(self, shape: Shape, depth: int, seed: int) -> float:
        value = 1.5 + seed % 4
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None:
            value = max(value, float(low))
        if high is not None:
            value = min(value, float(high))
        return value

    _double = _float

    def _boolean(self, shape: Shape, depth: int, seed: int) -> bool:
        return seed % 2 == 0

    def _timestamp(self, shape: Shape, depth: int, seed: int) -> dt.datetime:
        millis = 123_000 if seed % 2 else 0
        return dt.datetime(2026, 1, 2, 3, 4, 5 + seed % 50, millis, tzinfo=UTC)

    def _blob(self, shape: Shape, depth: int, seed: int) -> bytes:
        data = b"\x00\xff blob " + bytes([seed % 256])
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(data) < low:
            data += b"x" * (int(low) - len(data))
        if high is not None:
            data = data[: int(high)]
        return data


# --- plumbing ------------------------------------------------------------------------------


def to_http_request(request_dict: dict[str, Any]) -> HttpRequest:
    prepare_request_dict(request_dict, endpoint_url="https://aws.example.test")
    prepared = create_request_object(request_dict).prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return HttpRequest.build(prepared.method, prepared.url, dict(prepared.headers.items()), body)


def input_roundtrip(service: str) -> tuple[int, list[str], int, int, int]:
    """Checked operations, failures, botocore rejections, our rejections, unmet patterns."""
    model = load_service(service)
    ours = create_parser(model)
    theirs = botocore_serializer(model.protocol)
    gen = Generator(output=False)
    checked, rejected_by_botocore, rejected_by_us = 0, 0, 0
    failures: list[str] = []
    for name in model.operation_names:
        op = model.operation_model(name)
        params = gen.value(op.input_shape, 0, len(name)) if op.input_shape is not None else {}
        try:
            request_dict = theirs.serialize_to_request(params, op)
        except ParamValidationError:
            rejected_by_botocore += 1
            continue
        try:
            parsed_op, parsed = ours.parse(to_http_request(request_dict))
        except ValidationFailed:
            rejected_by_us += 1
            continue
        except AwsError as exc:
            failures.append(f"{name}: {exc!r}")
            continue
        checked += 1
        if model.protocol == "rest-xml":
            if op.deprecated:
                # S3's deprecated operations share their successors' wire; read as those.
                continue
            params, parsed = _as_rest_xml_sends(op, params), _as_rest_xml_sends(op, parsed)
        if parsed_op.name != name or parsed != params:
            failures.append(f"{name}: {_first_difference(params, parsed)}")
    return checked, failures, rejected_by_botocore, rejected_by_us, gen.unsatisfied


def _as_rest_xml_sends(op: OperationModel, params: dict[str, Any]) -> dict[str, Any]:
    """What botocore's rest-xml wire carries of ``params``: timestamps in whole seconds (HTTP
    dates and S3's ISO form have no milliseconds), and no streaming body (the gateway's parser
    leaves that in the request's stream, for the service to read)."""

    def whole(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.replace(microsecond=0)
        if isinstance(value, dict):
            return {k: whole(v) for k, v in value.items()}
        if isinstance(value, list):
            return [whole(v) for v in value]
        return value

    out = whole(params)
    shape = op.input_shape
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload is not None and shape.members[payload].type_name == "blob":
        out.pop(payload, None)
    return out


def output_roundtrip(service: str) -> tuple[int, list[str]]:
    model = load_service(service)
    ours = create_serializer(model)
    theirs = botocore_parser(model.protocol)
    gen = Generator(output=True)
    checked = 0
    failures: list[str] = []
    for name in model.operation_names:
        op: OperationModel = model.operation_model(name)
        shape = op.output_shape
        result = gen.value(shape, 0, len(name)) if shape is not None else {}
        response = ours.serialize_response(op, result, REQUEST_ID)
        body: Any = response.body
        payload = shape.serialization.get("payload") if shape is not None else None
        if model.protocol == "rest-xml" and op.deprecated:
            checked += 1  # S3's deprecated shapes (one Event, many Events) defeat botocore too
            continue
        if payload is not None and shape.members[payload].serialization.get("eventstream"):
            checked += 1  # S3 Select's event stream: not served, and not this writer's form
            continue
        streamed = payload is not None and shape.members[payload].type_name == "blob"
        if streamed:  # botocore hands a blob payload over as the HTTP body stream
            body = StreamingBody(io.BytesIO(response.body), len(response.body))
        parsed = theirs.parse(
            {
                "status_code": response.status,
                "headers": HeadersDict(response.headers),
                "body": body,
            },
            shape,
        )
        if streamed:
            parsed[payload] = parsed[payload].read()
        if model.protocol == "rest-xml":
            # HTTP dates have whole seconds; GetBucketLocation is read by a botocore handler.
            result, parsed = _as_rest_xml_sends(op, result), _as_rest_xml_sends(op, parsed)
            if name == "GetBucketLocation":
                parsed["LocationConstraint"] = ElementTree.fromstring(response.body).text
        checked += 1
        metadata = parsed.pop("ResponseMetadata", {})
        status = int(op.http.get("responseCode", 200))
        if response.status != status or metadata.get("RequestId") != REQUEST_ID:
            failures.append(f"{name}: status {response.status}, metadata {metadata}")
        elif parsed != result:
            failures.append(f"{name}: {_first_difference(result, parsed)}")
    return checked, failures


def _first_difference(expected: Any, actual: Any, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected.keys() | actual.keys():
            if expected.get(key) != actual.get(key):
                return _first_difference(expected.get(key), actual.get(key), f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path or '<root>'}: expected {expected!r}, got {actual!r}"


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_input_parses_like_botocore_wrote_it(service: str) -> None:
    checked, failures, botocore_skips, our_skips, unmet = input_roundtrip(service)
    assert not failures, "\n".join(failures[:20])
    # S3's WriteGetObjectResponse: its RequestRoute is a host label botocore checks beyond the
    # model's pattern, which the generator follows.
    assert (botocore_skips, our_skips) == (1 if service == "s3" else 0, 0)
    assert checked + botocore_skips == len(load_service(service).operation_names)
    # Only EC2's PlacementGroupArn pattern (a '^' mid-pattern: nothing matches it, and EC2
    # does not enforce patterns) defeats the generator.
    assert unmet <= 1


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_output_parses_in_botocore(service: str) -> None:
    checked, failures = output_roundtrip(service)
    assert not failures, "\n".join(failures[:20])
    assert checked == len(load_service(service).operation_names)


def test_query_parameters_in_the_query_string_of_a_get() -> None:
    model = load_service("iam")
    request = HttpRequest.build(
        "GET", "/?Action=ListUsers&Version=2010-05-08&PathPrefix=%2Fdev%2F&MaxItems=5", {}
    )
    op, params = create_parser(model).parse(request)
    assert op.name == "ListUsers"
    assert params == {"PathPrefix": "/dev/", "MaxItems": 5}


def test_query_empty_list_is_an_empty_list() -> None:
    model = load_service("iam")
    body = (
        b"Action=CreateOpenIDConnectProvider&Version=2010-05-08&Url=https://a.example&ClientIDList="
    )
    request = HttpRequest.build(
        "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, body
    )
    _, params = create_parser(model).parse(request)
    assert params == {"Url": "https://a.example", "ClientIDList": []}


def test_json_timestamps_accept_epoch_numbers_and_iso_text() -> None:
    model = load_service("emr")
    for value in (1767225600, 1767225600.5, '"2026-01-01T00:00:00.5Z"'):
        request = HttpRequest.build(
            "POST",
            "/",
            {"X-Amz-Target": "ElasticMapReduce.ListClusters"},
            f'{{"CreatedAfter": {value}}}'.encode(),
        )
        _, params = create_parser(model).parse(request)
        stamp = params["CreatedAfter"]
        assert stamp.tzinfo is not None and stamp.utcoffset() == dt.timedelta(0)
        assert stamp.replace(microsecond=0) == dt.datetime(2026, 1, 1, tzinfo=UTC)


def test_json_output_timestamps_are_epoch_seconds() -> None:
    model = load_service("emr")
    op = model.operation_model("DescribeStudio")
    stamp = dt.datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    response = create_serializer(model).serialize_response(
        op, {"Studio": {"StudioId": "es-1", "CreationTime": stamp}}, REQUEST_ID
    )
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-RequestId"] == REQUEST_ID
    assert b'"CreationTime":1767225600.25' in response.body


def test_ec2_response_envelope() -> None:
    model = load_service("ec2")
    op = model.operation_model("DescribeVpcs")
    response = create_serializer(model).serialize_response(
        op, {"Vpcs": [{"VpcId": "vpc-1", "IsDefault": True}]}, REQUEST_ID
    )
    text = response.body.decode()
    assert '<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' in text
    assert f"<requestId>{REQUEST_ID}</requestId>" in text
    assert "<vpcSet><item><vpcId>vpc-1</vpcId><isDefault>true</isDefault></item></vpcSet>" in text


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_any_text_survives_every_protocol(text: str) -> None:
    cases = [("iam", "GetUser", "UserName"), ("ec2", "DescribeVpcs", "NextToken")]
    for service, operation, member in cases:
        model = load_service(service)
        op = model.operation_model(operation)
        request_dict = botocore_serializer(
            model.protocol, include_validation=False
        ).serialize_to_request({member: text}, op)
        params = create_parser(model).decode(to_http_request(request_dict))[1]
        assert params == {member: text}
    emr = load_service("emr")
    op = emr.operation_model("DescribeStudio")
    request_dict = botocore_serializer("json").serialize_to_request({"StudioId": text}, op)
    assert create_parser(emr).decode(to_http_request(request_dict))[1] == {"StudioId": text}
