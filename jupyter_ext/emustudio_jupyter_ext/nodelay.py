"""TCP_NODELAY on every connection the Jupyter server answers, WebSockets included.

Two pieces, because tornado manages the flag itself:

* :func:`make_sticky` patches :meth:`tornado.iostream.IOStream.set_nodelay` in this process
  so that it only ever turns the flag *on*.  Tornado's HTTP/1 code switches Nagle's algorithm
  back on after each response (``HTTP1Connection._finish_request``), and a WebSocket upgrade
  is such a response: without this, every kernel and terminal WebSocket runs with Nagle on,
  and a small message written right after another waits for the client's delayed ACK, about
  40 ms (reference/anchors-measured.md §3: idle p50 52 ms, 8 ms with nodelay).
* :class:`NoDelay`, an output transform, which tornado applies to every request before its
  handler runs, turns the flag on for a connection's first request (new sockets start with
  Nagle on, and a streamed response writes before tornado's own ``set_nodelay(True)`` at
  finish).

The Workspace server only talks to the gateway, over a LAN-like bridge, so there is nothing to
gain from Nagle; tornado already coalesces each message's writes in its own buffer.
"""

from __future__ import annotations

import socket
from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.iostream import IOStream
from tornado.web import OutputTransform

_PATCHED = "_emustudio_sticky_nodelay"


def make_sticky() -> None:
    """From now on ``IOStream.set_nodelay(False)`` leaves TCP_NODELAY on.  Idempotent."""
    if getattr(IOStream.set_nodelay, _PATCHED, False):
        return
    original = IOStream.set_nodelay

    def set_nodelay(self: IOStream, value: bool) -> None:
        original(self, True)

    setattr(set_nodelay, _PATCHED, True)
    IOStream.set_nodelay = set_nodelay  # type: ignore[method-assign]


def nodelay_active(request: HTTPServerRequest) -> bool:
    """Whether the socket serving ``request`` has TCP_NODELAY (read from the kernel)."""
    stream = getattr(request.connection, "stream", None)
    sock: Any = getattr(stream, "socket", None)
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class NoDelay(OutputTransform):
    """Turns TCP_NODELAY on for the connection of every request; leaves the response as is."""

    def __init__(self, request: HTTPServerRequest) -> None:
        super().__init__(request)
        stream = getattr(request.connection, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)
