"""The AWS wire protocols, driven by botocore service models.

Server-side inverses of botocore's client serializers and response parsers, one pair per
protocol (see :mod:`.base` for the class hierarchy)::

    parser = create_parser(service_model)        # json / query / ec2 / rest-xml
    op_model, params = parser.parse(req)         # HttpRequest -> boto3-shaped, validated input
    ser = create_serializer(service_model)
    ser.serialize_response(op_model, result, request_id)   # -> HttpResponse (200)
    ser.serialize_error(error, request_id)                 # AwsError -> protocol error form

Parsers and serializers are cached per service name and stateless, so they can be shared.
"""

from __future__ import annotations

import threading

from botocore.model import ServiceModel

from emustudio.aws.http import HttpRequest
from emustudio.aws.protocol.awsjson import JsonParser, JsonSerializer
from emustudio.aws.protocol.base import ProtocolParser, ProtocolSerializer
from emustudio.aws.protocol.ec2 import Ec2Parser, Ec2Serializer
from emustudio.aws.protocol.query import QueryParser, QuerySerializer
from emustudio.aws.protocol.restxml import RestXmlParser, RestXmlSerializer
from emustudio.aws.protocol.validate import (
    Violation,
    collect_violations,
    coral_message,
    validate,
    validation_error,
)

__all__ = [
    "ProtocolParser",
    "ProtocolSerializer",
    "Violation",
    "collect_violations",
    "coral_message",
    "create_parser",
    "create_serializer",
    "operation_from_request",
    "validate",
    "validation_error",
]

_PARSERS: dict[str, type[ProtocolParser]] = {
    "json": JsonParser,
    "query": QueryParser,
    "ec2": Ec2Parser,
    "rest-xml": RestXmlParser,
}
_SERIALIZERS: dict[str, type[ProtocolSerializer]] = {
    "json": JsonSerializer,
    "query": QuerySerializer,
    "ec2": Ec2Serializer,
    "rest-xml": RestXmlSerializer,
}

_lock = threading.Lock()
_parser_cache: dict[str, ProtocolParser] = {}
_serializer_cache: dict[str, ProtocolSerializer] = {}


def _protocol(service_model: ServiceModel) -> str:
    protocol: str = service_model.protocol
    if protocol not in _PARSERS:
        raise NotImplementedError(f"protocol {protocol!r} is not supported")
    return protocol


def create_parser(service_model: ServiceModel) -> ProtocolParser:
    """The request parser for a service, picked by its protocol and cached by service name."""
    name: str = service_model.service_name
    with _lock:
        cached = _parser_cache.get(name)
        # A different model object under the same name (tests, reloads) gets a fresh parser.
        if cached is None or cached.service_model is not service_model:
            cached = _parser_cache[name] = _PARSERS[_protocol(service_model)](service_model)
        return cached


def create_serializer(service_model: ServiceModel) -> ProtocolSerializer:
    """The response serializer for a service, picked by its protocol and cached by name."""
    name: str = service_model.service_name
    with _lock:
        cached = _serializer_cache.get(name)
        if cached is None or cached.service_model is not service_model:
            cached = _serializer_cache[name] = _SERIALIZERS[_protocol(service_model)](service_model)
        return cached


def operation_from_request(service_model: ServiceModel, req: HttpRequest) -> str | None:
    """The modelled operation a request names (target header or ``Action``), or None."""
    return create_parser(service_model).operation_from_request(req)
