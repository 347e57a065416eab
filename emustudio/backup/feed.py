"""One Workspace's change feed, followed from the gateway (``<base_url>emustudio/events``).

The gateway opens the WebSocket (it is the Studio's ENI: nothing in a Workspace connects out),
with the token in the Authorization header, and keeps it open while the Workspace runs: if it
drops, it is opened again, from where it stopped (``epoch`` and ``since``), so the server
replays what came in between.  Each change is handed to ``on_change`` and counted as received
only once that returns (the backup journals it, with the cursor, in one transaction); when the
server cannot replay (it restarted, or more changed than it keeps), ``on_gap`` is called and
the backup compares the files themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from emustudio.backup.contents import WorkspaceServer

__all__ = ["Subscription"]

log = logging.getLogger(__name__)

_MAX_BACKOFF = 5.0


class Subscription:
    def __init__(
        self,
        editor_id: str,
        *,
        server: Callable[[], Awaitable[WorkspaceServer | None]],
        on_change: Callable[[dict[str, Any], tuple[str, int]], Awaitable[None]],
        on_gap: Callable[[], None],
        cursor: tuple[str, int] | None = None,
    ) -> None:
        self.editor_id = editor_id
        self.server = server
        self.on_change = on_change
        self.on_gap = on_gap
        self.cursor = cursor
        self.connected = asyncio.Event()
        self.connections = 0
        self.task: asyncio.Task[None] | None = None
        self.conn: WebSocketClientConnection | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"backup feed {self.editor_id}")

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            server = await self.server()
            if server is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            url = server.ws_url
            if self.cursor is not None:
                url += "?" + urlencode({"epoch": self.cursor[0], "since": self.cursor[1]})
            try:
                self.conn = await websocket_connect(
                    HTTPRequest(url, headers=server.headers, connect_timeout=5, request_timeout=10),
                    ping_interval=10,
                    ping_timeout=10,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("feed of %s: cannot connect: %s", self.editor_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            self.connections += 1
            backoff = 0.1
            try:
                await self._read(self.conn)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("feed of %s failed; reconnecting", self.editor_id)
            finally:
                self.connected.clear()
                self.conn.close()
                self.conn = None
            await asyncio.sleep(backoff)

    async def _read(self, conn: WebSocketClientConnection) -> None:
        while (message := await conn.read_message()) is not None:
            data = json.loads(message)
            kind = data.get("type")
            if kind == "hello":
                epoch, seq = str(data["epoch"]), int(data["seq"])
                # Another epoch: the server restarted, numbering afresh; it says "gap" next.
                if self.cursor is None or self.cursor[0] != epoch:
                    self.cursor = (epoch, seq)
                self.connected.set()
            elif kind == "gap":
                self.on_gap()
            elif kind == "change" and self.cursor is not None:
                cursor = (self.cursor[0], int(data["seq"]))
                await self.on_change(data, cursor)
                self.cursor = cursor

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
