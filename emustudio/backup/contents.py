"""A Workspace's files, over its JupyterLab's own HTTP API, with the token only the gateway has.

Reads keep the exact bytes on disk: ``GET /api/contents/<path>?type=file&format=base64`` answers
a file's model (size, modification time) with its bytes as stored, a notebook's too (asked for
as a notebook, the contents API would re-serialise it).  Writes go through
``PUT /api/contents/<path>`` as ``{"type": "file", "format": "base64"}``, which stores the bytes
as given, in chunks for large files (jupyter_server's large-file contents manager), so a
restored file is byte-for-byte the one backed up.

A restore sends many files at once instead, as tar archives the Workspace's server extension
unpacks (:meth:`ContentsClient.unpack`).

Every request uses tornado's AsyncHTTPClient (this module's own instance: large bodies, its own
connection limit); base64 of large payloads runs on the backup's thread pool.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from emustudio.backup.blocking import Blocking

__all__ = ["ContentsClient", "Entry", "Unpacked", "Unreachable", "WorkspaceServer"]

CHUNK = 8 * 1024 * 1024
MAX_BODY = 2 * 1024**3
_THREAD_ABOVE = 256 * 1024


class Unreachable(Exception):
    """The Workspace's server did not answer (stopped, moving, its network gone)."""


class NotAFile(Exception):
    """A file was asked for and the path is something else (a directory)."""


@dataclass(frozen=True)
class WorkspaceServer:
    """Where one Workspace's JupyterLab answers: ``endpoint`` is ``ip:port``."""

    editor_id: str
    endpoint: str
    base_url: str
    token: str

    def url(self, path: str) -> str:
        return f"http://{self.endpoint}{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    @property
    def ws_url(self) -> str:
        return self.url("emustudio/events").replace("http://", "ws://", 1)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


@dataclass(frozen=True)
class Entry:
    """A contents model, as much of it as the backup needs."""

    path: str
    type: str  # "file", "notebook" or "directory"
    size: int | None
    last_modified: str | None

    @classmethod
    def of(cls, model: dict[str, Any]) -> Entry:
        return cls(
            str(model["path"]),
            str(model["type"]),
            model.get("size"),
            model.get("last_modified"),
        )


@dataclass(frozen=True)
class Unpacked:
    """What the Workspace did with an archive: the files it wrote (their models), those it
    kept because a newer file was already at their path, names it refused, and the files it
    could not write (``"path: why"``)."""

    files: list[Entry]
    kept: list[str]
    refused: list[str]
    failed: list[str]


def _quote(path: str) -> str:
    return quote(path.strip("/"), safe="/")


