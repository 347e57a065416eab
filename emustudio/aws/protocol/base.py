"""Base classes of the wire protocols and the scalar conversions they share.

Class hierarchy (server side: the inverse of botocore's client serializers and parsers)::

    ProtocolParser                      ProtocolSerializer
      +-- JsonParser      (awsjson)       +-- JsonSerializer     (awsjson)
      +-- QueryParser     (query)         +-- QuerySerializer    (query)
            +-- Ec2Parser (ec2)                 +-- Ec2Serializer (ec2)

A parser turns an :class:`~emustudio.aws.http.HttpRequest` into ``(OperationModel, params)``
where ``params`` is shaped like boto3 input, then validates it against the input shape
(:mod:`.validate`). A serializer turns a result dict or an :class:`~emustudio.aws.errors.AwsError`
into an :class:`~emustudio.aws.http.HttpResponse`. Parsers raise only ``AwsError`` subclasses.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
from abc import ABC, abstractmethod
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_timestamp

from emustudio.aws.errors import AwsError
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.protocol.validate import validate

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# Java's int and long bounds: Coral rejects numbers outside them.
INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


class ProtocolParser(ABC):
    """Reads requests of one service. One instance per service model, safe to share."""

    def __init__(self, service_model: ServiceModel) -> None:
        self.service_model = service_model
        self.operation_names: frozenset[str] = frozenset(service_model.operation_names)

    def parse(self, req: HttpRequest) -> tuple[OperationModel, dict[str, Any]]:
        """The operation a request names and its validated input parameters."""
        op_model, params = self.decode(req)
        validate(op_model, params)
        return op_model, params

    @abstractmethod
    def decode(self, req: HttpRequest) -> tuple[OperationModel, dict[str, Any]]:
        """Operation and parameters, typed but not yet checked against constraints."""

    @abstractmethod
    def operation_from_request(self, req: HttpRequest) -> str | None:
        """The modelled operation the request names, or None."""

    def streams_body(self, req: HttpRequest) -> bool:
        """Whether the operation reads its body as a stream (S3 objects) rather than whole."""
        return False


class ProtocolSerializer(ABC):
    """Writes responses of one service. One instance per service model, safe to share."""

    def __init__(self, service_model: ServiceModel) -> None:
        self.service_model = service_model

    @abstractmethod
    def serialize_response(
        self, op_model: OperationModel, result: dict[str, Any] | None, request_id: str
    ) -> HttpResponse:
        """A 200 response carrying ``result`` (shaped like boto3 output)."""

    @abstractmethod
    def serialize_error(
        self, error: AwsError, request_id: str, op_model: OperationModel | None = None
    ) -> HttpResponse:
        """The protocol's error form of ``error``."""

    def error_shape(self, code: str) -> Shape | None:
        """The modelled exception shape for an error code, if the service has one."""
        shape: Shape | None = self.service_model.shape_for_error_code(code)
        return shape


# --- timestamps ---------------------------------------------------------------------------


def to_datetime(value: Any) -> dt.datetime:
    """A result value (datetime, epoch number or text) as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        raise TypeError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float | Decimal):
        return datetime_from_epoch(Decimal(str(value)) if isinstance(value, float) else value)
    if isinstance(value, str):
        return parse_timestamp_text(value)
    raise TypeError(f"not a timestamp: {value!r}")


def datetime_from_epoch(value: int | Decimal) -> dt.datetime:
    """Epoch seconds as an aware UTC datetime, rounded to the microsecond without float error."""
    if isinstance(value, int):
        return _EPOCH + dt.timedelta(seconds=value)
    whole = int(value.to_integral_value(rounding=ROUND_FLOOR))
    micros = int(((value - whole) * 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))
    return _EPOCH + dt.timedelta(seconds=whole, microseconds=micros)


def parse_timestamp_text(text: str) -> dt.datetime:
    """ISO 8601 (or epoch digits, or RFC 822) text as an aware UTC datetime; ValueError if not."""
    stripped = text.strip()
    try:
        return datetime_from_epoch(Decimal(stripped))
    except (InvalidOperation, ValueError, OverflowError):
        pass
    try:
        parsed = dt.datetime.fromisoformat(stripped)
    except ValueError:
        try:
            parsed = parse_timestamp(stripped)
        except Exception as exc:  # dateutil raises several types
            raise ValueError(f"invalid timestamp {text!r}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso8601(value: Any) -> str:
    """``2026-01-01T00:00:00Z``, with milliseconds only when there are any (as AWS sends)."""
    stamp = to_datetime(value)
    millis = stamp.microsecond // 1000
    if millis:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_seconds(value: Any) -> int | float:
    """Epoch seconds: an int when whole, else a float with millisecond precision."""
    stamp = to_datetime(value)
    whole = calendar.timegm(stamp.utctimetuple())
    millis = stamp.microsecond // 1000
    if not millis:
        return whole
    return float(Decimal(whole) + Decimal(millis) / 1000)


# --- blobs --------------------------------------------------------------------------------


def b64encode(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(bytes(value)).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64 (padding optional, as the SDKs vary); ValueError on bad input."""
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64 {text!r}") from exc


def scalar_from_text(type_name: str, text: str) -> Any:
    """A scalar member sent as text (query strings, XML, headers) as its model type; strings
    come back as they are. ValueError or OverflowError when the text is not of that type."""
    if type_name in ("integer", "long"):
        number = int(text.strip())
        low, high = INT_RANGE if type_name == "integer" else LONG_RANGE
        if not low <= number <= high:
            raise ValueError(text)
        return number
    if type_name in ("float", "double"):
        return float(text)
    if type_name == "boolean":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(text)
        return lowered == "true"
    if type_name == "timestamp":
        return parse_timestamp_text(text)
    if type_name == "blob":
        return b64decode(text)
    return text


# --- misc ---------------------------------------------------------------------------------


def format_float(value: float) -> str:
    """Text form of a double as the SDKs expect it (``NaN``/``Infinity`` spelled out)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def scalar_text(shape: Shape, value: Any) -> str:
    """A scalar result value as XML/query text for ``shape``."""
    type_name = shape.type_name
    if type_name == "boolean":
        return "true" if value else "false"
    if type_name == "timestamp":
        fmt = shape.serialization.get("timestampFormat", "iso8601")
        if fmt == "unixTimestamp":
            return str(epoch_seconds(value))
        return iso8601(value)
    if type_name == "blob":
        return b64encode(value)
    if type_name in ("float", "double"):
        return format_float(float(value))
    if type_name in ("integer", "long"):
        return str(int(value))
    return value if isinstance(value, str) else str(getattr(value, "value", value))
