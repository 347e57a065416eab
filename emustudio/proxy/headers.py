"""Header rules shared by the HTTP and WebSocket legs.

Going upstream, the proxy drops hop-by-hop headers (RFC 9110 §7.6.1, plus any the
``Connection`` header names), replaces ``Host`` with the upstream's address, puts in its own
``Authorization: token`` and ``X-Forwarded-*``, and takes the gateway's session cookie out of
``Cookie``. Coming back, it drops hop-by-hop headers and any ``Set-Cookie`` for that session
cookie, so a Workspace can neither read nor overwrite the gateway's session.

Why ``Host`` is the upstream's own: jupyter_server refuses unknown hosts on a loopback bind
(DNS-rebinding protection) and names its cookies after the host; with its own address there
it answers the same whatever name the browser used. The browser's host goes in
``X-Forwarded-Host``.

Why the proxy checks origins itself: a request carrying the injected token is "token
authenticated" to jupyter_server, which then skips both its XSRF and its Origin checks. So every
state-changing request and every WebSocket handshake must be same-origin before the gateway
vouches for it with the token (`emustudio.origin.cross_origin_error`).
"""

from __future__ import annotations

from tornado.httputil import HTTPHeaders, HTTPServerRequest

from emustudio.proxy.contract import Upstream
from emustudio.proxy.upstream import ResponseHead

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers the proxy sets itself (or, for Expect, that Tornado already answered).
# Cookie comes back without the session cookie; Content-Length with the body's framing.
_REPLACED = frozenset(
    {
        "host",
        "authorization",
        "cookie",
        "content-length",
        "expect",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    }
)
_DROP = HOP_BY_HOP | _REPLACED
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def connection_tokens(headers: HTTPHeaders) -> frozenset[str]:
    value = headers.get("Connection")
    if not value:
        return frozenset()
    return frozenset(token.strip().lower() for token in value.split(","))


def strip_cookie(header: str, name: str) -> str:
    """``header`` (a ``Cookie`` value) without the cookie called ``name``."""
    if name not in header:
        return header
    kept = [part for part in header.split(";") if part.split("=", 1)[0].strip() != name]
    return ";".join(kept).strip()


def sets_cookie(set_cookie: str, name: str) -> bool:
    """Whether a ``Set-Cookie`` value sets the cookie called ``name``."""
    return set_cookie.split("=", 1)[0].strip() == name


def forwarded(
    request: HTTPServerRequest, upstream: Upstream, session_cookie: str
) -> list[tuple[str, str]]:
    """The headers to send upstream for ``request``, in order."""
    incoming = request.headers
    named = connection_tokens(incoming)
    drop = _DROP | named if named else _DROP
    out = [
        ("Host", upstream.netloc),
        ("Authorization", f"token {upstream.token}"),
        # The gateway is the edge: whatever a client says it forwarded for is not believed.
        ("X-Forwarded-For", request.remote_ip or ""),
        ("X-Forwarded-Proto", request.protocol),
        ("X-Forwarded-Host", request.host),
    ]
    for name, value in incoming.get_all():
        lowered = name.lower()
        if lowered not in drop:
            out.append((name, value))
        elif lowered == "cookie":
            cookies = strip_cookie(value, session_cookie)
            if cookies:
                out.append((name, cookies))
    return out


def request_head(
    method: str,
    target: str,
    request: HTTPServerRequest,
    upstream: Upstream,
    session_cookie: str,
    *,
    framing: str | None = None,
    upgrade: bool = False,
) -> bytes:
    """The request line and headers to send upstream, encoded. ``framing`` is the body's
    ``Content-Length`` or ``Transfer-Encoding`` line, if it has a body; ``upgrade`` asks the
    upstream to switch to WebSocket (the browser's ``Sec-WebSocket-*`` headers go as they are).
    """
    lines = [f"{method} {target} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in forwarded(request, upstream, session_cookie))
    if framing is not None:
        lines.append(framing)
    if upgrade:
        lines.append("Connection: Upgrade\r\nUpgrade: websocket")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin1")


def response_headers(head: ResponseHead, session_cookie: str) -> tuple[list[tuple[str, str]], bool]:
    """The upstream's response headers that go on to the browser, in order, and whether the
    body is an uncompressed HTML page (whose token the proxy scrubs)."""
    drop = HOP_BY_HOP | head.connection if head.connection else HOP_BY_HOP
    kept: list[tuple[str, str]] = []
    html = False
    for name, value in head.headers:
        lowered = name.lower()
        if lowered in drop or (lowered == "set-cookie" and sets_cookie(value, session_cookie)):
            continue
        if lowered == "content-type":
            html = value.startswith("text/html")
        elif lowered == "content-encoding":
            html = False
        kept.append((name, value))
    return kept, html
