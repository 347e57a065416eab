"""S3 operations carried out by the store behind: the request re-made from the parameters,
the answer read back into the operation's output.

botocore's own rest-xml serializer and parser do the wire work towards the store, so the
parameters the gateway's parser produced reach the store exactly as an SDK would send them,
and the store's answer becomes the same boto3-shaped result the gateway's serializer writes.
Bodies are streamed both ways (:mod:`emustudio.s3.store`).
"""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any

from botocore import parsers, serialize
from botocore.model import ServiceModel
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


class Forwarder:
    def __init__(self, client: StoreClient, model: ServiceModel) -> None:
        self.client = client
        self.model = model
        self.serializer = serialize.create_serializer("rest-xml", include_validation=False)
        self.parser = parsers.RestXMLParser(timestamp_parser=_timestamp)

    async def call(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        body: AsyncIterable[bytes] | None = None,
        length: int | None = None,
        stream_result: bool = False,
    ) -> dict[str, Any]:
        op = self.model.operation_model(operation)
        sent = {
            k: v
            for k, v in params.items()
            if k not in _NOT_FORWARDED and k != "Body" and not k.startswith("Checksum")
        }
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
            return _lowered_metadata(parsed)
        data = await response.read()
        result: dict[str, Any] = self.parser.parse({**raw, "body": data}, op.output_shape)
        return _lowered_metadata(result)


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
