"""Transport-neutral HTTP request and response values used by the wire layer.

The Tornado handler converts to and from these, so the protocol code never sees Tornado.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit


class BodyStream:
    """A request body arriving in pieces: the handler feeds it, one reader consumes it.

    At most ``depth`` pieces wait in between, so a slow reader slows the sender (the handler
    awaits :meth:`feed`) instead of the gateway buffering the body. :meth:`fail` says the
    sender went away before the end; the reader then gets :class:`BodyTruncated`.
    :meth:`discard` is for a reader that stops early (a refused request): what still comes is
    dropped.
    """

    _END = b""

    def __init__(self, length: int | None, depth: int = 4) -> None:
        self.length = length
        self.received = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(depth)
        self._discarding = False

    async def feed(self, chunk: bytes) -> None:
        if self._discarding or not chunk:
            return
        self.received += len(chunk)
        await self._queue.put(chunk)

    async def end(self) -> None:
        if not self._discarding:
            await self._queue.put(self._END)

    def fail(self) -> None:
        """The sender is gone; wake the reader (never blocks: makes room if need be)."""
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def discard(self) -> None:
        self._discarding = True
        while not self._queue.empty():
            self._queue.get_nowait()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                raise BodyTruncated()
            if chunk is self._END or chunk == b"":
                return
            yield chunk


class HeldBody(BodyStream):
    """A small body taken whole before its reader starts: the pieces are kept in a list and
    handed over as one (no queue, no hand-over per piece). Its reader runs only once
    :meth:`end` was called; one that runs earlier, or after :meth:`fail`, gets
    :class:`BodyTruncated` after what came."""

    def __init__(self, length: int | None, whole: bytes | None = None) -> None:
        # No super(): no queue to make. ``whole``: the body already in, ended.
        self.length = length
        self.received = len(whole) if whole else 0
        self._pieces: list[bytes] = [whole] if whole else []
        self._discarding = False
        self._state = "ended" if whole is not None else "open"  # open | ended | failed

    async def feed(self, chunk: bytes) -> None:
        if self._discarding or not chunk:
            return
        self.received += len(chunk)
        self._pieces.append(chunk)

    async def end(self) -> None:
        if self._state == "open":
            self._state = "ended"

    def fail(self) -> None:
        self._state = "failed"

    def discard(self) -> None:
        self._discarding = True
        self._pieces.clear()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pieces = self._pieces
        if pieces:
            yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self._state != "ended":
            raise BodyTruncated()


class BodyTruncated(Exception):
    """The request body ended before its declared length (the client went away)."""


@dataclass(frozen=True)
class HttpRequest:
    """One incoming request as the wire sees it.

    ``headers`` keys are lower-cased. ``path`` is the raw path without the query string;
    ``query`` is the parsed query string (every value a list, blank values kept).
    ``remote_ip`` is the peer's address (CloudTrail's ``sourceIPAddress``).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    query: dict[str, list[str]] = field(default_factory=dict)
    raw_query: str = ""
    host: str = "localhost"
    remote_ip: str = "127.0.0.1"
    # A body still arriving (S3 object uploads); ``body`` is then empty.
    stream: BodyStream | None = None
    # S3's virtual-hosted addressing: the bucket named by the Host, ``path`` then the key's.
    virtual_bucket: str | None = None

    @property
    def path_style(self) -> str:
        """``/<bucket>/<key>`` whichever way the request addressed the bucket (S3)."""
        if self.virtual_bucket is None:
            return self.path
        return f"/{quote(self.virtual_bucket, safe='')}{self.path}"

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes = b"",
        remote_ip: str = "127.0.0.1",
        stream: BodyStream | None = None,
        virtual_bucket: str | None = None,
        lowered: bool = False,
    ) -> HttpRequest:
        """Make a request from a URL (path and query) and headers in any case (``lowered``:
        their names are lower case already)."""
        parts = urlsplit(url)
        if not lowered:
            headers = {k.lower(): v for k, v in headers.items()}
        return cls(
            method=method.upper(),
            path=parts.path or "/",
            headers=headers,
            body=body,
            query=parse_qs(parts.query, keep_blank_values=True),
            raw_query=parts.query,
            host=headers.get("host", parts.netloc or "localhost"),
            remote_ip=remote_ip,
            stream=stream,
            virtual_bucket=virtual_bucket,
        )

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class HttpResponse:
    """What the wire sends back."""

    status: int
    headers: dict[str, str]
    body: bytes
    # A body sent as it is produced (S3 object downloads); ``body`` is then empty.
    stream: AsyncIterator[bytes] | None = None
