"""A lean HTTP/1.1 client for the upstream leg, with keep-alive and flow control.

Tornado's own client side (``simple_httpclient``, or ``HTTP1Connection`` with ``HTTPHeaders``)
costs more CPU per request than the whole budget of a proxy, and ``simple_httpclient`` opens a
connection per request and cannot push back on a slow reader. Here one `asyncio.Protocol` per
connection parses the response head in a single pass and hands the body on in pieces, pausing
the socket while a piece waits for the browser. Idle connections stay in a `Pool`; the event
loop keeps reading them, so one the upstream closed is known closed before it is reused.

The upstream is always a Tornado server (jupyter_server), which writes CRLF line ends.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

_MAX_HEAD = 64 << 10
_HIGH_WATER = 256 << 10  # stop reading the socket above this much unread
_NO_BODY = frozenset({204, 304})


class UpstreamClosed(ConnectionError):
    """The upstream connection closed (or broke the protocol) before the message ended."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    code: int
    reason: str
    headers: list[tuple[str, str]]
    """As received, in order, names in the upstream's spelling."""
    length: int | None
    chunked: bool
    keep_alive: bool
    connection: frozenset[str]
    """The lower-cased tokens of the Connection header: names of more hop-by-hop headers."""


def parse_head(data: str) -> ResponseHead:
    lines = data.split("\r\n")
    version, _, status = lines[0].partition(" ")
    code_text, _, reason = status.partition(" ")
    if not version.startswith("HTTP/1.") or len(code_text) != 3 or not code_text.isdigit():
        raise UpstreamClosed(f"malformed status line {lines[0]!r}")
    headers: list[tuple[str, str]] = []
    length: int | None = None
    chunked = False
    connection: frozenset[str] = frozenset()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name[-1] in " \t":
            raise UpstreamClosed(f"malformed header line {line!r}")
        value = value.strip(" \t")
        headers.append((name, value))
        lowered = name.lower()
        if lowered == "content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise UpstreamClosed(f"bad Content-Length {value!r}")
            length = int(value)
        elif lowered == "transfer-encoding":
            chunked = value.lower().rsplit(",", 1)[-1].strip() == "chunked"
        elif lowered == "connection":
            connection = frozenset(t.strip().lower() for t in value.split(","))
    keep_alive = version == "HTTP/1.1" and "close" not in connection
    return ResponseHead(int(code_text), reason, headers, length, chunked, keep_alive, connection)


Deliver = Callable[[bytes, bool], Awaitable[None] | None]
"""Takes a body piece and whether it is the last; may return an awaitable to push back."""


