"""A streamed request body, checked as it arrives: S3's payload forms and checksums.

What ``x-amz-content-sha256`` declares decides the form (SigV4 has already checked the headers):

* a hex SHA-256: the body as sent, hashed as it streams;
* ``UNSIGNED-PAYLOAD``: the body as sent;
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` (``-TRAILER``): ``aws-chunked``, each chunk signed
  (``AWS4-HMAC-SHA256-PAYLOAD``, chained from the request's signature), the trailer too;
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: ``aws-chunked`` without signatures, with a trailing
  checksum (what current boto3 and the AWS CLI send over HTTPS).

``x-amz-checksum-<algorithm>`` (header or trailer; every ``ChecksumAlgorithm`` of S3's model:
CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128) and
``Content-MD5`` are checked too; CRC32C, CRC64NVME and the XXHASHes with ``awscrt``'s, the
implementation botocore itself uses for them. A body sent with no checksum of S3's
(``Content-MD5`` is none) gets S3's default, a CRC64NVME computed as it streams
(:meth:`Payload.object_checksum`). The last piece of data is held back until every
check has passed, so a reader that stores what it gets and stops at the first error never stores
a bad body whole; S3's errors say why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from awscrt import checksums as crt

from emustudio.aws.errors import AwsError
from emustudio.aws.http import BodyTruncated
from emustudio.aws.sigv4 import (
    ALGORITHM,
    STREAMING_SIGNED_PAYLOAD,
    STREAMING_SIGNED_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    TERMINATOR,
    SignedRequest,
)

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_CHUNK_HEADER = 4096
_MAX_CHUNK = 16 * 1024 * 1024
_CHUNKED = (
    STREAMING_SIGNED_PAYLOAD,
    STREAMING_SIGNED_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
)


class IncompleteBody(AwsError):
    code = "IncompleteBody"
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "You did not provide the number of bytes specified by the Content-Length HTTP header"
        )


class BadDigest(AwsError):
    code = "BadDigest"
    status = 400


class ContentSha256Mismatch(AwsError):
    code = "XAmzContentSHA256Mismatch"
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )


class ChunkSignatureMismatch(AwsError):
    code = "SignatureDoesNotMatch"
    status = 403

    def __init__(self) -> None:
        super().__init__(
            "The request signature we calculated does not match the signature you provided."
            " Check your key and signing method."
        )


class MissingContentLength(AwsError):
    code = "MissingContentLength"
    status = 411

    def __init__(self) -> None:
        super().__init__("You must provide the Content-Length HTTP header.")


def _invalid_chunk() -> AwsError:
    return AwsError("The chunk encoding of the body is invalid.", code="InvalidChunkSizeError")


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = crt.crc32c(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Crc64Nvme:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = crt.crc64nvme(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(8, "big")


class _XxHash:
    """awscrt's XXHash (what botocore computes them with), seed 0 as S3's; read once."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.state = make()

    def update(self, data: bytes) -> None:
        self.state.update(data)

    def digest(self) -> bytes:
        value: bytes = self.state.finalize()
        return value


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)  # a checksum here, never a protection


CHECKSUMS: dict[str, Callable[[], Any]] = {
    "crc32": _Crc32,
    "crc32c": _Crc32c,
    "crc64nvme": _Crc64Nvme,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "md5": _md5,
    "xxhash64": lambda: _XxHash(crt.XXHash.new_xxhash64),
    "xxhash3": lambda: _XxHash(crt.XXHash.new_xxhash3_64),
    "xxhash128": lambda: _XxHash(crt.XXHash.new_xxhash3_128),
}
_CHECKSUM_HEADERS = tuple((name, f"x-amz-checksum-{name}") for name in CHECKSUMS)
# The digest's length in bytes: a value that does not decode to it is malformed, not wrong.
_DIGEST_BYTES = {
    "crc32": 4,
    "crc32c": 4,
    "crc64nvme": 8,
    "sha1": 20,
    "sha256": 32,
    "sha512": 64,
    "md5": 16,
    "xxhash64": 8,
    "xxhash3": 8,
    "xxhash128": 16,
}


