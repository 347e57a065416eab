"""The Tornado internals the proxy relies on are still there.

The proxy reads two pieces of Tornado's private state, each for a reason its comment gives:
an `IOStream`'s read-ahead buffer (``proxy/websocket.py``: bytes a browser sent after the
handshake) and `RequestHandler`'s write buffer and headers-written flag (``proxy/http.py``:
the upstream's response head sent as is). pyproject.toml pins Tornado below the next minor
release; before raising that pin, this test says whether the names still hold.
"""

from __future__ import annotations

import socket

import tornado
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.iostream import IOStream


def test_the_pinned_tornado_is_installed() -> None:
    major, minor = tornado.version_info[:2]
    assert (6, 4) <= (major, minor) < (6, 7)


def test_an_iostream_keeps_its_read_ahead_where_the_tunnel_reads_it() -> None:
    left, right = socket.socketpair()
    try:
        stream = IOStream(left)
        assert isinstance(stream._read_buffer, bytearray)
        assert stream._read_buffer_size == 0
        stream.close()
    finally:
        right.close()


class Connection:
    """Just enough of an HTTP connection for a handler to be constructed."""

    def set_close_callback(self, callback: object) -> None:
        pass


def test_a_request_handler_has_the_write_state_the_proxy_keeps() -> None:
    app = web.Application()
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "localhost"}),
        connection=Connection(),  # type: ignore[arg-type]
    )
    handler = web.RequestHandler(app, request)
    assert handler._write_buffer == []
    assert handler._headers_written is False
