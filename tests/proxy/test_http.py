"""The HTTP leg, against the echo upstream: headers, methods, streaming, failures."""

from __future__ import annotations

import ctypes
import gc
import hashlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from emustudio.proxy import Upstream
from tests.proxy.conftest import (
    DOWN,
    ECHO,
    RAW,
    REDIRECTED,
    REFUSED,
    STUDIO,
    FakeGate,
    ProxyServer,
    echo_state,
)

MB = 1 << 20
BIG = 50 * MB
PATTERN = bytes(range(256)) * 256


def call_echo(proxy: ProxyServer, method: str = "GET", path: str = "echo", **kw: Any) -> Any:
    status, _, body = proxy.request(method, f"/workspaces/{ECHO}/{path}", **kw)
    assert status == 200, body
    return json.loads(body)


def headers_of(answer: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in answer["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def test_request_headers_are_rewritten(proxy: ProxyServer, echo: Upstream) -> None:
    answer = call_echo(
        proxy,
        headers={
            "Cookie": "a=1; emustudio-session=secret; b=2",
            "Authorization": "Bearer browser",
            "X-Forwarded-For": "6.6.6.6",
            "Connection": "keep-alive, X-Private",
            "X-Private": "hop",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic x",
            "X-Custom": "kept",
        },
    )
    seen = headers_of(answer)
    assert seen["authorization"] == [f"token {echo.token}"]
    assert seen["cookie"] == ["a=1; b=2"]
    assert seen["host"] == [echo.netloc]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-host"] == [proxy.studio_host]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-custom"] == ["kept"]
    for hop in ("x-private", "keep-alive", "proxy-authorization", "connection"):
        assert hop not in seen


def test_session_cookie_alone_leaves_no_cookie_header(proxy: ProxyServer) -> None:
    seen = headers_of(call_echo(proxy, headers={"Cookie": "emustudio-session=secret"}))
    assert "cookie" not in seen


def test_response_headers_drop_hop_by_hop_and_session_cookie(proxy: ProxyServer) -> None:
    status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/cookies")
    assert (status, body) == (200, b"ok")
    assert headers.get_all("Set-Cookie") == ["other=1; Path=/"]
    assert headers["Keep-Alive"] is None
    assert headers["Server"].startswith("TornadoServer")  # the upstream's, passed through


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_and_bodies(proxy: ProxyServer, method: str) -> None:
    body = b"x" * 1000
    answer = call_echo(
        proxy, method, "echo?q=1", body=body, headers={"Origin": f"http://{proxy.studio_host}"}
    )
    assert answer["method"] == method
    assert answer["uri"] == f"/workspaces/{ECHO}/echo?q=1"
    assert answer["size"] == len(body)
    assert answer["sha256"] == hashlib.sha256(body).hexdigest()


def test_head(proxy: ProxyServer) -> None:
    _, _, get_body = proxy.request("GET", f"/workspaces/{ECHO}/page")
    status, headers, body = proxy.request("HEAD", f"/workspaces/{ECHO}/echo")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 100
    # HTML is not scrubbed for HEAD: the upstream's length stands.
    status, headers, body = proxy.request("HEAD", f"/workspaces/{ECHO}/page")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > len(get_body)


def test_bodyless_post(proxy: ProxyServer) -> None:
    answer = call_echo(proxy, "POST")
    assert answer["size"] == 0
    assert headers_of(answer)["content-length"] == ["0"]


def test_chunked_upload_and_chunked_download(proxy: ProxyServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    pieces = [b"abc", b"defg" * 1000, b"h"]
    conn.request(
        "POST",
        f"/workspaces/{ECHO}/echo",
        body=iter(pieces),
        headers={"Host": proxy.studio_host},
        encode_chunked=True,
    )
    answer = json.loads(conn.getresponse().read())
    assert answer["size"] == sum(map(len, pieces))
    assert answer["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    conn.request("GET", f"/workspaces/{ECHO}/chunks", headers={"Host": proxy.studio_host})
    response = conn.getresponse()
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.read() == b"abc"
    conn.close()


@pytest.mark.parametrize("code", [201, 204, 304, 403, 404, 500, 503])
def test_upstream_status_passes_through(proxy: ProxyServer, code: int) -> None:
    status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/status/{code}")
    assert status == code
    assert headers["X-Upstream"] == "yes"
    if code not in (204, 304):
        assert body == f"status {code}".encode()


def test_keep_alive_reuses_upstream_connections(proxy: ProxyServer) -> None:
    ports = {call_echo(proxy)["peer_port"] for _ in range(5)}
    assert len(ports) == 1


def test_a_connection_the_upstream_closed_is_not_reused(proxy: ProxyServer) -> None:
    first = call_echo(proxy)["peer_port"]
    time.sleep(1.4)  # the echo upstream closes connections idle for 1 s
    assert call_echo(proxy)["peer_port"] != first
    status, _, body = proxy.request("GET", f"/workspaces/{ECHO}/close-after")
    assert (status, body) == (200, b"bye")
    assert call_echo(proxy)["size"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("close-delimited", b"until the end"),
        ("http10", b"old!"),
        ("interim", b"final"),
        ("chunked-extras", b"abc"),
    ],
)
def test_unusual_but_valid_upstream_answers(proxy: ProxyServer, path: str, body: bytes) -> None:
    status, headers, got = proxy.request("GET", f"/workspaces/{RAW}/{path}")
    assert (status, got) == (200, body)
    assert headers["X-Trailer"] is None


@pytest.mark.parametrize("path", ["garbage", "hangup"])
def test_broken_upstream_answers_are_502(proxy: ProxyServer, path: str) -> None:
    status, _, _ = proxy.request("GET", f"/workspaces/{RAW}/{path}")
    assert status == 502


def test_truncated_upstream_body_cuts_the_browser_connection(proxy: ProxyServer) -> None:
    with pytest.raises(http.client.IncompleteRead):
        proxy.request("GET", f"/workspaces/{RAW}/truncated")


def test_http10_browser(proxy: ProxyServer) -> None:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(f"GET /workspaces/{ECHO}/chunks HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    data = b""
    while piece := sock.recv(65536):
        data += piece
    sock.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"\r\n\r\nabc")  # no chunked framing for a 1.0 client


def test_unreachable_upstream_is_502(proxy: ProxyServer) -> None:
    status, headers, body = proxy.request("GET", f"/workspaces/{DOWN}/api/contents")
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    assert "did not answer" in json.loads(body)["message"]
    status, headers, body = proxy.request("PUT", f"/workspaces/{DOWN}/lab", body=b"x" * 100)
    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert b"502" in body


def assert_untouched(recorder: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        recorder.accept()


def test_refused_requests_never_reach_the_upstream(
    proxy: ProxyServer, gate: FakeGate, recorder: socket.socket
) -> None:
    status, _, _ = proxy.request("GET", f"/workspaces/{REFUSED}/api/contents")
    assert status == 403
    status, _, _ = proxy.request("POST", f"/workspaces/{REFUSED}/api/contents", body=b"{}")
    assert status == 403
    status, headers, _ = proxy.request("GET", f"/workspaces/{REDIRECTED}/lab")
    assert (status, headers["Location"]) == (302, "/signin")
    assert_untouched(recorder)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://es-ttttttttttttttttttttttttt.emrstudio.localhost"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.emrstudio.localhost"},
    ],
)
def test_cross_origin_writes_are_refused_before_the_gate(
    proxy: ProxyServer, gate: FakeGate, headers: dict[str, str]
) -> None:
    before = len(gate.opened)
    status, _, _ = proxy.request("POST", f"/workspaces/{ECHO}/echo", body=b"{}", headers=headers)
    assert status == 403
    assert len(gate.opened) == before


def test_same_origin_and_non_browser_writes_pass(proxy: ProxyServer) -> None:
    for headers in (
        {"Origin": f"http://{proxy.studio_host}"},
        {"Sec-Fetch-Site": "same-origin", "Origin": f"http://{proxy.studio_host}"},
        {},
    ):
        assert call_echo(proxy, "POST", body=b"{}", headers=headers)["size"] == 2


def test_cross_origin_reads_pass(proxy: ProxyServer) -> None:
    # A cross-site page cannot read the answer (no CORS); a GET changes nothing.
    call_echo(proxy, headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})


