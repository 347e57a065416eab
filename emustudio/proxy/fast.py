"""The fast path: a remembered, bodiless request proxied without a `RequestHandler`.

JupyterLab loads dozens of files per page and polls its API: ``GET`` requests for a Workspace
the gate has already admitted for this session. For those the first rule of each form
(`routes`) is a `FastRoute`: it asks the gate's memory (`RememberingGate.remembered`, no I/O),
and a request admitted there goes to an `Exchange`, which writes it on a pooled keep-alive
connection and answers the browser from the upstream socket's own callback: no handler, no
coroutine, the response's head as the upstream wrote it (less the hop-by-hop headers) in one
write with its body. Fewer Python calls and fewer event loop turns per request
(``docs/benchmarks.md``).

`FastRoute.find_handler` answers None, and the next rule (the handler, `http`) takes the
request, for anything else: a body or an ``Upgrade``, HTTP/1.0, a path missing its slash, a
decision not remembered (the first request, a refusal, a write since, a status change of the
Workspace, an ended session: whenever `open` would decide again), a path-form page load (the
gate redirects it). The host check is the routing's own (the rule sits inside each form's
rules), and the Origin check concerns writes and WebSocket handshakes only (`http`), neither of
which comes here. What the handler does, this does too: the gate's decision, the activity
signal, the header rules (`headers`), the token scrub of HTML pages, the access log line (the
application's ``log_function``), cutting the browser's connection when the upstream's body
ends short. A body larger than `_WHOLE`, or without a length, streams from a coroutine with
the handler's backpressure (and chunked framing when it has no length). No idle connection,
or one that fails before the response's head, and the request is handed over to the handler,
which connects afresh and answers 502 with its error page should that fail too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, cast

from tornado import httputil, web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError
from tornado.routing import Router

from emustudio.proxy.base import Form, ProxyContext, cut
from emustudio.proxy.contract import RememberingGate, Upstream
from emustudio.proxy.headers import request_head, response_headers
from emustudio.proxy.upstream import Connection, ResponseHead, UpstreamClosed

log = logging.getLogger(__name__)

_WHOLE = 256 << 10
"""A response body up to this size is gathered, then sent with its head in one write."""
_METHODS = ("GET", "HEAD")
_NO_BODY = (204, 304)


class FastRoute(Router):
    """A rule's target: an `Exchange` for a remembered request, else None (the next rule)."""

    def __init__(
        self,
        context: ProxyContext,
        form: Form,
        gate: RememberingGate,
        handler: type[web.RequestHandler],
    ) -> None:
        self.context = context
        self.form = form
        self.gate = gate
        self.handler = handler
        """The handler of this form's bodiless requests, which takes what this gives up."""

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate | None:
        application = self.context.application
        browser = request.connection
        if (
            application is None
            or request.method not in _METHODS
            or request.version != "HTTP/1.1"
            or not isinstance(browser, HTTP1Connection)
        ):
            return None
        headers = request.headers
        if "Content-Length" in headers or "Transfer-Encoding" in headers or "Upgrade" in headers:
            return None
        editor_id, studio_id, rest = cut(request.uri or "/", self.form, request.host_name)
        if not rest.startswith("/"):
            return None
        upstream = self.gate.remembered(request, studio_id, editor_id)
        if upstream is None:
            return None
        return Exchange(self, application, request, browser, upstream, editor_id, rest)


class _Served:
    """What the access log reads of a handler (the gateway's ``log_function``, or Tornado's
    own `web.Application.log_request`), for a request served without one."""

    quiet_access_log = True
    refused_by_gate = False

    def __init__(self, request: httputil.HTTPServerRequest, status: int) -> None:
        self.request = request
        self.status = status

    def get_status(self) -> int:
        return self.status

    def _request_summary(self) -> str:
        request = self.request
        return f"{request.method} {request.uri} ({request.remote_ip})"