def _invalid_request(message: str) -> AwsError:
    return AwsError(message, code="InvalidRequest", status=400)


def _check_form(algorithm: str, value: str, where: str) -> None:
    """S3 answers InvalidRequest for a checksum that is not the base64 of a digest's bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _DIGEST_BYTES[algorithm]:
        raise _invalid_request(f"Value for x-amz-checksum-{algorithm} {where} is invalid.")


class Payload:
    """The verified bytes of one streamed body (iterate once), and its decoded length."""

    def __init__(
        self, raw: AsyncIterable[bytes], headers: dict[str, str], signed: SignedRequest | None
    ) -> None:
        self.raw = raw
        self.declared = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        self.chunked = self.declared in _CHUNKED
        self.signed = signed if self.declared.startswith("STREAMING-AWS4") else None
        length = headers.get("x-amz-decoded-content-length" if self.chunked else "content-length")
        if length is None or not length.isdigit():
            raise MissingContentLength()
        self.length = int(length)
        self.wire_length = int(headers.get("content-length") or -1)
        self.expected: dict[str, str] = {}
        for name, header in _CHECKSUM_HEADERS:
            if header in headers:  # a test, not a call: ten of them for every body
                value = headers[header]
                _check_form(name, value, "header")
                self.expected[name] = value
        if len(self.expected) > 1:
            raise _invalid_request(
                "Expecting a single x-amz-checksum- header."
                " Multiple checksum Types are not allowed."
            )
        self.md5 = headers.get("content-md5")
        self.trailer_names = {
            n.strip().lower() for n in headers.get("x-amz-trailer", "").split(",") if n.strip()
        }
        self.previous = signed.signature if signed is not None else ""
        self.in_header = bool(self.expected)  # known before the body: it can go ahead of it
        self.wanted: set[str] = set()  # computed too, beside what is checked (``also``)
        self.computed: dict[str, str] = {}  # each checksum computed, base64, once read

    def also(self, algorithm: str) -> None:
        """Compute ``algorithm`` as well (a multipart upload's default CRC64NVME of a part
        that came with another checksum); call before reading."""
        self.wanted.add(algorithm)

    def object_checksum(self) -> tuple[str, str] | None:
        """The body's checksum as S3 keeps it, once read: the one it was checked against,
        else S3's default CRC64NVME (``None`` before the body is read whole)."""
        for algorithm, value in self.expected.items():
            return algorithm, value
        default = self.computed.get("crc64nvme")
        return ("crc64nvme", default) if default is not None else None

    # --- checks ---------------------------------------------------------------------------

    def _chunk_signature(self, digest: str, kind: str = "PAYLOAD") -> str:
        assert self.signed is not None and self.signed.scope is not None
        scope = self.signed.scope
        credential_scope = f"{scope.date}/{scope.region}/{scope.service}/{TERMINATOR}"
        parts = [f"{ALGORITHM}-{kind}", self.signed.timestamp, credential_scope, self.previous]
        if kind == "PAYLOAD":
            parts.append(_EMPTY_SHA256)
        parts.append(digest)
        return hmac.new(
            self.signed.signing_key, "\n".join(parts).encode(), hashlib.sha256
        ).hexdigest()

    def _check_chunk(self, claimed: str | None, digest: str, kind: str = "PAYLOAD") -> None:
        if self.signed is None:
            return
        expected = self._chunk_signature(digest, kind)
        if claimed is None or not hmac.compare_digest(expected, claimed):
            raise ChunkSignatureMismatch()
        self.previous = expected

    def _check_sums(self, md5: Any, sha: Any) -> None:
        if sha is not None and sha.hexdigest() != self.declared.lower():
            raise ContentSha256Mismatch()
        if md5 is not None and base64.b64encode(md5.digest()).decode() != self.md5:
            raise BadDigest("The Content-MD5 you specified did not match what we received.")
        for name, expected in self.expected.items():
            if self.computed.get(name) != expected:
                raise BadDigest(
                    f"The {name.upper()} you specified did not match the calculated checksum."
                )

    # --- reading --------------------------------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sums = {name: CHECKSUMS[name]() for name in self.expected}
        for name in self.trailer_names:
            algorithm = name.removeprefix("x-amz-checksum-")
            if algorithm in CHECKSUMS:
                sums.setdefault(algorithm, CHECKSUMS[algorithm]())
        for algorithm in self.wanted:
            sums.setdefault(algorithm, CHECKSUMS[algorithm]())
        if not sums:
            sums["crc64nvme"] = _Crc64Nvme()  # S3's default for a body sent without one
        md5 = hashlib.md5(usedforsecurity=False) if self.md5 else None
        sha = hashlib.sha256() if len(self.declared) == 64 else None
        pending: bytes | None = None
        total = 0
        source = self._chunks() if self.chunked else self._plain()
        try:
            async for piece in source:
                total += len(piece)
                if total > self.length:
                    raise IncompleteBody()
                for digest in sums.values():
                    digest.update(piece)
                if md5 is not None:
                    md5.update(piece)
                if sha is not None:
                    sha.update(piece)
                if pending is not None:
                    yield pending
                pending = piece
        except BodyTruncated as exc:
            raise IncompleteBody() from exc
        if total != self.length:
            raise IncompleteBody()
        self.computed = {
            name: base64.b64encode(digest.digest()).decode() for name, digest in sums.items()
        }
        self._check_sums(md5, sha)
        if pending is not None:
            yield pending

    async def read_all(self, limit: int) -> bytes:
        if self.length > limit:
            raise AwsError(
                "Your proposed upload exceeds the maximum allowed size",
                code="EntityTooLarge",
                status=400,
            )
        return b"".join([piece async for piece in self])

    async def _plain(self) -> AsyncIterator[bytes]:
        async for chunk in self.raw:
            yield chunk

    async def _chunks(self) -> AsyncIterator[bytes]:
        """Decode ``aws-chunked``; a signed chunk is released only once its signature holds."""
        buffer = bytearray()
        source = aiter(self.raw)
        ended = False

        async def more() -> None:
            nonlocal ended
            try:
                buffer.extend(await anext(source))
            except StopAsyncIteration:
                ended = True
                raise IncompleteBody() from None

        async def line() -> bytes:
            while True:
                at = buffer.find(b"\r\n")
                if at >= 0:
                    text = bytes(buffer[:at])
                    del buffer[: at + 2]
                    return text
                if len(buffer) > _MAX_CHUNK_HEADER:
                    raise _invalid_chunk()
                await more()

        while True:
            header = (await line()).decode("latin-1")
            size_text, _, extension = header.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                raise _invalid_chunk() from None
            if size < 0 or size > _MAX_CHUNK:
                raise _invalid_chunk()
            claimed = None
            if extension.strip().startswith("chunk-signature="):
                claimed = extension.strip()[len("chunk-signature=") :]
            if size == 0:
                self._check_chunk(claimed, _EMPTY_SHA256)
                await self._trailer(line)
                if buffer:
                    raise _invalid_chunk()
                return
            while len(buffer) < size + 2:
                await more()
            data = bytes(buffer[:size])
            if buffer[size : size + 2] != b"\r\n":
                raise _invalid_chunk()
            del buffer[: size + 2]
            if self.signed is not None:
                self._check_chunk(claimed, hashlib.sha256(data).hexdigest())
            yield data
        del ended

    async def _trailer(self, line: Callable[[], Any]) -> None:
        """Trailing headers up to the blank line: the checksums, and their signature."""
        trailing: list[tuple[str, str]] = []
        signature = None
        while True:
            text = (await line()).decode("latin-1")
            if not text:
                break
            name, _, value = text.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                signature = value
            else:
                trailing.append((name, value))
        for name, value in trailing:
            algorithm = name.removeprefix("x-amz-checksum-")
            if algorithm in CHECKSUMS:
                _check_form(algorithm, value, "trailing header")
                self.expected[algorithm] = value
        if self.declared == STREAMING_SIGNED_PAYLOAD_TRAILER:
            canonical = "".join(f"{n}:{v}\n" for n, v in trailing)
            self._check_chunk(signature, hashlib.sha256(canonical.encode()).hexdigest(), "TRAILER")
