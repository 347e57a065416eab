"""Whether a browser request comes from the page's own origin: one rule for every form.

The Studio pages refuse a cross-origin form, and the proxy a cross-origin state-changing
request or WebSocket handshake into a Workspace (JupyterLab skips its own checks for the
gateway's token). Both ask :func:`cross_origin_error`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest


def cross_origin_error(request: HTTPServerRequest) -> str | None:
    """Why ``request`` looks cross-origin, or None when it is same-origin or not from a browser.

    The rule of Tornado 6.6's cross-origin protection, stricter on one point: a "same-site"
    request is refused too, since every Studio host is the same site
    (``*.emrstudio.localhost``) yet another Studio's origin.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site in ("same-origin", "none"):
        return None
    origin = request.headers.get("Origin")
    if site is None:
        if origin is None or urlsplit(origin).netloc.lower() == request.host.lower():
            return None
        return f"origin {origin!r} is not {request.host!r}"
    return f"Sec-Fetch-Site {site!r} from origin {origin!r}"
