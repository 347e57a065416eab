"""Streamed bodies checked as they arrive (``aws/payload.py``): aws-chunked with signed chunks
and trailers, unsigned trailers, checksums; nothing bad is handed on whole."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from collections.abc import AsyncIterator

import pytest

from emustudio.aws.errors import AwsError
from emustudio.aws.payload import Payload
from emustudio.aws.sigv4 import Scope, SignedRequest

SCOPE = Scope(access_key_id="AKID", date="20261203", region="us-east-1", service="s3")
KEY = b"k" * 32
SEED = "a" * 64
STAMP = "20261203T120000Z"
CREDENTIAL_SCOPE = "20261203/us-east-1/s3/aws4_request"
EMPTY = hashlib.sha256(b"").hexdigest()


def signed_request() -> SignedRequest:
    return SignedRequest(
        access_key_id="AKID",
        region="us-east-1",
        service="s3",
        signed_at=None,  # type: ignore[arg-type]
        presigned=False,
        session_token=None,
        signature=SEED,
        timestamp=STAMP,
        scope=SCOPE,
        signing_key=KEY,
    )


def sign(previous: str, kind: str, digest: str) -> str:
    parts = [f"AWS4-HMAC-SHA256-{kind}", STAMP, CREDENTIAL_SCOPE, previous]
    if kind == "PAYLOAD":
        parts.append(EMPTY)
    parts.append(digest)
    return hmac.new(KEY, "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def signed_chunked(
    chunks: list[bytes], trailer: str | None = None, bad_trailer: bool = False
) -> bytes:
    body, previous = b"", SEED
    for chunk in [*chunks, b""]:
        previous = sign(previous, "PAYLOAD", hashlib.sha256(chunk).hexdigest())
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk
        body += b"\r\n" if chunk or trailer is None else b""
    if trailer is not None:
        canonical = f"{trailer}\n"
        signature = sign(previous, "TRAILER", hashlib.sha256(canonical.encode()).hexdigest())
        if bad_trailer:
            signature = "0" * 64
        body += f"{trailer}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()
    return body


async def pieces(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for at in range(0, len(body), size):
        yield body[at : at + size]


async def collect(payload: Payload) -> tuple[bytes, AwsError | None]:
    got = b""
    try:
        async for piece in payload:
            got += piece
    except AwsError as exc:
        return got, exc
    return got, None


async def test_signed_chunks_with_a_signed_trailing_checksum() -> None:
    data = [b"hello ", b"world"]
    whole = b"".join(data)
    body = signed_chunked(data, trailer=f"x-amz-checksum-crc32:{crc32(whole)}")
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": str(len(whole)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    got, error = await collect(Payload(pieces(body), headers, signed_request()))
    assert (got, error) == (whole, None)
    bad = signed_chunked(data, trailer=f"x-amz-checksum-crc32:{crc32(whole)}", bad_trailer=True)
    got, error = await collect(Payload(pieces(bad), headers, signed_request()))
    assert error is not None and error.code == "SignatureDoesNotMatch"
    assert got != whole  # the last piece was held back


async def test_an_unsigned_trailer_with_a_wrong_checksum_is_bad_digest() -> None:
    whole = b"x" * 100
    body = f"{len(whole):x}\r\n".encode() + whole + b"\r\n0\r\n"
    body += f"x-amz-checksum-crc32:{crc32(b'other')}\r\n\r\n".encode()
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": "100",
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    got, error = await collect(Payload(pieces(body, 30), headers, None))
    assert error is not None and error.code == "BadDigest"
    assert len(got) < len(whole)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (
            {"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()},
            "XAmzContentSHA256Mismatch",
        ),
        ({"x-amz-checksum-crc32": crc32(b"other")}, "BadDigest"),
        ({"content-md5": base64.b64encode(hashlib.md5(b"other").digest()).decode()}, "BadDigest"),
    ],
)
async def test_a_plain_body_that_does_not_match_is_refused_before_its_end(
    headers: dict[str, str], code: str
) -> None:
    whole = b"y" * 50
    payload = Payload(pieces(whole, 10), {"content-length": "50", **headers}, signed_request())
    got, error = await collect(payload)
    assert error is not None and error.code == code
    assert len(got) < len(whole)


async def test_a_short_body_is_incomplete() -> None:
    payload = Payload(pieces(b"z" * 10), {"content-length": "50"}, None)
    _, error = await collect(payload)
    assert error is not None and error.code == "IncompleteBody"
