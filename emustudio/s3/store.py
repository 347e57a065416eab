"""The S3 store behind the gateway's S3 API, spoken to on the event loop, bodies streamed.

One request, one connection (Tornado's HTTP/1.1 client side): the request body is written as
its source yields it, and the response body is handed to the reader piece by piece, each piece
read from the store only once the reader took the one before. So neither direction holds a
body in memory, and a slow client slows the store down instead of filling the gateway.

Requests are signed with the gateway's own store credentials (SigV4, ``UNSIGNED-PAYLOAD`` for
streamed bodies: the gateway has already checked what its client signed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ssl as ssl_module
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httputil import (
    HTTPHeaders,
    HTTPMessageDelegate,
    RequestStartLine,
    ResponseStartLine,
)
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

__all__ = ["StoreClient", "StoreResponse", "StoreUnavailable"]

_UNRESERVED = "-_.~"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_PARAMS = HTTP1ConnectionParameters(
    no_keep_alive=True, chunk_size=256 * 1024, max_body_size=1 << 42, decompress=False
)
_KEEP_ALIVE = HTTP1ConnectionParameters(
    no_keep_alive=False, chunk_size=256 * 1024, max_body_size=1 << 42, decompress=False
)
# Idle connections kept for requests whose body is in hand (reads, listings, deletes): a
# small GetObject then costs no TCP handshake. A streamed body gets a connection of its own.
_MAX_IDLE = 8


class StoreUnavailable(Exception):
    """The store did not answer (not running, connection lost)."""


_END = object()


class _Reader(HTTPMessageDelegate):
    """Receives one response; its body goes through a short queue the consumer drains."""

    def __init__(self) -> None:
        self.head: asyncio.Future[tuple[int, HTTPHeaders]] = (
            asyncio.get_running_loop().create_future()
        )
        self.queue: asyncio.Queue[object] = asyncio.Queue(4)
        self.pending: set[asyncio.Future[None]] = set()

    def _later(self, item: object) -> None:
        """Queue ``item`` once there is room (keeping the task referenced until then)."""
        task = asyncio.ensure_future(self.queue.put(item))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> None:
        assert isinstance(start_line, ResponseStartLine)
        if not self.head.done():
            self.head.set_result((start_line.code, headers))

    def data_received(self, chunk: bytes) -> asyncio.Future[None]:
        # Tornado waits for this before it reads on: the backpressure.
        return asyncio.ensure_future(self.queue.put(chunk))

    def finish(self) -> None:
        self._later(_END)

    def response_ended(self, _task: asyncio.Future[bool]) -> None:
        if not self.head.done():  # the connection closed before the head (see StoreClient.send)
            self.on_connection_close()

    def on_connection_close(self) -> None:
        if not self.head.done():
            self.head.set_exception(StoreUnavailable("the store closed the connection"))
        self._later(StoreUnavailable("the store closed the connection"))


@dataclass
class StoreResponse:
    status: int
    headers: dict[str, str]
    _reader: _Reader = field(repr=False)
    _connection: HTTP1Connection = field(repr=False)
    _task: asyncio.Future[bool] = field(repr=False)
    _pool: list[IOStream] | None = field(default=None, repr=False)

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives (read once)."""
        finished = False
        try:
            while True:
                item = await self._reader.queue.get()
                if item is _END:
                    finished = True
                    return
                if isinstance(item, Exception):
                    raise item
                assert isinstance(item, bytes)
                yield item
        finally:
            if finished:
                await self.release()
            else:
                self.close()

    async def release(self) -> None:
        """Keep the connection for the next request if both sides allow it, else close it."""
        reusable = self._pool is not None and "close" not in self.headers.get("connection", "")
        try:
            await self._task
        except Exception:
            reusable = False
        if not reusable or self._pool is None or len(self._pool) >= _MAX_IDLE:
            self.close()
            return
        stream: IOStream | None = self._connection.detach()
        if stream is None or stream.closed():
            return
        self._pool.append(stream)

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
        self.tcp = TCPClient()
        self.idle: list[IOStream] = []
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
        if isinstance(body, bytes):
            payload_hash = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
            length = len(body)
        else:
            payload_hash = "UNSIGNED-PAYLOAD"
        if length is not None and (length or method in ("PUT", "POST")):
            out["content-length"] = str(length)
        self.sign(method, path, query, out, payload_hash)
        target = path
        if query:
            target += "?" + "&".join(
                f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}"
                if v != "" or k in ("uploadId",)
                else quote(k, safe=_UNRESERVED)
                for k, v in query
            )
        pooled = isinstance(body, bytes)
        for attempt in (1, 2):
            stream, reused = await self._stream(pooled and attempt == 1)
            connection = HTTP1Connection(stream, True, _KEEP_ALIVE if pooled else _PARAMS)
            reader = _Reader()
            try:
                start = RequestStartLine(method, target, "HTTP/1.1")
                if isinstance(body, bytes):
                    # The head and a body in hand leave in one write (one segment, one wake-up
                    # of the store), not two.
                    connection.write_headers(start, HTTPHeaders(out), body or None)
                else:
                    connection.write_headers(start, HTTPHeaders(out))
                    async for piece in body:
                        await connection.write(piece)
                connection.finish()
            except StreamClosedError as exc:
                connection.close()
                if reused:
                    continue  # the store closed an idle connection: a fresh one
                raise StoreUnavailable(f"the store closed the connection: {exc}") from exc
            except BaseException:
                connection.close()
                raise
            task = asyncio.ensure_future(connection.read_response(reader))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            # Tornado tells the reader of a closed connection only once the answer's head is
            # in: a kept connection the store closed while idle (the request written into it,
            # then EOF) would leave the head unanswered for ever.
            task.add_done_callback(reader.response_ended)
            try:
                status, received = await reader.head
            except (StoreUnavailable, StreamClosedError) as exc:
                connection.close()
                if reused:
                    continue
                raise StoreUnavailable(str(exc)) from exc
            return StoreResponse(
                status,
                {k.lower(): v for k, v in received.get_all()},
                reader,
                connection,
                task,
                self.idle if pooled else None,
            )
        raise StoreUnavailable(f"the store at {self.netloc} does not answer")

    async def _stream(self, pooled: bool) -> tuple[IOStream, bool]:
        """An idle connection (and True), else a new one."""
        while pooled and self.idle:
            stream = self.idle.pop()
            if not stream.closed():
                return stream, True
        try:
            ssl = ssl_module.create_default_context() if self.scheme == "https" else None
            stream = await self.tcp.connect(self.host, self.port, ssl_options=ssl)
        except OSError as exc:
            raise StoreUnavailable(f"the store at {self.netloc} does not answer: {exc}") from exc
        stream.set_nodelay(True)  # a request's head and a small body go out at once
        return stream, False
