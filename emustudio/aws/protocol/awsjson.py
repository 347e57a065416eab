"""The ``json`` protocol (EMR): ``X-Amz-Target`` routing, JSON bodies, Coral-style errors.

:class:`JsonParser` (a :class:`~.base.ProtocolParser`) reads the body with numbers as
``Decimal`` so epoch timestamps convert without float error, then types every member by its
shape; a body that is not a JSON object, or a member of the wrong JSON type, is a
``SerializationException`` with Coral's wording. :class:`JsonSerializer` (a
:class:`~.base.ProtocolSerializer`) writes ``application/x-amz-json-<jsonVersion>`` bodies with
epoch-second timestamps and ``{"__type": code, "Message": text, **extra}`` errors.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from functools import cached_property
from typing import Any

from botocore.model import OperationModel, Shape

from emustudio.aws.errors import AwsError, SerializationError, UnknownOperation
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.protocol.base import (
    INT_RANGE,
    LONG_RANGE,
    ProtocolParser,
    ProtocolSerializer,
    b64decode,
    b64encode,
    datetime_from_epoch,
    epoch_seconds,
    format_float,
    parse_timestamp_text,
)

# Coral's names for the Java types behind each shape type, used in its messages.
_JAVA_TYPE = {
    "string": "a String",
    "integer": "an Integer",
    "long": "a Long",
    "float": "a Float",
    "double": "a Double",
    "boolean": "a Boolean",
    "timestamp": "a Date",
    "blob": "a ByteBuffer",
    "list": "a List",
    "map": "a Map",
    "structure": "a Structure",
}


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, str):
        return "STRING_VALUE"
    return "NUMBER_VALUE"


def _wrong_type(shape: Shape, value: Any) -> SerializationError:
    if isinstance(value, dict):
        return SerializationError("Start of structure or map found where not expected.")
    if isinstance(value, list):
        return SerializationError("Start of list found where not expected")
    java = _JAVA_TYPE.get(shape.type_name, "a " + shape.type_name)
    return SerializationError(f"{_token(value)} can not be converted to {java}")


class JsonParser(ProtocolParser):
    @cached_property
    def target_prefix(self) -> str:
        prefix: str = self.service_model.metadata.get("targetPrefix", "")
        return prefix

    def operation_from_request(self, req: HttpRequest) -> str | None:
        prefix, _, name = req.header("x-amz-target").strip().rpartition(".")
        if prefix == self.target_prefix and name in self.operation_names:
            return name
        return None

    def decode(self, req: HttpRequest) -> tuple[OperationModel, dict[str, Any]]:
        name = self.operation_from_request(req)
        if name is None:
            raise UnknownOperation("", code="UnknownOperationException")
        op_model = self.service_model.operation_model(name)
        body = self._load_body(req.body)
        shape = op_model.input_shape
        params = self._structure(shape, body) if shape is not None else {}
        return op_model, params

    @staticmethod
    def _load_body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw.decode("utf-8"), parse_float=Decimal)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SerializationError("Unable to parse the request body as JSON") from exc
        if not isinstance(body, dict):
            raise SerializationError("Start of structure or map not found at the top level")
        return body

    def _read(self, shape: Shape, value: Any) -> Any:
        handler = getattr(self, f"_{shape.type_name}", None)
        if handler is None:
            return value
        return handler(shape, value)

    def _structure(self, shape: Shape, value: Any) -> dict[str, Any]:
        if shape.is_document_type:
            return value  # type: ignore[no-any-return]
        if not isinstance(value, dict):
            raise _wrong_type(shape, value)
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            raw = value.get(member.serialization.get("name", name))
            # Coral treats an explicit null like an absent member.
            if raw is not None:
                out[name] = self._read(member, raw)
        return out

    def _list(self, shape: Shape, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _wrong_type(shape, value)
        return [None if item is None else self._read(shape.member, item) for item in value]

    def _map(self, shape: Shape, value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _wrong_type(shape, value)
        return {
            self._read(shape.key, key): None if item is None else self._read(shape.value, item)
            for key, item in value.items()
        }

    def _string(self, shape: Shape, value: Any) -> str:
        if not isinstance(value, str):
            raise _wrong_type(shape, value)
        return value

    def _boolean(self, shape: Shape, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _wrong_type(shape, value)
        return value

    def _integer(self, shape: Shape, value: Any) -> int:
        low, high = INT_RANGE if shape.type_name == "integer" else LONG_RANGE
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(shape, value)
        if not low <= value <= high:
            kind = "int" if shape.type_name == "integer" else "long"
            raise SerializationError(f"Numeric value ({value}) out of range of {kind}")
        return value

    _long = _integer

    def _float(self, shape: Shape, value: Any) -> float:
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise _wrong_type(shape, value)
        return float(value)

    _double = _float

    def _timestamp(self, shape: Shape, value: Any) -> Any:
        try:
            if isinstance(value, str):
                return parse_timestamp_text(value)
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise _wrong_type(shape, value)
            return datetime_from_epoch(value)
        except (ValueError, OverflowError) as exc:
            raise SerializationError(f"Invalid timestamp value: {value}") from exc

    def _blob(self, shape: Shape, value: Any) -> bytes:
        if not isinstance(value, str):
            raise _wrong_type(shape, value)
        try:
            return b64decode(value)
        except ValueError as exc:
            raise SerializationError("Invalid Base64 value for a ByteBuffer") from exc


class JsonSerializer(ProtocolSerializer):
    @cached_property
    def content_type(self) -> str:
        return f"application/x-amz-json-{self.service_model.metadata.get('jsonVersion', '1.0')}"

    @cached_property
    def message_key(self) -> str:
        """``Message`` or ``message``: whichever the service's modelled errors use most."""
        votes: Counter[str] = Counter()
        for shape in self.service_model.error_shapes:
            for key in ("Message", "message"):
                if key in shape.members:
                    votes[key] += 1
        return votes.most_common(1)[0][0] if votes else "message"

    def _headers(self, request_id: str) -> dict[str, str]:
        return {"Content-Type": self.content_type, "x-amzn-RequestId": request_id}

    def serialize_response(
        self, op_model: OperationModel, result: dict[str, Any] | None, request_id: str
    ) -> HttpResponse:
        shape = op_model.output_shape
        body = self._structure(shape, result or {}) if shape is not None else {}
        return HttpResponse(200, self._headers(request_id), _dump(body))

    def serialize_error(
        self, error: AwsError, request_id: str, op_model: OperationModel | None = None
    ) -> HttpResponse:
        shape = self.error_shape(error.code)
        message_key = self.message_key
        if shape is not None:
            message_key = next((k for k in ("Message", "message") if k in shape.members), "message")
        body: dict[str, Any] = {"__type": error.code}
        if error.message:
            body[message_key] = error.message
        for key, value in error.extra.items():
            if value is None or key in ("Message", "message"):
                continue
            member = shape.members.get(key) if shape is not None else None
            body[key] = self._write(member, value) if member is not None else _plain(value)
        headers = self._headers(request_id)
        headers["x-amzn-ErrorType"] = error.code
        return HttpResponse(error.status, headers, _dump(body))

    def _write(self, shape: Shape, value: Any) -> Any:
        type_name = shape.type_name
        if type_name == "structure":
            return self._structure(shape, value)
        if type_name == "list":
            return [None if v is None else self._write(shape.member, v) for v in value]
        if type_name == "map":
            return {
                str(k): None if v is None else self._write(shape.value, v) for k, v in value.items()
            }
        if type_name == "timestamp":
            return epoch_seconds(value)
        if type_name == "blob":
            return b64encode(value)
        if type_name in ("float", "double"):
            number = float(value)
            return (
                number if number == number and abs(number) != float("inf") else format_float(number)
            )
        if type_name in ("integer", "long"):
            return int(value)
        if type_name == "boolean":
            return bool(value)
        if type_name == "string" and not isinstance(value, str):
            return str(getattr(value, "value", value))
        return value

    def _structure(self, shape: Shape, value: dict[str, Any]) -> Any:
        if shape.is_document_type:
            return value
        out: dict[str, Any] = {}
        members = shape.members
        for name, item in value.items():
            member = members.get(name)
            if member is None or item is None:
                continue
            out[member.serialization.get("name", name)] = self._write(member, item)
        return out


def _plain(value: Any) -> Any:
    """An unmodelled error extra, made JSON-safe."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return b64encode(value)
    if hasattr(value, "isoformat"):
        return epoch_seconds(value)
    return str(value)


def _dump(body: Any) -> bytes:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON input may carry "\ud800") has no UTF-8 form; escape it.
        return json.dumps(body, separators=(",", ":")).encode("ascii")
