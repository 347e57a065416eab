"""The contents change feed: what the gateway's S3 backup subscribes to.

jupyter_server emits a ``contents_service/v1`` event after every successful contents action
(``event_schemas/contents_service/v1.yaml``: ``action`` in get, create, save, upload, rename,
copy, delete; ``path``; ``source_path`` for rename and copy).  :class:`ChangeFeed` keeps the
ones that change files, numbered from 1 in the order they happened, the last
:data:`KEEP` of them, and hands each to the open subscriptions.

``GET <base_url>emustudio/events`` (:class:`EventsSocket`) is a WebSocket, authenticated like
any Jupyter API (the gateway sends the server's token in the Authorization header).  The
gateway initiates it: it is the Studio's ENI, and a Workspace never needs to reach the host.
Messages, server to client, one JSON object each::

    {"type": "hello", "epoch": "<server run id>", "seq": <last number>}
    {"type": "change", "seq": 12, "action": "save", "path": "a/b.ipynb"}
    {"type": "change", "seq": 13, "action": "rename", "path": "new.ipynb",
     "source_path": "old.ipynb"}
    {"type": "gap"}

A client that reconnects passes ``?epoch=<epoch>&since=<seq>``: when the epoch is this
server's and the feed still holds every change after ``seq``, they are replayed before the
live ones; otherwise a ``gap`` message says some were missed (the client then compares the
files themselves).  Replay and subscription happen in one step of the event loop, so no change
falls between them.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from tornado import web, websocket

# Contents actions that change what a backup must hold ("get" does not).
CHANGE_ACTIONS = frozenset({"save", "upload", "create", "rename", "copy", "delete"})
KEEP = 10_000

Change = dict[str, Any]


class ChangeFeed:
    """Numbered contents changes since this server started; the last ``keep`` of them."""

    def __init__(self, keep: int = KEEP) -> None:
        self.epoch = secrets.token_hex(8)
        self.seq = 0
        self.changes: deque[Change] = deque(maxlen=keep)
        self.subscribers: set[Callable[[Change], None]] = set()

    def record(self, data: dict[str, Any]) -> Change | None:
        """Number and keep a contents event if it changes a file; tell every subscriber."""
        action = data.get("action")
        path = data.get("path")
        if action not in CHANGE_ACTIONS or not isinstance(path, str):
            return None
        self.seq += 1
        change: Change = {"type": "change", "seq": self.seq, "action": action, "path": path}
        if isinstance(data.get("source_path"), str):
            change["source_path"] = data["source_path"]
        self.changes.append(change)
        for send in list(self.subscribers):
            send(change)
        return change

    def since(self, epoch: str | None, seq: int | None) -> list[Change] | None:
        """The changes after ``seq`` of run ``epoch``; None when some are no longer held."""
        if seq is None:
            return []
        if epoch != self.epoch or seq > self.seq:
            return None
        if seq == self.seq:
            return []
        oldest = self.changes[0]["seq"] if self.changes else self.seq + 1
        if seq + 1 < oldest:
            return None
        return [c for c in self.changes if c["seq"] > seq]


FEED = ChangeFeed()


class EventsSocket(JupyterHandler, websocket.WebSocketHandler):  # type: ignore[misc]
    """WebSocket ``<base_url>emustudio/events``: the change feed, replayed then live."""

    auth_resource = "contents"
    _track_activity = False

    def initialize(self, feed: ChangeFeed = FEED) -> None:
        self.feed = feed

    async def pre_get(self) -> None:
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", "contents")
        )
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    def open(self, *args: Any, **kwargs: Any) -> None:
        epoch = self.get_query_argument("epoch", None)
        since_text = self.get_query_argument("since", None)
        since = int(since_text) if since_text and since_text.isdigit() else None
        self.set_nodelay(True)
        self.write_message(
            json.dumps({"type": "hello", "epoch": self.feed.epoch, "seq": self.feed.seq})
        )
        missed = self.feed.since(epoch, since)
        if missed is None:
            self.write_message(json.dumps({"type": "gap"}))
        else:
            for change in missed:
                self.write_message(json.dumps(change))
        self.feed.subscribers.add(self.send)

    def send(self, change: Change) -> None:
        try:
            self.write_message(json.dumps(change))
        except websocket.WebSocketClosedError:
            self.feed.subscribers.discard(self.send)

    def on_message(self, message: str | bytes) -> None:
        """Clients send nothing; anything they send is ignored."""

    def on_close(self) -> None:
        self.feed.subscribers.discard(self.send)
