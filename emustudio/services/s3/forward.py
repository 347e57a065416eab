"""S3 operations carried out by the store behind: the request re-made from the parameters,
the answer read back into the operation's output.

botocore's own rest-xml serializer and parser do the wire work towards the store, so the
parameters the gateway's parser produced reach the store exactly as an SDK would send them,
and the store's answer becomes the same boto3-shaped result the gateway's serializer writes.
Bodies are streamed both ways (:mod:`emustudio.s3.store`).
"""

from __future__ import annotations

import base64
import email.utils
from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any, Protocol

from awscrt import checksums as crt
from botocore import parsers, serialize
from botocore.model import ServiceModel, Shape
from botocore.utils import parse_timestamp

from emustudio.s3.store import StoreClient, StoreUnavailable
from emustudio.services.s3.errors import from_store, s3_error

# Checked by the gateway already, and no business of the store: a checksum is re-computed by
# whoever stores the bytes, and the store's owner is the gateway. So is every ``Checksum*``
# member (the algorithm, the mode, the type and each algorithm's value).
_NOT_FORWARDED = frozenset(
    {"ContentMD5", "ExpectedBucketOwner", "ExpectedSourceBucketOwner", "SdkChecksumAlgorithm"}
)


# Bodies up to this size are read whole before they go to the store.
_SMALL_BODY = 256 * 1024

# The checksum a PutObject was checked against (``<algorithm>:<base64>``), kept as the stored
# object's metadata under this name: the store keeps it with the bytes, copies carry it, and
# GetObject/HeadObject with ``ChecksumMode`` answer it. Never shown as the user's metadata,
# never taken from the user's.
CHECKSUM_META = "x-emustudio-checksum"
_STORED = ("GetObject", "HeadObject")


class Checked(Protocol):
    """The checksums a request body was checked against (``Payload``), once it is read."""

    expected: dict[str, str]
    in_header: bool

    def object_checksum(self) -> tuple[str, str] | None: ...


class InHand:
    """The checks of a body in hand (an in-process call): none but S3's default CRC64NVME."""

    expected: dict[str, str] = {}
    in_header = True

    def __init__(self, data: bytes) -> None:
        self.value = base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()

    def object_checksum(self) -> tuple[str, str] | None:
        return "crc64nvme", self.value


def goes_with_object(checked: Checked, length: int) -> bool:
    """Whether a ``PutObject``'s checksum is known before its body goes to the store, and so
    goes with it as metadata: a header's, or any (a trailer's, S3's default) of a body read
    whole first. Otherwise it is known only once the store has the object
    (``Checksums.keep``)."""
    return checked.in_header or length <= _SMALL_BODY


class Forwarder:
    def __init__(self, client: StoreClient, model: ServiceModel) -> None:
        self.client = client
        self.model = model
        self.serializer = serialize.create_serializer("rest-xml", include_validation=False)
        self.parser = _StoreParser(timestamp_parser=_timestamp)

    async def call(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        body: AsyncIterable[bytes] | None = None,
        length: int | None = None,
        stream_result: bool = False,
        checked: Checked | None = None,
    ) -> dict[str, Any]:
        """``checked``: the body's checks (``PutObject``, ``UploadPart``), whose checksum is
        answered, and for ``PutObject`` stored with the object."""
        op = self.model.operation_model(operation)
        sent = {
            k: v
            for k, v in params.items()
            if k not in _NOT_FORWARDED and k != "Body" and not k.startswith("Checksum")
        }
        if CHECKSUM_META in (sent.get("Metadata") or {}):
            sent["Metadata"] = {k: v for k, v in sent["Metadata"].items() if k != CHECKSUM_META}
        if "ContentEncoding" in sent:
            # aws-chunked is how the body came, not how it is stored (S3 drops it too).
            kept = [e for e in sent["ContentEncoding"].split(",") if e.strip() != "aws-chunked"]
            sent["ContentEncoding"] = ",".join(kept)
            if not kept:
                del sent["ContentEncoding"]
        request = self.serializer.serialize_to_request(sent, op)
        # The operation's literal query (``?uploads``, ``?list-type=2``) rides on the path.
        path, _, literal = request["url_path"].partition("?")
        query: list[tuple[str, str]] = []
        for part in filter(None, literal.split("&")):
            name, _, value = part.partition("=")
            query.append((name, value))
        for name, value in request["query_string"].items():
            for item in value if isinstance(value, list) else [value]:
                query.append((name, str(item)))
        headers = {
            k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request["headers"].items()
        }
        payload: bytes | AsyncIterable[bytes] = body if body is not None else request["body"] or b""
        if body is not None and length is not None and length <= _SMALL_BODY:
            # Small enough to hold: read (and checked) first, then sent on a kept connection.
            payload = b"".join([piece async for piece in body])
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if checked is not None and operation == "PutObject":
            whole = isinstance(payload, bytes) or checked.in_header
            known = checked.object_checksum() if whole else None
            if known is not None:  # else it comes after the body (goes_with_object)
                headers[f"x-amz-meta-{CHECKSUM_META}"] = f"{known[0]}:{known[1]}"
        try:
            response = await self.client.send(
                request["method"], path, query, headers, payload, length
            )
        except StoreUnavailable as exc:
            raise s3_error(
                "ServiceUnavailable", f"The store behind S3 does not answer: {exc}"
            ) from exc
        raw = {"status_code": response.status, "headers": _Headers(response.headers)}
        if response.status >= 300 and response.status != 304:
            data = await response.read()
            raise from_store(
                response.status,
                data,
                bucket=params.get("Bucket"),
                key=params.get("Key"),
                head_bucket=operation == "HeadBucket",
            )
        if stream_result:
            parsed: dict[str, Any] = self.parser.parse({**raw, "body": b""}, op.output_shape)
            size = response.headers.get("content-length", "")
            if size.isdigit() and int(size) <= _SMALL_BODY:
                # Small enough to hold: answered in one write, with no stream to pace.
                parsed["Body"] = await response.read(_SMALL_BODY)
            else:
                parsed["Body"] = response.body()
            return _stored_checksum(operation, params, _lowered_metadata(parsed))
        data = await response.read()
        result: dict[str, Any] = self.parser.parse({**raw, "body": data}, op.output_shape)
        if checked is not None and checked.expected:
            algorithm, value = next(iter(checked.expected.items()))
            result[f"Checksum{algorithm.upper()}"] = value
            if operation == "PutObject":
                result["ChecksumType"] = "FULL_OBJECT"
        elif checked is not None and operation == "PutObject":
            default = checked.object_checksum()  # S3's default CRC64NVME, answered as S3 does
            if default is not None:
                result[f"Checksum{default[0].upper()}"] = default[1]
                result["ChecksumType"] = "FULL_OBJECT"
        return _stored_checksum(operation, params, _lowered_metadata(result))


