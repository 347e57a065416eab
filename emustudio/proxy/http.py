"""The handler: any HTTP method, bodies streamed both ways with backpressure, and WebSocket
upgrades (which then become a `websocket.Tunnel`).

A request body flows chunk by chunk: Tornado hands each chunk to `data_received`, which
returns the upstream write's drain when the socket is backed up, and Tornado reads no further
until it is done. A response flows the same way back: each piece is flushed to the browser
before the next is read, and the upstream socket stops being read meanwhile
(`upstream.Connection`). Neither body is ever held whole, except HTML pages small enough to
scrub (see `ProxyOptions.html_scrub_bytes`).
"""

from __future__ import annotations

import logging
import time
from asyncio import Future
from collections.abc import Awaitable
from typing import Any, NoReturn

from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

from emustudio.origin import cross_origin_error
from emustudio.proxy.base import ProxyHandlerBase
from emustudio.proxy.contract import Upstream
from emustudio.proxy.headers import (
    SAFE_METHODS,
    request_head,
    response_headers,
    sets_cookie,
)
from emustudio.proxy.upstream import Connection, ResponseHead, UpstreamClosed
from emustudio.proxy.websocket import Tunnel

log = logging.getLogger(__name__)

_BODY_METHODS = ("POST", "PUT", "PATCH")  # those that send Content-Length: 0 when bodiless
_CLEARED = ("Content-Type", "Server", "Date")  # Tornado's defaults; the upstream sends its own