def test_touch_per_request(proxy: ProxyServer, gate: FakeGate) -> None:
    before = gate.touches[ECHO]
    for _ in range(3):
        call_echo(proxy)
    assert gate.touches[ECHO] == before + 3


def test_token_is_scrubbed_from_html(proxy: ProxyServer, echo: Upstream) -> None:
    status, headers, body = proxy.request("GET", f"/workspaces/{ECHO}/page")
    assert status == 200
    assert echo.token.encode() not in body
    assert b'"token": ""' in body
    assert headers["Content-Length"] == str(len(body))


def test_missing_trailing_slash_redirects(proxy: ProxyServer, gate: FakeGate) -> None:
    status, headers, _ = proxy.request("GET", f"/workspaces/{ECHO}?x=1")
    assert (status, headers["Location"]) == (302, f"/workspaces/{ECHO}/?x=1")
    status, headers, _ = proxy.request("GET", f"/studios/{STUDIO}/workspaces/{ECHO}")
    assert (status, headers["Location"]) == (302, f"/studios/{STUDIO}/workspaces/{ECHO}/")


# --- streaming -------------------------------------------------------------------------------


class PeakRss:
    """Samples this process's RSS (the proxy runs in it) every 5 ms."""

    def __init__(self) -> None:
        # Give freed heap back to the system first, or a test after another big one could
        # reuse the pages that test left and show no growth at all.
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def growth(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak - self.base


def slow_pieces(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = PATTERN[: min(len(PATTERN), total - sent)]
        yield piece
        sent += len(piece)


def test_50mb_upload_streams_against_a_slow_upstream(proxy: ProxyServer) -> None:
    """The upstream waits a second before reading: the proxy must not soak up the body."""
    expected = hashlib.sha256()
    for piece in slow_pieces(BIG):
        expected.update(piece)
    rss = PeakRss()
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    conn.request(
        "PUT",
        f"/workspaces/{ECHO}/echo?slow=1",
        body=slow_pieces(BIG),
        headers={"Host": proxy.studio_host, "Content-Length": str(BIG)},
    )
    answer = json.loads(conn.getresponse().read())
    conn.close()
    growth = rss.growth()
    assert answer["size"] == BIG
    assert answer["sha256"] == expected.hexdigest()
    assert growth < 12 * MB, f"RSS grew {growth / MB:.1f} MB for a {BIG // MB} MB upload"


@pytest.mark.parametrize("chunked", [False, True])
def test_50mb_download_streams_to_a_slow_client(proxy: ProxyServer, chunked: bool) -> None:
    """The client pauses after the first piece: the proxy must stop reading the upstream."""
    rss = PeakRss()
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    query = f"size={BIG}" + ("&chunked=1" if chunked else "")
    conn.request("GET", f"/workspaces/{ECHO}/download?{query}", headers={"Host": proxy.studio_host})
    response = conn.getresponse()
    assert response.status == 200
    assert response.headers["Content-Length"] == (None if chunked else str(BIG))
    digest = hashlib.sha256(response.read(len(PATTERN)))
    time.sleep(1.0)
    received = len(PATTERN)
    while piece := response.read(1 << 16):
        digest.update(piece)
        received += len(piece)
    conn.close()
    growth = rss.growth()
    expected = hashlib.sha256()
    for piece in slow_pieces(BIG):
        expected.update(piece)
    assert received == BIG
    assert digest.hexdigest() == expected.hexdigest()
    assert growth < 12 * MB, f"RSS grew {growth / MB:.1f} MB for a {BIG // MB} MB download"


def test_client_leaving_stops_the_upstream(proxy: ProxyServer, echo: Upstream) -> None:
    before = echo_state(echo)["aborted"]
    for path in (f"download?size={BIG}", "long-poll"):
        sock = socket.create_connection(("127.0.0.1", proxy.port))
        sock.sendall(
            f"GET /workspaces/{ECHO}/{path} HTTP/1.1\r\nHost: {proxy.studio_host}\r\n\r\n".encode()
        )
        if path.startswith("download"):
            sock.recv(1 << 16)
        time.sleep(0.2)
        sock.close()
    deadline = time.monotonic() + 5
    while echo_state(echo)["aborted"] < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert echo_state(echo)["aborted"] == before + 2
    assert call_echo(proxy)["size"] == 0  # and the proxy carries on
