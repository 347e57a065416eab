"""WebSocket: after the upgrade, the proxy is a byte tunnel between the two sockets.

The handshake goes upstream as an HTTP request (with the browser's own ``Sec-WebSocket-*``
headers, the token, without the session cookie). If the upstream refuses, the browser gets that
refusal as a normal response; if it answers ``101``, that answer goes back to the browser and
from then on bytes pass unchanged both ways. The browser's frames are masked client frames and
the upstream's are unmasked server frames, exactly what the other side expects, and the proxy
negotiates nothing itself, so:

- subprotocols and extensions are agreed end to end, and every frame, text or binary, goes
  through in order and untouched;
- close frames, with their codes and reasons, and ping/pong cross unchanged, so each end sees
  the other's; when one TCP side ends, the other is closed once its pending bytes are out;
- no frame is parsed and no task or future is made per message: both sockets are plain
  `asyncio` transports, and a message costs one read and one write.

Backpressure: when one side's socket is backed up, the other side's socket stops being read
(`asyncio.Protocol.pause_writing`), so a side that does not read stops the other.

Both sockets get TCP_NODELAY: Nagle's algorithm holds a small write until the previous one is
ACKed, and the peer delays that ACK up to 40 ms; kernel messages are small writes in bursts.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import cast

from tornado.iostream import IOStream

from emustudio.proxy.upstream import Connection


class _Side(asyncio.Protocol):
    """One socket of a tunnel: what it receives, the other side's socket sends."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not an isinstance check: uvloop's are not asyncio.Transport's.
        self.transport = transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.tunnel.on_traffic()
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)

    def eof_received(self) -> bool:
        return False  # close this side; connection_lost then closes the other

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()  # once it has sent what it still holds
        self.tunnel.side_lost()

    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.resume_reading()


class Tunnel:
    """Joins the browser's socket (handed over by Tornado) and an upstream connection."""

    def __init__(
        self, browser: IOStream, upstream: Connection, on_traffic: Callable[[], None]
    ) -> None:
        self.browser_stream = browser
        self.upstream = upstream
        self.on_traffic = on_traffic
        self.browser = _Side(self)
        self.up = _Side(self)
        self.browser.peer, self.up.peer = self.up, self.browser
        self._done: asyncio.Future[None] | None = None

    async def run(self, head: bytes) -> None:
        """Send ``head`` (the ``101`` answer) to the browser, then pass bytes both ways until
        both sides have closed."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        stream, upstream = self.browser_stream, self.upstream
        # Tornado's stream has read only the handshake (a client sends no frame before the
        # 101), but keep anything it holds rather than lose it. Tornado has no public way to
        # hand over the bytes an IOStream read ahead, so this reads its own buffer: the
        # version range is pinned in pyproject.toml (tornado <6.7) and
        # tests/proxy/test_tornado_internals.py fails first should a release rename it.
        early = bytes(stream._read_buffer[: stream._read_buffer_size])
        # Move the browser's socket from Tornado's stream to an asyncio transport: a duplicate
        # descriptor keeps the connection open while the stream lets go of its own.
        try:
            sock = socket.socket(fileno=os.dup(stream.socket.fileno()))
        except OSError:
            stream.close()
            upstream.close()
            return
        stream.close()
        try:
            await loop.connect_accepted_socket(lambda: self.browser, sock)
        except OSError:
            sock.close()
            upstream.close()
            return
        browser_transport, upstream_transport = self.browser.transport, upstream.transport
        if browser_transport is None or upstream_transport is None or upstream.eof:
            self.close()
            return
        # What the upstream sent after its 101 is already in the connection's buffer; from the
        # next byte on, the tunnel's protocol receives it.
        browser_transport.write(head + bytes(upstream.buffer))
        upstream.buffer.clear()
        if early:
            upstream_transport.write(early)
        self.up.connection_made(upstream_transport)
        upstream_transport.set_protocol(self.up)
        upstream_transport.resume_reading()
        if self.browser.lost:
            upstream_transport.close()
        await self._done

    def side_lost(self) -> None:
        done = self._done
        if self.browser.lost and self.up.lost and done is not None and not done.done():
            done.set_result(None)

    def close(self) -> None:
        """End the tunnel now (on shutdown)."""
        for side in (self.browser, self.up):
            if side.transport is not None:
                side.transport.abort()
        self.upstream.close()
        done = self._done
        if done is not None and not done.done():
            done.set_result(None)
