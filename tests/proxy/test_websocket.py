"""The WebSocket leg, against the echo upstream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tornado import httpclient, websocket

from emustudio.proxy import Upstream
from tests.proxy.conftest import DOWN, ECHO, REFUSED, FakeGate, ProxyServer, echo_state


def connect(
    proxy: ProxyServer,
    path: str = f"/workspaces/{ECHO}/ws",
    *,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> Awaitable[websocket.WebSocketClientConnection]:
    request = httpclient.HTTPRequest(
        f"ws://127.0.0.1:{proxy.port}{path}",
        headers={"Host": proxy.studio_host, **(headers or {})},
    )
    return websocket.websocket_connect(request, subprotocols=subprotocols)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def test_text_and_binary_frames_keep_their_order(proxy: ProxyServer) -> None:
    async def test() -> None:
        ws = await connect(proxy)
        messages: list[str | bytes] = [
            f"m{i}" if i % 2 else f"m{i}".encode() * 100 for i in range(200)
        ]
        for message in messages:
            ws.write_message(message, binary=isinstance(message, bytes))
        assert [await ws.read_message() for _ in messages] == messages
        big = bytes(range(256)) * 8192  # 2 MiB in one frame
        await ws.write_message(big, binary=True)
        assert await ws.read_message() == big
        ws.close()

    run(test)


def test_subprotocol_passes_through(proxy: ProxyServer, echo: Upstream) -> None:
    async def test() -> None:
        ws = await connect(proxy, subprotocols=["v1.kernel.websocket.jupyter.org", "other"])
        assert ws.selected_subprotocol == "v1.kernel.websocket.jupyter.org"
        ws.close()
        ws = await connect(proxy)
        assert ws.selected_subprotocol is None
        ws.close()

    run(test)


def test_upstream_close_code_reaches_the_browser(proxy: ProxyServer) -> None:
    async def test() -> None:
        ws = await connect(proxy)
        await ws.write_message("close 4001 kernel restarted")
        assert await ws.read_message() is None
        assert (ws.close_code, ws.close_reason) == (4001, "kernel restarted")

    run(test)


def test_browser_close_code_reaches_the_upstream(proxy: ProxyServer, echo: Upstream) -> None:
    async def test() -> None:
        ws = await connect(proxy)
        ws.close(4002, "tab closed")
        for _ in range(100):
            if echo_state(echo)["close"] == [4002, "tab closed"]:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(echo_state(echo)["close"])

    run(test)


def test_ping_is_answered(proxy: ProxyServer) -> None:
    async def test() -> None:
        ws = await connect(proxy)
        pong: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        setattr(ws, "on_pong", pong.set_result)  # noqa: B010 (an instance hook, for the test)
        ws.ping(b"hello")
        assert await pong == b"hello"
        ws.close()

    run(test)


def test_both_legs_have_nodelay_and_headers_are_rewritten(
    proxy: ProxyServer, gate: FakeGate, echo: Upstream
) -> None:
    async def test() -> None:
        ws = await connect(proxy, headers={"Cookie": "emustudio-session=s; lab=1"})
        await ws.write_message("x")
        await ws.read_message()
        handler: Any = gate.handlers[-1]
        tunnel = handler.tunnel
        for side in (tunnel.browser, tunnel.up):
            sock = side.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        seen = {name.lower(): value for name, value in echo_state(echo)["ws_headers"]}
        assert seen["authorization"] == f"token {echo.token}"
        assert seen["cookie"] == "lab=1"
        assert seen["host"] == echo.netloc
        assert seen["x-forwarded-host"] == proxy.studio_host
        ws.close()

    run(test)


def test_touch_is_throttled(proxy: ProxyServer, gate: FakeGate) -> None:
    async def test() -> None:
        before = gate.touches[ECHO]
        ws = await connect(proxy)
        for i in range(50):
            await ws.write_message(str(i))
            await ws.read_message()
        ws.close()
        assert 1 <= gate.touches[ECHO] - before <= 3

    run(test)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (f"/workspaces/{ECHO}/no-such-socket", {}, 404),  # the upstream's own answer
        (f"/workspaces/{REFUSED}/ws", {}, 403),
        (f"/workspaces/{DOWN}/ws", {}, 502),
        (f"/workspaces/{ECHO}/ws", {"Origin": "http://evil.example"}, 403),
    ],
)
def test_refusals_arrive_as_statuses(
    proxy: ProxyServer, path: str, headers: dict[str, str], status: int
) -> None:
    async def test() -> None:
        with pytest.raises(httpclient.HTTPClientError) as caught:
            await connect(proxy, path, headers=headers)
        assert caught.value.code == status

    run(test)


def test_same_origin_browser_handshake_passes(proxy: ProxyServer) -> None:
    async def test() -> None:
        ws = await connect(
            proxy,
            headers={"Origin": f"http://{proxy.studio_host}", "Sec-Fetch-Site": "same-origin"},
        )
        await ws.write_message("hi")
        assert await ws.read_message() == "hi"
        ws.close()

    run(test)


def test_a_stalled_upstream_stops_the_browser(proxy: ProxyServer) -> None:
    """While the upstream reads nothing, the proxy must stop reading the browser, not
    buffer what it sends."""

    async def test() -> None:
        ws = await connect(proxy)
        await ws.write_message("stall")
        piece = b"x" * (256 << 10)
        total = 160  # 40 MiB
        sent = 0
        deadline = asyncio.get_running_loop().time() + 1.0
        while sent < total:
            try:
                await asyncio.wait_for(
                    ws.write_message(piece, binary=True),
                    deadline - asyncio.get_running_loop().time(),
                )
            except TimeoutError:
                break
            sent += 1
        assert sent < total // 2, f"{sent} of {total} pieces left during the stall"
        ws.close()

    run(test)


def test_a_stalled_browser_stops_the_upstream(proxy: ProxyServer, echo: Upstream) -> None:
    async def test() -> None:
        ws = await connect(proxy)  # Tornado's client reads no frame until asked to
        await ws.write_message("flood")
        await asyncio.sleep(1.0)
        flooded = echo_state(echo)["flooded"]
        assert flooded < 80, f"the upstream wrote {flooded} of 160 pieces to a stalled browser"
        for i in range(160):
            assert await ws.read_message() == bytes([i]) * (256 << 10)
        ws.close()

    run(test)


def test_closing_the_proxy_ends_open_tunnels(proxy: ProxyServer) -> None:
    async def test() -> None:
        ws = await connect(proxy)
        await ws.write_message("hi")
        assert await ws.read_message() == "hi"
        proxy.loop.call_soon_threadsafe(proxy.proxy.close)
        assert await ws.read_message() is None

    run(test)


def test_a_frame_sent_with_the_handshake_is_not_lost(proxy: ProxyServer) -> None:
    """A client may not send frames before the 101; if one does, the tunnel still carries it."""
    payload, mask = b"early", b"\x01\x02\x03\x04"
    frame = bytes([0x81, 0x80 | len(payload)]) + mask
    frame += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(
        f"GET /workspaces/{ECHO}/ws HTTP/1.1\r\nHost: {proxy.studio_host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        + frame
    )
    data = b""
    while not data.endswith(b"\x81\x05early"):
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    assert data.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in data
    sock.close()