class Exchange(httputil.HTTPMessageDelegate):
    """One remembered request, from its end (``finish``) to its answer's last byte."""

    def __init__(
        self,
        route: FastRoute,
        application: web.Application,
        request: httputil.HTTPServerRequest,
        browser: HTTP1Connection,
        upstream: Upstream,
        editor_id: str,
        rest: str,
    ) -> None:
        self.route = route
        self.application = application
        self.request = request
        self.browser = browser
        self.upstream = upstream
        self.editor_id = editor_id
        self.rest = rest
        self.start_line: httputil.RequestStartLine | None = None
        self.conn: Connection | None = None
        self.head: ResponseHead | None = None
        self.kept: list[tuple[str, str]] = []
        self.length = 0
        self.scrub = False
        self.status = 200
        self.gone = False
        self.logged = False
        self.task: asyncio.Task[None] | None = None

    # --- httputil.HTTPMessageDelegate, called by the browser's connection ---

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.start_line = start_line
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return None  # bodiless: never called

    def finish(self) -> None:
        """The request is all read: send it upstream on an idle connection."""
        context = self.route.context
        context.touch(self.editor_id)
        upstream = self.upstream
        conn = context.pool.checkout(upstream.host, upstream.port)
        if conn is None:
            self._hand_over()  # connecting is the handler's business (and its 502)
            return
        self.conn = conn
        self.browser.set_close_callback(self.on_connection_close)
        conn.listener = self._received
        request = self.request
        method = request.method or "GET"
        target = upstream.base_url.rstrip("/") + self.rest
        try:
            conn.write(request_head(method, target, request, upstream, context.session_cookie))
        except UpstreamClosed:
            self._hand_over()

    def on_connection_close(self) -> None:
        """The browser left: stop the upstream too."""
        self.gone = True
        self._release(False)
        self._log()

    # --- the upstream's answer ---

    def _received(self) -> None:
        """Bytes or the end arrived from the upstream (`Connection.listener`)."""
        try:
            self._answer()
        except Exception:
            # Not asyncio's "data_received() call failed", which would leave the browser
            # waiting: this request's connection is cut, as when the upstream breaks.
            log.exception("workspace %s: answering from the upstream failed", self.editor_id)
            self.status = 502
            self._abort()

    def _answer(self) -> None:
        conn = self.conn
        if conn is None:
            return
        if self.head is None:
            try:
                head = conn.buffered_head()
            except UpstreamClosed:
                head = None
                conn.eof = True
            if head is None:
                if conn.eof:
                    self._hand_over()  # died before answering: the handler retries afresh
                return
            if head.code == 101:  # to a request that did not ask: the handler's 502
                self._hand_over()
                return
            if not self._plan(head):
                return  # it streams
        if len(conn.buffer) >= self.length:
            self._send_whole(conn)
        elif conn.eof:
            # Ended short: cut the browser's connection so it never looks complete.
            if not self.scrub:
                self.browser.write(self._head_bytes(None) + conn.take(len(conn.buffer)))
            self._abort()

    def _plan(self, head: ResponseHead) -> bool:
        """Note what to send for ``head``; False when the body streams instead of being
        gathered (then the streaming has started)."""
        self.head = head
        self.status = head.code
        method = self.request.method
        kept, html = response_headers(head, self.route.context.session_cookie)
        bodiless = method == "HEAD" or head.code in _NO_BODY
        length = 0 if bodiless else head.length
        # JupyterLab writes its token into the page config; only the gateway may know it.
        self.scrub = (
            html
            and not bodiless
            and bool(self.upstream.token)
            and length is not None
            and length <= self.route.context.options.html_scrub_bytes
        )
        if self.scrub:
            kept = [(n, v) for n, v in kept if n.lower() != "content-length"]
        elif length is None:
            kept.append(("Transfer-Encoding", "chunked"))  # framed anew: see `_relay`
        self.kept = kept
        if length is not None and length <= _WHOLE:
            self.length = length
            return True
        assert self.conn is not None
        self.conn.listener = None  # from here on a coroutine reads it, with backpressure
        self.task = asyncio.ensure_future(self._relay(self.conn, head))
        return False

    def _head_bytes(self, framing: str | None) -> bytes:
        head = self.head
        assert head is not None
        lines = [f"HTTP/1.1 {head.code} {head.reason}"]
        lines.extend(f"{name}: {value}" for name, value in self.kept)
        if framing is not None:
            lines.append(framing)
        if self.request.headers.get("Connection", "").lower() == "close":
            lines.append("Connection: close")  # Tornado closes it after this response
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin1")

    def _send_whole(self, conn: Connection) -> None:
        assert self.head is not None
        body = conn.take(self.length)
        self._release(self.head.keep_alive)
        if self.scrub:
            body = body.replace(self.upstream.token.encode(), b"")
            data = self._head_bytes(f"Content-Length: {len(body)}") + body
        else:
            data = self._head_bytes(None) + body
        self.browser.write(data)
        self.browser.finish()
        self._log()

    async def _relay(self, conn: Connection, head: ResponseHead) -> None:
        """A body too large to gather, or without a length: piece by piece, each written to
        the browser before the next is read (the handler's backpressure)."""
        method = self.request.method or "GET"
        framed = any(name == "Transfer-Encoding" for name, _ in self.kept)
        pieces: list[bytes] = []
        started = False

        def deliver(piece: bytes, last: bool) -> Awaitable[None] | None:
            nonlocal started
            if self.scrub:
                pieces.append(piece)
                if not last:
                    return None
                body = b"".join(pieces).replace(self.upstream.token.encode(), b"")
                self.browser.write(self._head_bytes(f"Content-Length: {len(body)}") + body)
                return None
            if framed:
                data = b"%x\r\n%b\r\n" % (len(piece), piece) if piece else b""
                if last:
                    data += b"0\r\n\r\n"
            else:
                data = piece
            if not started:
                started = True
                data = self._head_bytes(None) + data
            written = self.browser.write(data) if data else None
            return None if last else written

        try:
            reusable = await conn.read_body(head, method, deliver)
        except (UpstreamClosed, StreamClosedError):
            self._abort()
            return
        except Exception:  # as in `_received`: never leave the browser waiting
            log.exception("workspace %s: streaming the answer failed", self.editor_id)
            self._abort()
            return
        self._release(reusable)
        self.browser.finish()
        self._log()

    # --- endings ---

    def _release(self, reusable: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        conn.listener = None
        if reusable and not self.gone:
            self.route.context.pool.checkin(self.upstream.host, self.upstream.port, conn)
        else:
            conn.close()

    def _abort(self) -> None:
        self._release(False)
        self.gone = True
        self.browser.close()
        self._log()

    def _hand_over(self) -> None:
        """Let the handler serve this request from the start (it has no body to replay)."""
        self._release(False)
        if self.gone:
            return
        assert self.start_line is not None
        context = self.route.context
        delegate = self.application.get_handler_delegate(
            self.request, self.route.handler, {"context": context, "form": self.route.form}
        )
        delegate.headers_received(self.start_line, self.request.headers)
        delegate.finish()

    def _log(self) -> None:
        if not self.logged:
            self.logged = True
            served = _Served(self.request, self.status)
            # The access log reads only what `_Served` has of a handler.
            self.application.log_request(cast(web.RequestHandler, served))
