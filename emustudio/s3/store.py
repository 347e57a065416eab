"""The S3 store behind the gateway's S3 API, spoken to on the event loop, bodies streamed.

A small HTTP/1.1 client on an asyncio protocol, kept connections reused: the request's head
and a body in hand leave in one write; a streamed body is written as its source yields it, each
piece drained before the next; the answer's body is handed to the reader piece by piece, read
from the socket only while the reader keeps up (what waits is bounded), and passed on as the
socket gave it, without copies. So neither direction holds a body in memory, and a slow client
slows the store down instead of filling the gateway. Tornado's client was here before; it cost
a task, a header object and a timeout per request, which a small object's call through the
gateway paid for (docs/benchmarks.md).

Requests are signed with the gateway's own store credentials (SigV4, ``UNSIGNED-PAYLOAD`` for
streamed bodies: the gateway has already checked what its client signed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import ssl as ssl_module
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

__all__ = ["StoreClient", "StoreResponse", "StoreUnavailable"]

_UNRESERVED = "-_.~"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Idle connections kept for the next request: a small GetObject then costs no TCP handshake.
# A streamed request body gets a fresh connection (a kept one the store closed meanwhile could
# not be retried with a body already consumed); it is kept afterwards like any other.
_MAX_IDLE = 8
# The most read from the store at once, and what its connection buffers before it stops
# reading from the socket (the reader's pace then paces the store).
_PIECE = 256 * 1024
_BUFFER = 1024 * 1024
_NO_BODY = frozenset({204, 304})
# One header line: its name and its value without the blanks around it.
_HEADER_LINE = re.compile(r"^[ \t]*([^:\n]*?)[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)


class StoreUnavailable(Exception):
    """The store did not answer (not running, connection lost)."""


class _Wire(asyncio.Protocol):
    """One connection to the store, both ways. What the socket gives is kept as the pieces it
    gave and handed on as they are (asyncio's ``StreamReader`` copies every piece into one
    buffer, then out again: two copies of each byte of a 64 MB GetObject); reading from the
    socket pauses while more than ``_BUFFER`` waits. Writing waits (:meth:`drain`) while the
    transport says its buffer is full."""

    def __init__(self) -> None:
        self.pieces: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.transport: asyncio.Transport | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drainer: asyncio.Future[None] | None = None

    # --- asyncio's side ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pieces.append(data)
        self.size += len(data)
        if self.size > _BUFFER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()
        if self.drainer is not None and not self.drainer.done():
            self.drainer.set_exception(ConnectionResetError("the store closed the connection"))

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drainer is not None and not self.drainer.done():
            self.drainer.set_result(None)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # --- the reader's side --------------------------------------------------------------------

    async def _more(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def _take(self, n: int) -> bytes:
        piece = self.pieces.popleft()
        if len(piece) > n:
            self.pieces.appendleft(piece[n:])
            piece = piece[:n]
        self.size -= len(piece)
        if self.reading_paused and self.size <= _BUFFER // 2 and self.transport is not None:
            self.transport.resume_reading()
            self.reading_paused = False
        return piece

    def at_eof(self) -> bool:
        return self.eof and not self.pieces

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes, as they came; ``b""`` at the end."""
        while not self.pieces:
            if self.eof:
                return b""
            await self._more()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n:
            piece = await self.read(n)
            if not piece:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts)

    async def readuntil(self, separator: bytes) -> bytes:
        """Up to and with ``separator`` (an answer's head, a chunk's size line)."""
        while True:
            first = self.pieces[0] if self.pieces else b""
            at = first.find(separator)
            if at < 0 and len(self.pieces) > 1:
                # The separator may straddle pieces: join them (only then, as it is a copy).
                first = b"".join(self.pieces)
                self.pieces = deque([first])
                at = first.find(separator)
            if at >= 0:
                return self._take(at + len(separator))
            if self.size > _BUFFER:
                raise asyncio.LimitOverrunError("no end of line within the limit", self.size)
            if self.eof:
                raise asyncio.IncompleteReadError(first, None)
            await self._more()

    # --- the writer's side --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the store closed the connection")
        if self.writing_paused:
            self.drainer = asyncio.get_running_loop().create_future()
            try:
                await self.drainer
            finally:
                self.drainer = None

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Connection:
    """One HTTP/1.1 connection to the store (no task of its own)."""

    def __init__(self, wire: _Wire) -> None:
        self.reader = wire
        self.writer = wire

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.eof

    def close(self) -> None:
        self.writer.close()


