"""The fast path (`emustudio.proxy.fast`): a remembered bodiless request is served without a
handler and answered as the handler answers it; what fails before the answer's head goes back
to the handler. (Every test of ``test_http`` also runs behind a remembering gate.)"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from emustudio.proxy import ProxyOptions, Upstream, WorkspaceProxy, fast
from tests.proxy.conftest import DOMAIN, ECHO, STUDIO, FakeGate, ProxyServer, RememberingGate
from tests.proxy.test_http import PATTERN, call_echo, headers_of

pytestmark = pytest.mark.parametrize("gate", ["fast"], indirect=True)

KEPT = "e-" + "K" * 25  # the keep-alive scripted upstream below


class NoHandler:
    """Asserts that the requests of the block were all served on the fast path."""

    def __init__(self, gate: FakeGate, editor: str, requests: int) -> None:
        assert isinstance(gate, RememberingGate)
        self.gate, self.editor, self.requests = gate, editor, requests

    def __enter__(self) -> None:
        self.handlers = len(self.gate.handlers)
        self.fast = self.gate.fast[self.editor]

    def __exit__(self, *exc: object) -> None:
        assert len(self.gate.handlers) == self.handlers, "a handler served a remembered request"
        assert self.gate.fast[self.editor] == self.fast + self.requests


def test_remembered_requests_get_the_handlers_answers_without_one(
    proxy: ProxyServer, gate: FakeGate, echo: Upstream
) -> None:
    call_echo(proxy)  # decided by the gate (through a handler), and remembered
    with NoHandler(gate, ECHO, 8):
        seen = headers_of(
            call_echo(
                proxy,
                headers={
                    "Cookie": "a=1; emustudio-session=secret",
                    "Connection": "keep-alive, X-Private",
                    "X-Private": "hop",
                },
            )
        )
        assert seen["authorization"] == [f"token {echo.token}"]
        assert seen["cookie"] == ["a=1"]
        assert seen["host"] == [echo.netloc]
        assert "x-private" not in seen and "connection" not in seen

        status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/cookies")
        assert (status, body) == (200, b"ok")
        assert headers.get_all("Set-Cookie") == ["other=1; Path=/"]
        assert headers["Keep-Alive"] is None

        status, headers, page = proxy.request("GET", f"/workspaces/{ECHO}/page")
        assert status == 200 and echo.token.encode() not in page and b'"token": ""' in page
        assert headers["Content-Length"] == str(len(page))
        status, headers, body = proxy.request("HEAD", f"/workspaces/{ECHO}/page")
        assert (status, body) == (200, b"") and int(headers["Content-Length"]) > len(page)

        status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/chunks")
        assert (status, body, headers["Transfer-Encoding"]) == (200, b"abc", "chunked")

        size = 3 << 20  # larger than what is gathered whole: streamed
        status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/download?size={size}")
        assert (status, headers["Content-Length"]) == (200, str(size))
        expected = (PATTERN * (size // len(PATTERN) + 1))[:size]
        assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()

        for code in (404, 304):
            status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/status/{code}")
            assert (status, headers["X-Upstream"]) == (code, "yes")
            assert body == (b"" if code == 304 else b"status 404")


def test_a_browser_asking_to_close_is_answered_and_closed(
    proxy: ProxyServer, gate: FakeGate
) -> None:
    call_echo(proxy)
    with NoHandler(gate, ECHO, 1):
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        sock.sendall(
            f"GET /workspaces/{ECHO}/chunks HTTP/1.1\r\nHost: {proxy.studio_host}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while piece := sock.recv(65536):  # ends: the proxy closed it
            data += piece
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert body == b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n"


def test_the_access_log_line_is_written(
    proxy: ProxyServer, gate: FakeGate, caplog: pytest.LogCaptureFixture
) -> None:
    call_echo(proxy)
    line = f"404 GET /workspaces/{ECHO}/status/404 (127.0.0.1)"
    with caplog.at_level(logging.INFO, logger="tornado.access"), NoHandler(gate, ECHO, 1):
        proxy.request("GET", f"/workspaces/{ECHO}/status/404")
        # Logged once the answer is written, on the proxy's thread: maybe after it is read.
        deadline = time.monotonic() + 5
        while line not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    assert line in caplog.text


class Kept:
    """A keep-alive upstream that answers each connection's first request with ``one``; on a
    connection's second request it does what the path says: hang up, or send a short body."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            for count in range(1, 100):
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                path = data.split(b" ", 2)[1]
                if count > 1 and path.endswith(b"/hangup"):
                    return
                if count > 1 and path.endswith(b"/truncated"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")


@pytest.fixture
def kept(gate: FakeGate) -> Iterator[Kept]:
    """A new one per test: no connection to it is kept yet."""
    server = Kept()
    gate.upstreams[KEPT] = Upstream("127.0.0.1", server.server.getsockname()[1], "t", "/")
    yield server
    server.server.close()


def test_a_kept_connection_that_dies_unanswered_hands_the_request_to_the_handler(
    proxy: ProxyServer, gate: FakeGate, kept: Kept
) -> None:
    assert proxy.request("GET", f"/workspaces/{KEPT}/hangup")[2] == b"one"  # decided; kept
    before, handlers = kept.connections, len(gate.handlers)
    status, _, body = proxy.request("GET", f"/workspaces/{KEPT}/hangup")
    assert (status, body) == (200, b"one")  # asked again on a fresh connection
    assert kept.connections == before + 1
    assert len(gate.handlers) == handlers + 1


def test_a_short_body_on_the_fast_path_cuts_the_browser_connection(
    proxy: ProxyServer, gate: FakeGate, kept: Kept
) -> None:
    proxy.request("GET", f"/workspaces/{KEPT}/truncated")
    with NoHandler(gate, KEPT, 1), pytest.raises(http.client.IncompleteRead):
        proxy.request("GET", f"/workspaces/{KEPT}/truncated")


def test_the_path_form_is_served_too(proxy: ProxyServer, gate: FakeGate) -> None:
    call_echo(proxy)
    with NoHandler(gate, ECHO, 1):
        status, _, _ = proxy.request(
            "GET", f"/studios/{STUDIO}/workspaces/{ECHO}/echo", host="localhost"
        )
    assert status == 200


def test_a_failure_while_answering_cuts_the_connection_and_the_proxy_carries_on(
    proxy: ProxyServer, gate: FakeGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the answer's code must not leave the browser waiting for ever."""
    call_echo(proxy)

    def broken(*args: object) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(fast, "response_headers", broken)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        proxy.request("GET", f"/workspaces/{ECHO}/echo")
    monkeypatch.undo()
    assert call_echo(proxy)["size"] == 0
    # The same while a large body streams (from a coroutine, not the socket's callback).
    monkeypatch.setattr(fast.Exchange, "_head_bytes", broken)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        proxy.request("GET", f"/workspaces/{ECHO}/download?size={3 << 20}")
    monkeypatch.undo()
    assert call_echo(proxy)["size"] == 0


def test_the_fast_path_can_be_switched_off(gate: FakeGate) -> None:
    """``proxy_fast_path: false`` (``ProxyOptions.fast_path``): every request takes the handler."""

    def fast_rules(options: ProxyOptions) -> int:
        proxy = WorkspaceProxy(gate, studio_domain=DOMAIN, options=options)
        rules = list(proxy.rules())
        for rule in proxy.rules()[:1]:  # the host form's rules, nested
            rules += getattr(rule.target, "rules", rule.target)
        return sum(isinstance(rule.target, fast.FastRoute) for rule in rules)

    assert fast_rules(ProxyOptions()) == 3
    assert fast_rules(ProxyOptions(fast_path=False)) == 0
