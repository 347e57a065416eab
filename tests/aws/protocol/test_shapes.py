"""Serialization traits the four real models barely use (flattened lists and maps,
``locationName`` on members, list items and map keys), on a small synthetic model, for
every protocol, with botocore's client serializer and response parser as the oracle.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.model import ServiceModel
from botocore.parsers import create_parser as botocore_parser
from botocore.serialize import create_serializer as botocore_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from emustudio.aws.http import HttpRequest
from emustudio.aws.protocol import create_parser, create_serializer

SHAPES: dict[str, Any] = {
    "EchoShape": {
        "type": "structure",
        "members": {
            "FlatList": {"shape": "FlatList"},
            "FlatNamed": {"shape": "FlatNamedList"},
            "NamedList": {"shape": "NamedItemList"},
            "FlatMap": {"shape": "FlatMap"},
            "NamedMap": {"shape": "NamedMap"},
            "Renamed": {"shape": "Inner", "locationName": "Other"},
            "Nested": {"shape": "InnerList"},
            "Stamp": {"shape": "Stamp"},
            "Data": {"shape": "Data"},
            "Flag": {"shape": "Flag"},
            "Ratio": {"shape": "Ratio"},
            "Count": {"shape": "Count"},
            "Text": {"shape": "Str"},
        },
    },
    "FlatList": {"type": "list", "member": {"shape": "Str"}, "flattened": True},
    "FlatNamedList": {
        "type": "list",
        "member": {"shape": "Str", "locationName": "Entry"},
        "flattened": True,
    },
    "NamedItemList": {"type": "list", "member": {"shape": "Str", "locationName": "Thing"}},
    "FlatMap": {
        "type": "map",
        "key": {"shape": "Str", "locationName": "Name"},
        "value": {"shape": "Str", "locationName": "Val"},
        "flattened": True,
    },
    "NamedMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Inner"}},
    "Inner": {
        "type": "structure",
        "members": {"A": {"shape": "Str"}, "B": {"shape": "NamedItemList"}},
    },
    "InnerList": {"type": "list", "member": {"shape": "Inner"}},
    "Str": {"type": "string"},
    "Stamp": {"type": "timestamp"},
    "Data": {"type": "blob"},
    "Flag": {"type": "boolean"},
    "Ratio": {"type": "double"},
    "Count": {"type": "long"},
}

VALUE: dict[str, Any] = {
    "FlatList": ["a", "b"],
    "FlatNamed": ["c", "d"],
    "NamedList": ["e"],
    "FlatMap": {"k1": "v1", "k2": "v2"},
    "NamedMap": {"m": {"A": "x", "B": ["y", "z"]}},
    "Renamed": {"A": "renamed"},
    "Nested": [{"A": "n1"}, {"B": ["n2"]}],
    "Stamp": dt.datetime(2026, 3, 4, 5, 6, 7, 89_000, tzinfo=dt.UTC),
    "Data": b"\x00\x01\xfe",
    "Flag": False,
    "Ratio": -2.25,
    "Count": 2**40,
    "Text": "a & b < c",
}


def synthetic(protocol: str) -> ServiceModel:
    metadata: dict[str, Any] = {
        "apiVersion": "2020-01-01",
        "protocol": protocol,
        "serviceId": "Synth",
        "endpointPrefix": "synth",
        "signatureVersion": "v4",
        "xmlNamespace": "https://synth.example/doc/2020-01-01/",
        "jsonVersion": "1.0",
        "targetPrefix": "Synth_20200101",
    }
    output: dict[str, Any] = {"shape": "EchoShape"}
    if protocol == "query":
        output["resultWrapper"] = "EchoResult"
    return ServiceModel(
        {
            "version": "2.0",
            "metadata": metadata,
            "operations": {
                "Echo": {
                    "name": "Echo",
                    "http": {"method": "POST", "requestUri": "/"},
                    "input": {"shape": "EchoShape"},
                    "output": output,
                }
            },
            "shapes": copy.deepcopy(SHAPES),
        },
        service_name=f"synth-{protocol}",
    )


def through_botocore_request(model: ServiceModel, params: dict[str, Any]) -> HttpRequest:
    op = model.operation_model("Echo")
    request_dict = botocore_serializer(model.protocol).serialize_to_request(params, op)
    prepare_request_dict(request_dict, endpoint_url="https://synth.example")
    prepared = create_request_object(request_dict).prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return HttpRequest.build(prepared.method, prepared.url, dict(prepared.headers.items()), body)


def through_botocore_response(model: ServiceModel, result: dict[str, Any]) -> dict[str, Any]:
    op = model.operation_model("Echo")
    response = create_serializer(model).serialize_response(op, result, "rid-1")
    parsed: dict[str, Any] = botocore_parser(model.protocol).parse(
        {
            "status_code": response.status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.body,
        },
        op.output_shape,
    )
    assert parsed.pop("ResponseMetadata")["RequestId"] == "rid-1"
    return parsed


@pytest.mark.parametrize("protocol", ["query", "ec2", "json"])
def test_input_traits(protocol: str) -> None:
    model = synthetic(protocol)
    op, params = create_parser(model).parse(through_botocore_request(model, VALUE))
    assert op.name == "Echo"
    assert params == VALUE


@pytest.mark.parametrize("protocol", ["query", "ec2", "json"])
def test_output_traits(protocol: str) -> None:
    model = synthetic(protocol)
    assert through_botocore_response(model, VALUE) == VALUE


def test_query_wire_names() -> None:
    request = through_botocore_request(synthetic("query"), VALUE)
    form = request.body.decode()
    for key in (
        "FlatList.1=a",
        "Entry.2=d",
        "NamedList.Thing.1=e",
        "FlatMap.1.Name=k1",
        "FlatMap.2.Val=v2",
        "NamedMap.entry.1.value.B.Thing.2=z",
        "Other.A=renamed",
    ):
        assert key in form


def test_xml_wire_names() -> None:
    model = synthetic("query")
    op = model.operation_model("Echo")
    body = create_serializer(model).serialize_response(op, VALUE, "rid").body.decode()
    assert body.startswith(
        '<EchoResponse xmlns="https://synth.example/doc/2020-01-01/"><EchoResult>'
    )
    assert "<FlatList>a</FlatList><FlatList>b</FlatList>" in body
    assert "<Entry>c</Entry><Entry>d</Entry>" in body
    assert "<NamedList><Thing>e</Thing></NamedList>" in body
    assert "<FlatMap><Name>k1</Name><Val>v1</Val></FlatMap>" in body
    assert "<Other><A>renamed</A></Other>" in body
    assert "<Stamp>2026-03-04T05:06:07.089Z</Stamp>" in body
    assert "<Flag>false</Flag>" in body
    assert "<Text>a &amp; b &lt; c</Text>" in body


def test_empty_and_unknown_members() -> None:
    model = synthetic("query")
    parsed = through_botocore_response(
        model, {"NamedList": [], "NamedMap": {}, "Nested": [], "Unknown": 1, "Text": None}
    )
    assert parsed == {"NamedList": [], "NamedMap": {}, "Nested": []}


# Text XML 1.0 can carry (plus CR, which the writer escapes) survives every protocol.
_XML_TEXT = st.text(
    st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(map(chr, [*range(0, 9), 11, 12, *range(14, 32)]))
        + "\ufffe\uffff",
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_XML_TEXT)
def test_any_text_round_trips(text: str) -> None:
    for protocol in ("query", "ec2", "json"):
        model = synthetic(protocol)
        value = {"Text": text, "NamedList": [text], "FlatMap": {text: text}}
        assert create_parser(model).parse(through_botocore_request(model, value))[1] == value
        assert through_botocore_response(model, value) == value


def test_unencodable_text_still_yields_a_readable_response() -> None:
    for protocol in ("query", "ec2", "json"):
        model = synthetic(protocol)
        parsed = through_botocore_response(model, {"Text": "bell\x07 lone\ud800 end"})
        expected = "bell\x07 lone\ud800 end" if protocol == "json" else "bell\ufffd lone\ufffd end"
        assert parsed == {"Text": expected}
