"""Putting a Workspace's files back: every object under ``<location>/<e-ID>/`` into its new
container, over the contents API, before the Workspace is Ready (whatever its AZ).

Directories are made first, parents before children; then the files, a few at a time, each
read from S3 and written byte for byte (:meth:`ContentsClient.write`).  Objects whose key ends
with ``/`` (folder markers some tools make) and keys that are not a relative path are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time

from emustudio.backup.blocking import Blocking
from emustudio.backup.contents import ContentsClient, WorkspaceServer
from emustudio.backup.journal import Restored, sha256
from emustudio.backup.s3client import Listed, Location, S3Client

__all__ = ["restore"]

log = logging.getLogger(__name__)


def _relative(prefix: str, listed: Listed) -> str | None:
    path = listed.key[len(prefix) :]
    parts = path.split("/")
    if not path or path.endswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return path


async def restore(
    s3: S3Client,
    contents: ContentsClient,
    blocking: Blocking,
    server: WorkspaceServer,
    location: Location,
    *,
    concurrency: int = 8,
) -> list[Restored]:
    started = time.monotonic()
    prefix = location.workspace_prefix(server.editor_id)
    objects = await s3.list_objects(location.bucket, prefix)
    files = [(o, p) for o in objects if (p := _relative(prefix, o)) is not None]
    directories = sorted(
        {"/".join(p.split("/")[:i]) for _, p in files for i in range(1, p.count("/") + 1)},
        key=lambda d: (d.count("/"), d),
    )
    for directory in directories:
        await contents.mkdir(server, directory)
    slots = asyncio.Semaphore(concurrency)

    async def one(listed: Listed, path: str) -> Restored:
        async with slots:
            data = await s3.get(location.bucket, listed.key)
            entry = await contents.write(server, path, data)
            digest = await blocking.run(sha256, data)
            return Restored(path, digest, len(data), entry.last_modified)

    restored = list(await asyncio.gather(*(one(o, p) for o, p in files)))
    if restored:
        log.info(
            "restored %d files (%d bytes) of %s from %s in %.3f s",
            len(restored),
            sum(r.size for r in restored),
            server.editor_id,
            location,
            time.monotonic() - started,
        )
    return restored