class ProxyHandler(ProxyHandlerBase):
    """For requests without a body. Tornado's streaming mode costs two more turns of the event
    loop per request, so requests with a body go to `StreamingProxyHandler` (`routes`)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    upstream: Upstream | None = None
    _conn: Connection | None = None
    _chunked_body = False
    _scrub: list[bytes] | None = None
    _raw_head: bytes | None = None
    _upgrade = False
    _touched = 0.0
    tunnel: Tunnel | None = None
    _gone = False

    def compute_etag(self) -> str | None:
        return None  # validators are the upstream's business

    def check_etag_header(self) -> bool:
        # Nor does the gateway answer 304 for the upstream; this also spares finish() parsing
        # If-None-Match on every response.
        return False

    async def prepare(self) -> None:
        request = self.request
        method = request.method or "GET"
        upgrade = (
            request.headers.get("Upgrade", "").lower() == "websocket"
            and request.version == "HTTP/1.1"
        )
        # Browsers apply no same-origin policy to WebSockets: a handshake is checked like a write.
        if (upgrade or method not in SAFE_METHODS) and (error := cross_origin_error(request)):
            raise web.HTTPError(403, "refused cross-origin %s: %s", method, error)
        if not self.route():
            return
        headers = request.headers
        length = headers.get("Content-Length")
        chunked = "Transfer-Encoding" in headers  # Tornado accepts only "chunked" there
        has_body = chunked or length not in (None, "0")
        if has_body and isinstance(request.connection, HTTP1Connection):
            request.connection.set_max_body_size(self.context.options.max_body_bytes)

        context = self.context
        try:
            upstream = await context.gate.open(self, self.studio_id, self.editor_id)
        except web.HTTPError:
            self.refused_by_gate = True
            raise
        self.upstream = upstream
        context.touch(self.editor_id)
        if chunked:
            framing: str | None = "Transfer-Encoding: chunked"
        elif length is not None or method in _BODY_METHODS:
            framing = f"Content-Length: {length or 0}"
        else:
            framing = None
        self._upgrade = upgrade and not has_body
        self._head = request_head(
            method,
            upstream.base_url.rstrip("/") + self.rest,
            request,
            upstream,
            context.session_cookie,
            framing=framing,
            upgrade=self._upgrade,
        )
        if has_body:
            # Send the head now so that the body streams behind it. Once body bytes have gone,
            # a dead connection can no longer be swapped for another (they cannot be replayed);
            # the pool hands out only connections it has seen alive.
            self._chunked_body = chunked
            self._conn = await self._start_body()

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        conn = self._conn
        if conn is None:
            return None
        if self._chunked_body:
            chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
        try:
            return conn.write(chunk)
        except UpstreamClosed:
            return None  # reading the response reports it

    async def get(self, *args: Any, **kwargs: Any) -> None:
        method = self.request.method or "GET"
        try:
            if self._conn is None:
                head = await self._exchange()
            else:
                if self._chunked_body:
                    self._conn.write(b"0\r\n\r\n")
                head = await self._conn.read_head()
        except UpstreamClosed as e:
            if self._gone:
                return
            self._unreachable(e)
        conn = self._conn
        assert conn is not None
        if head.code == 101:
            if not self._upgrade:
                self._unreachable("101 to a request that did not ask to switch")
            await self._tunnel(conn, head)
            return
        self._relay_head(head, method)
        try:
            reusable = await conn.read_body(head, method, self._deliver)
        except UpstreamClosed:
            # Mid-response: the browser went away, or the upstream did and it is too late to
            # say so; cut the browser's connection so a truncated body never looks complete.
            self._abort()
            return
        self._release(reusable)
        if self._scrub is not None:
            assert self.upstream is not None
            body = b"".join(self._scrub)
            self.write(body.replace(self.upstream.token.encode(), b""))
        self.finish()

    head = post = put = patch = delete = options = get

    async def _exchange(self) -> ResponseHead:
        """Send a bodiless request: on a kept connection first, and once more on a fresh one
        if that one dies before answering (the upstream may close it at the same moment)."""
        while True:
            conn, reused = await self._connect(pooled=True)
            self._conn = conn
            try:
                conn.write(self._head)
                return await conn.read_head()
            except UpstreamClosed:
                conn.close()
                self._conn = None
                if not reused or self._gone:
                    raise

    async def _start_body(self) -> Connection:
        for pooled in (True, False):
            conn, reused = await self._connect(pooled=pooled)
            try:
                conn.write(self._head)
                return conn
            except UpstreamClosed as e:
                conn.close()
                if not reused:
                    self._unreachable(e)
        raise AssertionError("unreachable: a fresh connection either works or raises")

    async def _connect(self, *, pooled: bool) -> tuple[Connection, bool]:
        assert self.upstream is not None
        host, port = self.upstream.host, self.upstream.port
        pool = self.context.pool
        if pooled and (conn := pool.checkout(host, port)) is not None:
            return conn, True
        try:
            return await pool.connect(host, port), False
        except (OSError, TimeoutError) as e:
            self._unreachable(e)

    async def _tunnel(self, conn: Connection, head: ResponseHead) -> None:
        self._conn = None  # the tunnel owns it now
        lines = [f"HTTP/1.1 101 {head.reason}"]
        session_cookie = self.context.session_cookie
        lines.extend(
            f"{name}: {value}"
            for name, value in head.headers
            if not (name.lower() == "set-cookie" and sets_cookie(value, session_cookie))
        )
        lines.append("\r\n")
        self.set_status(101)
        self.application.log_request(self)
        browser = self.detach()
        self.tunnel = tunnel = Tunnel(browser, conn, self._traffic)
        tunnels = self.context.tunnels
        tunnels.add(tunnel)
        try:
            await tunnel.run("\r\n".join(lines).encode("latin1"))
        finally:
            tunnels.discard(tunnel)

    def _traffic(self) -> None:
        now = time.monotonic()
        if now - self._touched >= self.context.options.touch_interval:
            self._touched = now
            self.context.touch(self.editor_id)

    def _unreachable(self, error: object) -> NoReturn:
        assert self.upstream is not None
        log.warning(
            "workspace %s: upstream %s failed: %s", self.editor_id, self.upstream.netloc, error
        )
        raise web.HTTPError(502)

    def _relay_head(self, head: ResponseHead, method: str) -> None:
        self.set_status(head.code, head.reason or None)
        kept, html = response_headers(head, self.context.session_cookie)
        upstream = self.upstream
        if (
            html
            and upstream is not None
            and upstream.token
            and head.length is not None
            and head.length <= self.context.options.html_scrub_bytes
            and method != "HEAD"
        ):
            # JupyterLab writes its token into the page config; only the gateway may know it.
            self._scrub = []
            kept = [(n, v) for n, v in kept if n.lower() != "content-length"]
        elif self.request.version == "HTTP/1.1" and (
            head.length is not None or method == "HEAD" or head.code in (204, 304)
        ):
            # The common case: the upstream's framing (Content-Length, or no body) holds for
            # the browser too, so its head goes out as is, without Tornado rebuilding it.
            lines = [f"HTTP/1.1 {head.code} {head.reason}"]
            lines.extend(f"{name}: {value}" for name, value in kept)
            if self.request.headers.get("Connection", "").lower() == "close":
                lines.append("Connection: close")
            lines.append("\r\n")
            self._raw_head = "\r\n".join(lines).encode("latin1")
            return
        for name in _CLEARED:
            self.clear_header(name)
        for name, value in kept:
            self.add_header(name, value)

    def flush(self, include_footers: bool = False) -> Future[None]:
        raw = self._raw_head
        if raw is None:
            return super().flush(include_footers)
        # RequestHandler's own state, kept as its flush() keeps it: its finish() then runs
        # as usual (close callback, connection finish, log, on_finish). Tornado has no public
        # way to send a head it did not build; sending the upstream's as is saves rebuilding
        # it per response (docs/benchmarks.md). The attributes are Tornado's private ones:
        # the version range is pinned in pyproject.toml (tornado <6.7) and
        # tests/proxy/test_tornado_internals.py fails first should a release rename them.
        chunk = b"".join(self._write_buffer)
        self._write_buffer = []
        if not self._headers_written:
            self._headers_written = True
            chunk = raw + chunk
        assert self.request.connection is not None
        return self.request.connection.write(chunk)

    def _deliver(self, piece: bytes, last: bool) -> Awaitable[None] | None:
        if self._scrub is not None:
            self._scrub.append(piece)
            return None
        if piece:
            self.write(piece)
        if last:
            return None  # the last piece goes out with finish(), in one write
        return self._flush()

    async def _flush(self) -> None:
        # Awaited before the next piece is read from the upstream.
        try:
            await self.flush()
        except StreamClosedError:
            self.on_connection_close()  # the browser left: stop reading the upstream

    def _release(self, reusable: bool) -> None:
        conn, upstream = self._conn, self.upstream
        self._conn = None
        if conn is None or upstream is None:
            return
        if reusable and not self._gone:
            self.context.pool.checkin(upstream.host, upstream.port, conn)
        else:
            conn.close()

    def _abort(self) -> None:
        self._release(False)
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            connection.close()
        self._gone = True
        if not self._finished:
            self.finish()  # writes nothing to a closed connection; runs on_finish and the log

    def on_connection_close(self) -> None:
        # The browser left: stop the upstream too (a long poll, a download in flight).
        self._gone = True
        if self._conn is not None:
            self._conn.close()
        super().on_connection_close()  # ends a streamed request body still being awaited

    def on_finish(self) -> None:
        if self._conn is not None:  # refused or failed half way: never reuse
            self._conn.close()
            self._conn = None


@web.stream_request_body
class StreamingProxyHandler(ProxyHandler):
    """For requests with a body, which it streams upstream as it arrives."""