class Connection(asyncio.Protocol):
    """One TCP connection to an upstream, carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.idle_since = 0.0
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self.listener: Callable[[], None] | None = None
        """Called, instead of waking a coroutine, when bytes or the end arrive (`fast`): the
        response is then handled within the socket's own callback. It reads no more than it
        needs, so the buffer is never paused meanwhile."""

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not an isinstance check: uvloop's are not asyncio.Transport's.
        self.transport = transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Requests and small responses must leave at once, not wait for an ACK (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.listener is not None:
            self.listener()
            return
        if len(self.buffer) > _HIGH_WATER:
            self.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake_reader()
        self._writing_paused = False
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def _wake_reader(self) -> None:
        if self.listener is not None:
            self.listener()
        elif self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    # --- use ---

    @property
    def reusable(self) -> bool:
        transport = self.transport
        return (
            not self.eof
            and not self.buffer
            and transport is not None
            and not transport.is_closing()
        )

    def write(self, data: bytes) -> Awaitable[None] | None:
        """Send ``data``; returns an awaitable when the socket is backed up."""
        if self.transport is None or self.eof or self.transport.is_closing():
            raise UpstreamClosed("connection closed")
        self.transport.write(data)
        return self._drain() if self._writing_paused else None

    async def _drain(self) -> None:
        while self._writing_paused:
            self._writer = asyncio.get_running_loop().create_future()
            await self._writer
        if self.eof:
            raise UpstreamClosed("connection closed")

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.eof = True
        if self.transport is not None:
            self.transport.close()
        self._wake_reader()

    async def _fill(self) -> None:
        """Wait for more bytes; raises `UpstreamClosed` at end of stream."""
        if self.eof:
            raise UpstreamClosed("connection closed")
        self.resume_reading()
        self._reader = asyncio.get_running_loop().create_future()
        await self._reader
        if self.eof and not self.buffer:
            raise UpstreamClosed("connection closed")

    def _take(self, size: int) -> bytes:
        piece = bytes(self.buffer[:size])
        del self.buffer[:size]
        return piece

    async def read_head(self) -> ResponseHead:
        """The next final response head: interim ones (100 Continue, 103 Early Hints) are
        skipped; 101 Switching Protocols is final."""
        while (head := self.buffered_head()) is None:
            await self._fill()
        return head

    def buffered_head(self) -> ResponseHead | None:
        """`read_head` from what is buffered: None while the head is not all there."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    raise UpstreamClosed("response head too large")
                return None
            head = parse_head(self._take(end + 4)[:-4].decode("latin1"))
            if head.code == 101 or not 100 <= head.code < 200:
                return head

    def take(self, size: int) -> bytes:
        """Up to ``size`` buffered bytes, taken out of the buffer."""
        return self._take(size)

    async def read_body(self, head: ResponseHead, method: str, deliver: Deliver) -> bool:
        """Pass the body of ``head`` to ``deliver``; True if the connection may be reused."""
        if method == "HEAD" or head.code in _NO_BODY:
            return head.keep_alive
        if head.chunked:
            await self._read_chunked(deliver)
        elif head.length is not None:
            await self._read_fixed(head.length, deliver)
        else:
            await self._read_until_close(deliver)
            return False
        return head.keep_alive

    async def _read_fixed(self, remaining: int, deliver: Deliver) -> None:
        if remaining == 0:
            await _call(deliver, b"", True)
        while remaining:
            if not self.buffer:
                await self._fill()
            piece = self._take(remaining)
            remaining -= len(piece)
            await _call(deliver, piece, remaining == 0)

    async def _read_chunked(self, deliver: Deliver) -> None:
        while True:
            end = self.buffer.find(b"\r\n")
            while end < 0:
                if len(self.buffer) > 1024:
                    raise UpstreamClosed("bad chunk size line")
                await self._fill()
                end = self.buffer.find(b"\r\n")
            size_text = self._take(end + 2)[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise UpstreamClosed(f"bad chunk size {size_text!r}") from None
            if size == 0:
                break
            remaining = size
            while remaining:
                if not self.buffer:
                    await self._fill()
                piece = self._take(remaining)
                remaining -= len(piece)
                await _call(deliver, piece, False)
            while len(self.buffer) < 2:
                await self._fill()
            if self._take(2) != b"\r\n":
                raise UpstreamClosed("chunk not followed by CRLF")
        # Trailers, then the blank line that ends the message; trailers are dropped.
        while True:
            end = self.buffer.find(b"\r\n")
            while end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    raise UpstreamClosed("trailers too large")
                await self._fill()
                end = self.buffer.find(b"\r\n")
            if not self._take(end + 2)[:-2]:
                break
        await _call(deliver, b"", True)

    async def _read_until_close(self, deliver: Deliver) -> None:
        while True:
            if self.buffer:
                await _call(deliver, self._take(len(self.buffer)), False)
            try:
                await self._fill()
            except UpstreamClosed:
                break
        await _call(deliver, b"", True)


async def _call(deliver: Deliver, piece: bytes, last: bool) -> None:
    pending = deliver(piece, last)
    if pending is not None:
        await pending


class Pool:
    """Idle keep-alive connections, per upstream address."""

    def __init__(self, *, connect_timeout: float, max_idle: int, idle_seconds: float) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._last_sweep = time.monotonic()

    def checkout(self, host: str, port: int) -> Connection | None:
        idle = self._idle.get((host, port))
        if not idle:
            return None
        oldest = time.monotonic() - self.idle_seconds
        while idle:
            conn = idle.pop()
            if conn.idle_since >= oldest and conn.reusable:
                return conn
            conn.close()
        return None

    async def connect(self, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(Connection, host, port), self.connect_timeout
        )
        return conn

    def checkin(self, host: str, port: int, conn: Connection) -> None:
        now = time.monotonic()
        if now - self._last_sweep > self.idle_seconds:
            self._sweep(now)
        idle = self._idle.setdefault((host, port), [])
        if not conn.reusable or len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)

    def _sweep(self, now: float) -> None:
        """Close connections idle too long, such as those to Workspaces that have stopped."""
        self._last_sweep = now
        oldest = now - self.idle_seconds
        for key, idle in list(self._idle.items()):
            keep = [c for c in idle if c.idle_since >= oldest and c.reusable]
            for conn in idle:
                if conn not in keep:
                    conn.close()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