async def _head(reader: _Wire) -> tuple[int, dict[str, str]]:
    """The answer's status and headers (names in lower case; a repeated name, the last)."""
    while True:
        data = await reader.readuntil(b"\r\n\r\n")
        lines = data[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise StoreUnavailable(f"not an HTTP answer: {lines[0][:80]!r}")
        status = int(rest[:3])
        if 100 <= status < 200:
            continue  # an interim answer (100 Continue): the real one follows
        # The lines split into names and values by one regular expression, the names lowered
        # all at once: a dozen headers cost a few calls, not five each.
        pairs = _HEADER_LINE.findall("\n".join(lines[1:]))
        if not pairs:
            return status, {}
        names = "\n".join(name for name, _ in pairs).lower().split("\n")
        return status, dict(zip(names, (value for _, value in pairs), strict=True))


@dataclass
class StoreResponse:
    status: int
    headers: dict[str, str]
    _connection: _Connection = field(repr=False)
    _pool: list[_Connection] | None = field(default=None, repr=False)
    _bodiless: bool = field(default=False, repr=False)

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives (read once)."""
        finished = False
        try:
            if not self._bodiless:
                async for piece in self._pieces():
                    yield piece
            finished = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise StoreUnavailable(f"the store's answer broke off: {exc}") from exc
        finally:
            if finished:
                self.release()
            else:
                self.close()

    async def _pieces(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailing headers: none the gateway reads
                    return
                while size:
                    piece = await reader.read(min(size, _PIECE))
                    if not piece:
                        raise asyncio.IncompleteReadError(b"", size)
                    size -= len(piece)
                    yield piece
                await reader.readexactly(2)
        length = self.headers.get("content-length")
        if length is None:
            self.headers["connection"] = "close"  # the body ends with the connection
            while piece := await reader.read(_PIECE):
                yield piece
            return
        remaining = int(length)
        while remaining:
            piece = await reader.read(min(remaining, _PIECE))
            if not piece:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(piece)
            yield piece

    def release(self) -> None:
        """Keep the connection for the next request if both sides allow it, else close it."""
        pool = self._pool
        if (
            pool is None
            or len(pool) >= _MAX_IDLE
            or "close" in self.headers.get("connection", "").lower()
            or not self._connection.usable()
        ):
            self.close()
            return
        pool.append(self._connection)

    async def read(self, limit: int = 16 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for piece in self.body():
            size += len(piece)
            if size > limit:
                raise StoreUnavailable(f"the store's answer exceeds {limit} bytes")
            parts.append(piece)
        return b"".join(parts)

    def close(self) -> None:
        self._connection.close()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class StoreClient:
    def __init__(
        self, url: str, access_key_id: str, secret_access_key: str, region: str = "us-east-1"
    ) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme or "http"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.netloc = parts.netloc
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region
        self.idle: list[_Connection] = []
        self._key: tuple[str, bytes] | None = None

    def _day_key(self, day: str) -> bytes:
        """The day's signing key, derived once a day rather than once a request."""
        if self._key is None or self._key[0] != day:
            key = _hmac(f"AWS4{self.secret_access_key}".encode(), day)
            for part in (self.region, "s3", "aws4_request"):
                key = _hmac(key, part)
            self._key = (day, key)
        return self._key[1]

    def __repr__(self) -> str:  # never print the secret
        return f"StoreClient({self.scheme}://{self.netloc})"

    def sign(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
        payload_hash: str,
    ) -> None:  # fmt: skip
        """Add SigV4 headers (S3 flavour: the path is signed as sent)."""
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        headers["host"] = self.netloc
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_hash
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        canonical_query = "&".join(
            f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}" for k, v in sorted(query)
        )
        canonical = "\n".join(
            [method, path, canonical_query, canonical_headers, signed, payload_hash]
        )
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self._day_key(stamp[:8])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key_id}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )

    async def send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | AsyncIterable[bytes] = b"",
        length: int | None = None,
    ) -> StoreResponse:
        """One request; ``path`` is percent-encoded already. The answer's headers are read;
        its body waits for :meth:`StoreResponse.body`."""
        query = query or []
        out = {k.lower(): v for k, v in (headers or {}).items()}
        in_hand = isinstance(body, bytes)
        if isinstance(body, bytes):
            payload_hash = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
            length = len(body)
        else:
            payload_hash = "UNSIGNED-PAYLOAD"
        if length is not None and (length or method in ("PUT", "POST")):
            out["content-length"] = str(length)
        elif not in_hand:
            out["transfer-encoding"] = "chunked"
        self.sign(method, path, query, out, payload_hash)
        target = path
        if query:
            target += "?" + "&".join(
                f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}"
                if v != "" or k in ("uploadId",)
                else quote(k, safe=_UNRESERVED)
                for k, v in query
            )
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in out.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        chunked = "transfer-encoding" in out
        for attempt in (1, 2):
            connection, reused = await self._connection(in_hand and attempt == 1)
            try:
                writer = connection.writer
                if isinstance(body, bytes):
                    # The head and a body in hand leave in one write (one segment, one wake-up
                    # of the store), not two.
                    writer.write(head + body)
                else:
                    writer.write(head)
                    async for piece in body:
                        writer.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                        await writer.drain()
                    if chunked:
                        writer.write(b"0\r\n\r\n")
                await writer.drain()
                status, received = await _head(connection.reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                connection.close()
                if reused:
                    continue  # the store closed an idle connection: a fresh one
                raise StoreUnavailable(f"the store closed the connection: {exc}") from exc
            except BaseException:
                connection.close()
                raise
            bodiless = method == "HEAD" or status in _NO_BODY
            return StoreResponse(status, received, connection, self.idle, bodiless)
        raise StoreUnavailable(f"the store at {self.netloc} does not answer")

    async def _connection(self, pooled: bool) -> tuple[_Connection, bool]:
        """An idle connection (and True), else a new one."""
        while pooled and self.idle:
            connection = self.idle.pop()
            if connection.usable():
                return connection, True
            connection.close()
        try:
            ssl = ssl_module.create_default_context() if self.scheme == "https" else None
            _, wire = await asyncio.get_running_loop().create_connection(
                _Wire, self.host, self.port, ssl=ssl
            )
        except OSError as exc:
            raise StoreUnavailable(f"the store at {self.netloc} does not answer: {exc}") from exc
        return _Connection(wire), False
