"""A small upstream for header and streaming assertions, run as its own process.

Usage: ``python echo_upstream.py`` prints its port on the first line of stdout. Every route
matches by suffix, so any base_url works.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import Awaitable
from typing import Any

from tornado import httpserver, web, websocket
from tornado.http1connection import HTTP1Connection
from tornado.netutil import bind_sockets

STATE: dict[str, Any] = {"close": None, "aborted": 0, "connections": 0}
PATTERN = bytes(range(256)) * 256  # 64 KiB


@web.stream_request_body
class Echo(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def prepare(self) -> None:
        self.size = 0
        self.digest = hashlib.sha256()
        self.slow = "slow" in self.request.arguments
        assert isinstance(self.request.connection, HTTP1Connection)
        self.request.connection.set_max_body_size(1 << 40)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self.size += len(chunk)
        self.digest.update(chunk)
        if self.slow and self.size == len(chunk):
            return asyncio.sleep(1.0)  # back-pressure the sender
        return None

    def _answer(self) -> None:
        assert isinstance(self.request.connection, HTTP1Connection)
        peer = self.request.connection.stream.socket.getpeername()
        self.write(
            {
                "method": self.request.method,
                "uri": self.request.uri,
                "headers": list(self.request.headers.get_all()),
                "size": self.size,
                "sha256": self.digest.hexdigest(),
                "peer_port": peer[1],
            }
        )

    get = post = put = patch = delete = options = head = _answer


class Download(web.RequestHandler):
    async def get(self) -> None:
        size = int(self.get_argument("size"))
        if not self.get_argument("chunked", ""):
            self.set_header("Content-Length", str(size))
        self.set_header("Content-Type", "application/octet-stream")
        sent = 0
        try:
            while sent < size:
                piece = PATTERN[: min(len(PATTERN), size - sent)]
                self.write(piece)
                await self.flush()
                sent += len(piece)
        except Exception:
            STATE["aborted"] += 1
            raise


class Status(web.RequestHandler):
    def get(self, code: str) -> None:
        self.set_status(int(code))
        self.set_header("X-Upstream", "yes")
        self.finish(f"status {code}" if code not in ("204", "304") else None)


class Html(web.RequestHandler):
    def get(self) -> None:
        token = self.request.headers["Authorization"].split()[-1]
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(f'<html><script>{{"baseUrl": "/x/", "token": "{token}"}}</script></html>')

    head = get


class Cookies(web.RequestHandler):
    def get(self) -> None:
        self.add_header("Set-Cookie", "emustudio-session=evil; Path=/")
        self.add_header("Set-Cookie", "other=1; Path=/")
        self.set_header("Keep-Alive", "timeout=5")
        self.finish("ok")


class Chunks(web.RequestHandler):
    async def get(self) -> None:
        for piece in ("a", "b", "c"):
            self.write(piece)
            await self.flush()


class CloseAfter(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Connection", "close")
        self.finish("bye")


class LongPoll(web.RequestHandler):
    async def get(self) -> None:
        self.gone = False
        for _ in range(100):
            await asyncio.sleep(0.05)
            if self.gone:
                STATE["aborted"] += 1
                return
        self.finish("late")

    def on_connection_close(self) -> None:
        self.gone = True


class State(web.RequestHandler):
    def get(self) -> None:
        self.finish(json.dumps(STATE))


class EchoSocket(websocket.WebSocketHandler):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0] if subprotocols else None

    def open(self) -> None:
        STATE["ws_headers"] = list(self.request.headers.get_all())

    async def on_message(self, message: str | bytes) -> None:
        if message == "flood":
            STATE["flooded"] = 0
            for i in range(160):  # 40 MiB, as fast as the proxy takes it
                await self.write_message(bytes([i]) * (256 << 10), binary=True)
                STATE["flooded"] += 1
            return
        if message == "stall":
            await asyncio.sleep(1.5)  # stop reading: the proxy must stop reading the browser
            return
        if isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            self.close(int(code), reason)
            return
        await self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        STATE["close"] = [self.close_code, self.close_reason]


def main() -> None:
    app = web.Application(
        [
            (r".*/echo", Echo),
            (r".*/download", Download),
            (r".*/status/(\d+)", Status),
            (r".*/page", Html),
            (r".*/cookies", Cookies),
            (r".*/chunks", Chunks),
            (r".*/close-after", CloseAfter),
            (r".*/long-poll", LongPoll),
            (r".*/state", State),
            (r".*/ws", EchoSocket),
        ]
    )

    async def serve() -> None:
        sockets = bind_sockets(0, "127.0.0.1")
        # Short idle timeout: the proxy's stale-connection check gets exercised. Tornado also
        # uses it as the deadline for a new connection's request head, so it must outlast a
        # busy CI machine's scheduling stalls (0.3 s did not).
        server = httpserver.HTTPServer(app, idle_connection_timeout=float(sys.argv[1]))
        server.add_sockets(sockets)
        print(sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