def _stored_checksum(
    operation: str, params: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    """The object's kept checksum out of its metadata, and into the answer when asked for
    (``ChecksumMode: ENABLED``) of the whole object: a range or a part has none, as on S3."""
    kept = result.get("Metadata", {}).pop(CHECKSUM_META, None) if operation in _STORED else None
    whole = "Range" not in params and "PartNumber" not in params
    if kept and params.get("ChecksumMode") == "ENABLED" and whole:
        algorithm, _, value = kept.partition(":")
        result[f"Checksum{algorithm.upper()}"] = value
        result["ChecksumType"] = "FULL_OBJECT"
    return result


_HeaderLayout = tuple[dict[str, tuple[str, Shape]], tuple[tuple[str, str], ...], tuple[str, ...]]


class _StoreParser(parsers.RestXMLParser):  # type: ignore[misc]  # botocore is untyped
    """botocore's reader of the store's answers, with its header part driven by the headers
    the answer has (a dozen) rather than by the output's members (some forty for GetObject,
    each looked up in the headers on every call). Same results: each header member is read by
    botocore's own type handling."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._layouts: dict[int, tuple[Shape, _HeaderLayout]] = {}

    def parse(self, response: dict[str, Any], shape: Shape | None) -> dict[str, Any]:
        """A success's members, and of its metadata only the status (the serializer answers
        the store's: a range's 206): botocore's request ids and lowered copy of every header,
        a sixth of a small GetObject's parse, are nobody's here. Errors go botocore's way."""
        status = response["status_code"]
        if status >= 301:
            parsed: dict[str, Any] = super().parse(response, shape)
            return parsed
        final: dict[str, Any] = {}
        if shape is not None:
            self._parse_non_payload_attrs(response, shape, shape.members, final)
            if response["body"] or "payload" in shape.serialization:
                # (an empty body otherwise: every body member walked, to find none)
                self._parse_payload(response, shape, shape.members, final)
        final["ResponseMetadata"] = {"HTTPStatusCode": status}
        return final

    def _layout(self, shape: Shape) -> _HeaderLayout:
        found = self._layouts.get(id(shape))
        if found is not None and found[0] is shape:
            return found[1]
        by_header: dict[str, tuple[str, Shape]] = {}
        maps: list[tuple[str, str]] = []
        status: list[str] = []
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "header":
                by_header[wire.lower()] = (name, member)
            elif location == "headers":
                maps.append((name, wire.lower()))
            elif location == "statusCode":
                status.append(name)
        made = (by_header, tuple(maps), tuple(status))
        self._layouts[id(shape)] = (shape, made)
        return made

    def _parse_non_payload_attrs(
        self,
        response: dict[str, Any],
        shape: Shape,
        member_shapes: Any,
        final_parsed: dict[str, Any],
    ) -> None:
        by_header, maps, status = self._layout(shape)
        headers: dict[str, str] = response["headers"]
        others: list[tuple[str, str]] = []
        for header, value in dict.items(headers):  # names already lower case
            hit = by_header.get(header)
            if hit is not None:
                final_parsed[hit[0]] = self._parse_shape(hit[1], value)
            elif maps:
                others.append((header, value))
        for name, prefix in maps:  # of the headers no member took (user metadata)
            final_parsed[name] = {h[len(prefix) :]: v for h, v in others if h.startswith(prefix)}
        for name in status:
            final_parsed[name] = self._parse_shape(shape.members[name], response["status_code"])


class _Headers(dict[str, str]):
    """The store's answer's headers, their names already lower case, looked up without regard
    to case: what botocore's parser asks of them, for less than ``HeadersDict`` costs (it makes
    a key object per name on every lookup, some fifty per small GetObject)."""

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)


def _timestamp(text: str) -> datetime:
    """The store's timestamps (HTTP dates in headers, ISO 8601 in XML), read without dateutil,
    which costs more than the rest of a small GetObject's answer; botocore's reader otherwise."""
    try:
        if text[:1].isalpha():
            return email.utils.parsedate_to_datetime(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        parsed: datetime = parse_timestamp(text)
        return parsed


def _lowered_metadata(result: dict[str, Any]) -> dict[str, Any]:
    """S3 keeps user metadata names in lower case; stores that canonicalise header names
    (Go's ``X-Amz-Meta-Owner``) do not."""
    if "Metadata" in result:
        result["Metadata"] = {k.lower(): v for k, v in result["Metadata"].items()}
    return result
