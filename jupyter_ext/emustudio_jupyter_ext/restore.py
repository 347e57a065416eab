"""PUT <base_url>emustudio/restore: a Workspace's backed-up files, put back from one tar archive.

The gateway restores a Workspace before it is Ready by reading its objects from S3 (only the
gateway holds S3 credentials) and sending them here in a few uncompressed tar archives, instead
of one contents-API request per file (base64 in JSON): for 100 notebooks of 1 MB that is the
difference between about 2.5 s and a few tenths.  Only the gateway calls it, with the server's
token; a browser's call through the proxy is refused by the gateway's Origin rules, and carries
no token.  It can write nothing the contents API could not: regular files, under the server's
root, none hidden.

Each file is written the way a user's would be, as this server's user and umask, under a
hidden temporary name next to its target, given the archive's modification time, then put into
place whole: with ``link(2)``, which never replaces anything, or, over a file older than the
restore (``?since=<epoch seconds>``, when the gateway began it), with ``rename(2)``.  A file
modified since the restore began (one the user wrote, however unlikely before Ready) is kept
and reported as ``kept``.  So no file is ever seen half-written under its own name, and an
archive that fails half-way leaves only whole files.

The answer lists, for every file written, its contents model (path, size, last_modified), exactly
as the contents API reports it, which is what the gateway's backup compares its sweeps with;
and the files it could not write, with why (S3 can hold both ``a`` and ``a/b``, a file system
cannot): the gateway then fails the start and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import secrets
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from tornado import web

__all__ = ["RestoreHandler", "Unpacked", "unpack"]

_TEMP_PREFIX = ".~emustudio-restore-"


@dataclass
class Unpacked:
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # something was already there
    refused: list[str] = field(default_factory=list)  # not a plain relative, visible file
    failed: list[str] = field(default_factory=list)  # "path: why" (a folder in its way...)


def _safe(name: str) -> str | None:
    """``name`` if it is a relative path of visible parts, nothing that climbs or hides."""
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    return name


def _place(temp: str, target: str, since: float) -> bool:
    """Put ``temp`` at ``target`` unless a file modified at or after ``since`` is there."""
    try:
        os.link(temp, target)
        return True
    except FileExistsError:
        there = os.lstat(target)
        if not stat.S_ISREG(there.st_mode):
            raise IsADirectoryError(errno.EISDIR, "something other than a file is there") from None
        if there.st_mtime >= since:
            return False
    os.rename(temp, target)
    return True


def unpack(archive: bytes, root: str, since: float = 0.0) -> Unpacked:
    """Write every regular file of ``archive`` under ``root`` (see the module's docstring);
    one already there is replaced only if it was last modified before ``since``."""
    done = Unpacked()
    real_root = os.path.realpath(root)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar:
            path = _safe(member.name)
            if not member.isreg() or path is None:
                done.refused.append(member.name)
                continue
            target = os.path.join(real_root, path)
            parent = os.path.dirname(target)
            # A directory on the way could be a link somewhere else: write only inside root.
            if os.path.commonpath([os.path.realpath(parent), real_root]) != real_root:
                done.refused.append(member.name)
                continue
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has content
            try:
                written = _write(parent, target, source.read(), member.mtime, since)
            except OSError as exc:
                # A file where a folder must be, a full disk: this file fails, the rest go on.
                done.failed.append(f"{path}: {exc.strerror or exc}")
                continue
            (done.written if written else done.kept).append(path)
    return done


def _write(parent: str, target: str, data: bytes, mtime: float, since: float) -> bool:
    os.makedirs(parent, exist_ok=True)
    temp = os.path.join(parent, _TEMP_PREFIX + secrets.token_hex(8))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        mtime_ns = round(mtime * 1_000_000_000)
        os.utime(temp, ns=(mtime_ns, mtime_ns))
        return _place(temp, target, since)
    finally:
        with contextlib.suppress(FileNotFoundError):  # renamed into place
            os.unlink(temp)


class RestoreHandler(APIHandler):  # type: ignore[misc]
    """PUT <base_url>emustudio/restore?since=<t>, body ``application/x-tar``; the answer is
    ``{"files": [model...], "kept": [path...], "refused": [name...], "failed": ["path: why"]}``.
    """

    @web.authenticated
    async def put(self) -> None:
        root = self.contents_manager.root_dir
        try:
            since = float(self.get_query_argument("since", "0"))
        except ValueError as exc:
            raise web.HTTPError(400, "since is a time in seconds since the epoch") from exc
        loop = asyncio.get_running_loop()
        try:
            done = await loop.run_in_executor(None, unpack, self.request.body, root, since)
        except tarfile.TarError as exc:
            raise web.HTTPError(400, f"Not a tar archive: {exc}") from exc
        models: list[dict[str, Any]] = []
        for path in done.written:
            model = await ensure_async(self.contents_manager.get(path, content=False))
            models.append(
                {k: model[k] for k in ("path", "type", "size", "last_modified") if k in model}
            )
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "files": models,
                    "kept": done.kept,
                    "refused": done.refused,
                    "failed": done.failed,
                },
                default=json_default,
            )
        )