class ContentsClient:
    def __init__(
        self, blocking: Blocking, *, max_clients: int = 32, timeout: float = 300.0
    ) -> None:
        self.blocking = blocking
        self.http = AsyncHTTPClient(
            force_instance=True, max_clients=max_clients, max_body_size=MAX_BODY
        )
        self.timeout = timeout

    async def _fetch(
        self,
        server: WorkspaceServer,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        content_type: str = "application/json",
        ok404: bool = False,
    ) -> HTTPResponse | None:
        request = HTTPRequest(
            server.url(path),
            method=method,
            headers={**server.headers, "Content-Type": content_type}
            if body is not None
            else server.headers,
            body=body,
            connect_timeout=5.0,
            request_timeout=self.timeout,
            decompress_response=False,
        )
        try:
            return await self.http.fetch(request)
        except HTTPClientError as exc:
            if exc.code == 599:
                raise Unreachable(f"{server.editor_id}: {exc}") from exc
            if exc.code == 404 and ok404:
                return None
            if exc.code == 400 and exc.response is not None and b"bad type" in exc.response.body:
                raise NotAFile(path) from exc
            detail = exc.response.body[:300].decode(errors="replace") if exc.response else ""
            raise RuntimeError(f"{method} {path} in {server.editor_id}: {exc} {detail}") from exc
        except OSError as exc:
            raise Unreachable(f"{server.editor_id}: {exc}") from exc

    async def stat(self, server: WorkspaceServer, path: str) -> Entry | None:
        """The model of ``path`` without content; None when there is nothing there."""
        response = await self._fetch(server, f"api/contents/{_quote(path)}?content=0", ok404=True)
        if response is None:
            return None
        return Entry.of(json.loads(response.body))

    async def read(self, server: WorkspaceServer, path: str) -> tuple[Entry, bytes | None] | None:
        """The model of ``path`` and, for a file, its bytes as stored; None when it is gone.

        One request: the file model in base64 (``type=file`` keeps a notebook's bytes as they
        are on disk instead of re-serialising it); a directory answers 400 and is looked at
        again without content.
        """
        url = f"api/contents/{_quote(path)}?type=file&format=base64&content=1"
        try:
            response = await self._fetch(server, url, ok404=True)
        except NotAFile:
            entry = await self.stat(server, path)
            return None if entry is None else (entry, None)
        if response is None:
            return None
        body = response.body
        model = (
            json.loads(body)
            if len(body) < _THREAD_ABOVE
            else await self.blocking.run(json.loads, body)
        )
        content = model.get("content") or ""
        data = (
            _decode(content)
            if len(content) < _THREAD_ABOVE
            else await self.blocking.run(_decode, content)
        )
        return Entry.of(model), data

    async def listdir(self, server: WorkspaceServer, path: str) -> list[Entry] | None:
        """The entries of directory ``path``; None when it is gone."""
        response = await self._fetch(
            server, f"api/contents/{_quote(path)}?content=1&type=directory", ok404=True
        )
        if response is None:
            return None
        model = json.loads(response.body)
        return [Entry.of(child) for child in model.get("content") or []]

    async def walk(self, server: WorkspaceServer, path: str = "") -> list[Entry]:
        """Every file under directory ``path``, recursively (hidden ones are not served)."""
        files: list[Entry] = []
        pending = [path]
        while pending:
            batch, pending = pending[:16], pending[16:]
            listings = await asyncio.gather(*(self.listdir(server, d) for d in batch))
            for entries in listings:
                for entry in entries or []:
                    if entry.type == "directory":
                        pending.append(entry.path)
                    else:
                        files.append(entry)
        return files

    async def mkdir(self, server: WorkspaceServer, path: str) -> None:
        body = json.dumps({"type": "directory"}).encode()
        await self._fetch(server, f"api/contents/{_quote(path)}", method="PUT", body=body)

    async def write(self, server: WorkspaceServer, path: str, data: bytes) -> Entry:
        """Store ``data`` at ``path`` exactly; the resulting model."""
        url = f"api/contents/{_quote(path)}"
        name = path.rsplit("/", 1)[-1]
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
        response: HTTPResponse | None = None
        for number, chunk in enumerate(chunks, start=1):
            model: dict[str, Any] = {
                "type": "file",
                "format": "base64",
                "name": name,
                "path": path,
                "content": await self._b64(chunk),
            }
            if len(chunks) > 1:
                model["chunk"] = -1 if number == len(chunks) else number
            response = await self._fetch(server, url, method="PUT", body=json.dumps(model).encode())
        assert response is not None
        return Entry.of(json.loads(response.body))

    async def unpack(self, server: WorkspaceServer, archive: bytes, since: float) -> Unpacked:
        """Put a tar archive's files into the Workspace, none over a file modified at or after
        ``since`` (``PUT emustudio/restore``, jupyter_ext's restore.py); what it wrote and kept."""
        response = await self._fetch(
            server,
            f"emustudio/restore?since={since:.6f}",
            method="PUT",
            body=archive,
            content_type="application/x-tar",
        )
        assert response is not None
        answer = json.loads(response.body)
        return Unpacked(
            [Entry.of(model) for model in answer.get("files") or []],
            [str(p) for p in answer.get("kept") or []],
            [str(p) for p in answer.get("refused") or []],
            [str(p) for p in answer.get("failed") or []],
        )

    async def _b64(self, data: bytes) -> str:
        if len(data) < _THREAD_ABOVE:
            return _encode(data)
        return await self.blocking.run(_encode, data)

    def close(self) -> None:
        self.http.close()


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(text: str) -> bytes:
    # jupyter_server encodes with base64.encodebytes: lines of 76 characters.
    return base64.decodebytes(text.encode("ascii"))
