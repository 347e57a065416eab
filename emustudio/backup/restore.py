"""Putting a Workspace's files back: every object under ``<location>/<e-ID>/`` into its new
container, before the Workspace is Ready (whatever its AZ, cold start or warm claim).

The gateway reads the objects from S3 (the Workspace never holds S3 credentials) and puts
them in uncompressed tar archives of about :data:`ARCHIVE_BYTES` (each file with its object's
S3 time as its modification time); reading the next archive's objects overlaps unpacking the
previous one.  Who unpacks them:

* **The container runtime**, where there is one (``put_files``: Docker's ``PUT
  /containers/{id}/archive``, which makes every file the container user's and never replaces
  a folder by a file or the reverse).  Docker unpacks outside the container, about 15 times
  faster than the Workspace's own server, which has one CPU and is just starting.  Docker
  cannot tell a user's newer file from an older one, so the Workspace is listed first (a file
  modified since the restore began is kept, a folder at a file's path fails it) and after
  (every file must be there, whole; its model is what the journal records).
* **The Workspace's server extension** otherwise (``PUT emustudio/restore``: written as the
  Workspace's user, each put into place whole, never over a file modified since the restore
  began).

Either is one request per archive; the contents API took one per file, base64 in JSON (about
25 ms a megabyte).  A file larger than :data:`ARCHIVE_FILE_MAX` goes alone through the contents
API, in chunks, so neither side holds it whole twice (its time is then the restore's: the
contents API sets no times).  Nobody can write into a Workspace before it is Ready, so "a file
modified since the restore began" is only ever a safeguard.

Objects whose key ends with ``/`` (folder markers some tools make), keys that are not a
relative path, and hidden paths (which the contents API neither serves nor takes, so the backup
never writes them) are skipped.  Anything else the Workspace refuses fails the restore, and
with it the start: the Workspace is not shown Ready with files missing, and S3 keeps them all.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tarfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from emustudio.backup.blocking import Blocking
from emustudio.backup.contents import ContentsClient, Entry, WorkspaceServer
from emustudio.backup.journal import Restored, sha256
from emustudio.backup.s3client import Listed, Location, S3Client

__all__ = ["restore"]

log = logging.getLogger(__name__)

ARCHIVE_BYTES = 16 * 1024 * 1024
ARCHIVE_FILE_MAX = 64 * 1024 * 1024
# Archives in flight at once: one being filled from S3 while another is unpacked.
ARCHIVES_AT_ONCE = 2

Item = tuple[Listed, str]
T = TypeVar("T")


def _relative(prefix: str, listed: Listed) -> str | None:
    path = listed.key[len(prefix) :]
    parts = path.split("/")
    if not path or path.endswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    if any(p.startswith(".") for p in parts):
        return None  # hidden: never backed up by the gateway, refused by the contents API
    return path


def _parents(paths: list[str]) -> list[str]:
    """Every folder the paths are in, parents before children."""
    return sorted(
        {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)},
        key=lambda d: (d.count("/"), d),
    )


async def _tree(
    contents: ContentsClient, server: WorkspaceServer
) -> tuple[dict[str, Entry], set[str]]:
    """The Workspace's files (their models) and folders, as its contents API shows them."""
    files: dict[str, Entry] = {}
    folders: set[str] = set()
    pending = [""]
    while pending:
        batch, pending = pending[:16], pending[16:]
        for entries in await asyncio.gather(*(contents.listdir(server, d) for d in batch)):
            for entry in entries or []:
                if entry.type == "directory":
                    folders.add(entry.path)
                    pending.append(entry.path)
                else:
                    files[entry.path] = entry
    return files, folders


def _modified_since(last_modified: str | None, since: float) -> bool:
    """Whether a contents model's ``last_modified`` (ISO 8601) is at or after ``since``."""
    if last_modified is None:
        return True  # unknown: keep it
    return datetime.fromisoformat(last_modified).timestamp() >= since


def _batches(items: list[Item]) -> list[list[Item]]:
    batches: list[list[Item]] = []
    size = 0
    for item in items:
        if not batches or size + item[0].size > ARCHIVE_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item[0].size
    return batches


def _archive(
    files: list[tuple[str, bytes, float]], folders: bool = False
) -> tuple[bytes, list[str]]:
    """A tar (PAX: UTF-8 names, sub-second times) of ``(path, data, mtime)``, and each file's
    SHA-256, in the order given; with ``folders``, an entry for each folder on the way first
    (Docker makes a missing one root's, one in the archive the container user's)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in _parents([path for path, _, _ in files]) if folders else []:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        for path, data, mtime in files:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = mtime  # PAX keeps the fraction
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), [sha256(data) for _, data, _ in files]


async def restore(
    s3: S3Client,
    contents: ContentsClient,
    blocking: Blocking,
    server: WorkspaceServer,
    location: Location,
    *,
    concurrency: int = 8,
    note: Callable[[str], None] | None = None,
    put_files: Callable[[bytes], Awaitable[None]] | None = None,
) -> list[Restored]:
    """Put the Workspace's objects back into it: with ``put_files`` (the container runtime
    unpacking an archive, :meth:`Containers.put_files`) where there is one, else through its
    server extension; what was restored, as the journal records it."""
    started, since = time.monotonic(), time.time()
    prefix = location.workspace_prefix(server.editor_id)
    objects = await s3.list_objects(location.bucket, prefix)
    files = [(o, p) for o in objects if (p := _relative(prefix, o)) is not None]
    if not files:
        return []
    total = sum(o.size for o, _ in files)
    if note is not None:
        note(f"Restoring {len(files)} files ({total / 1e6:.1f} MB) from S3")
    gets = asyncio.Semaphore(concurrency)
    archives = asyncio.Semaphore(ARCHIVES_AT_ONCE)
    kept: list[str] = []
    spent = {"S3": 0.0, "archive": 0.0, "unpack": 0.0}  # summed over archives, which overlap

    async def get(listed: Listed) -> bytes:
        async with gets:
            return await s3.get(location.bucket, listed.key)

    async def timed(what: str, coro: Awaitable[T]) -> T:
        begun = time.monotonic()
        try:
            return await coro
        finally:
            spent[what] += time.monotonic() - begun

    async def put(batch: list[Item]) -> list[tuple[str, str, int]]:
        """Through the runtime: (path, SHA-256, size) of each file put."""
        assert put_files is not None
        async with archives:
            datas = await timed("S3", asyncio.gather(*(get(o) for o, _ in batch)))
            sizes = [len(d) for d in datas]
            now = time.time()
            named = [(p, d, o.last_modified or now) for (o, p), d in zip(batch, datas, strict=True)]
            archive, digests = await timed("archive", blocking.run(_archive, named, True))
            del datas, named
            await timed("unpack", put_files(archive))
        return [(p, d, n) for (_, p), d, n in zip(batch, digests, sizes, strict=True)]

    async def send(batch: list[Item]) -> list[Restored]:
        async with archives:
            datas = await timed("S3", asyncio.gather(*(get(o) for o, _ in batch)))
            sizes = [len(d) for d in datas]
            now = time.time()
            named = [(p, d, o.last_modified or now) for (o, p), d in zip(batch, datas, strict=True)]
            archive, digests = await timed("archive", blocking.run(_archive, named))
            del datas, named
            unpacked = await timed("unpack", contents.unpack(server, archive, since))
        if unpacked.refused or unpacked.failed:
            _fail([f"{p}: refused" for p in unpacked.refused] + unpacked.failed)
        kept.extend(unpacked.kept)
        written = {e.path: e for e in unpacked.files}
        return [
            Restored(p, digest, size, entry.last_modified)
            for (_, p), digest, size in zip(batch, digests, sizes, strict=True)
            if (entry := written.get(p)) is not None
        ]

    async def one_large(listed: Listed, path: str) -> list[Restored]:
        # Alone, through the contents API in chunks; it overwrites, so look first.
        async with archives:
            there = await contents.stat(server, path)
            if there is not None and _modified_since(there.last_modified, since):
                kept.append(path)
                return []
            data = await get(listed)
            entry = await contents.write(server, path, data)
            digest = await blocking.run(sha256, data)
        return [Restored(path, digest, len(data), entry.last_modified)]

    large = [(o, p) for o, p in files if o.size > ARCHIVE_FILE_MAX]
    for directory in _parents([p for _, p in large]):
        if await contents.stat(server, directory) is None:
            await contents.mkdir(server, directory)
    small = [(o, p) for o, p in files if o.size <= ARCHIVE_FILE_MAX]
    if put_files is None:
        results = await asyncio.gather(
            *(send(b) for b in _batches(small)), *(one_large(o, p) for o, p in large)
        )
        restored = [r for batch in results for r in batch]
    else:
        restored = await _through_runtime(contents, server, small, since, kept, put)
        for batch in await asyncio.gather(*(one_large(o, p) for o, p in large)):
            restored += batch
    elapsed = time.monotonic() - started
    if kept:
        # Only a file written after the restore began, which a user cannot do before Ready:
        # kept, and backed up from the Workspace by the next sweep (latest wins).
        log.warning(
            "restore of %s kept %d files already in the Workspace: %s",
            server.editor_id,
            len(kept),
            ", ".join(kept[:10]),
        )
    log.info(
        "restored %d files (%d bytes) of %s from %s in %.3f s (%s)",
        len(restored),
        sum(r.size for r in restored),
        server.editor_id,
        location,
        elapsed,
        ", ".join(f"{k} {v:.2f} s" for k, v in spent.items()),
    )
    if note is not None:
        note(f"Restored {len(restored)} files from S3 in {elapsed:.2f} s")
    return restored


async def _through_runtime(
    contents: ContentsClient,
    server: WorkspaceServer,
    small: list[Item],
    since: float,
    kept: list[str],
    put: Callable[[list[Item]], Awaitable[list[tuple[str, str, int]]]],
) -> list[Restored]:
    """The archives go through the container runtime, which cannot tell a user's newer file
    from an older one: the Workspace is looked at before (what is there decides what is sent)
    and after (every file must be there, whole; its model is what the journal records)."""
    there, folders = await _tree(contents, server)
    chosen: list[Item] = []
    problems: list[str] = []
    for listed, path in small:
        parents = _parents([path])
        if path in folders:
            problems.append(f"{path}: a folder is there")
        elif any(p in there for p in parents):
            problems.append(f"{path}: a file is where its folder must be")
        elif path in there and _modified_since(there[path].last_modified, since):
            kept.append(path)
        else:
            chosen.append((listed, path))
    if problems:
        _fail(problems)
    results = await asyncio.gather(*(put(b) for b in _batches(chosen)))
    after, _ = await _tree(contents, server)
    restored: list[Restored] = []
    for path, digest, size in (r for batch in results for r in batch):
        entry = after.get(path)
        if entry is None or entry.size != size:
            problems.append(f"{path}: not in the Workspace after the restore")
        else:
            restored.append(Restored(path, digest, size, entry.last_modified))
    if problems:
        _fail(problems)
    return restored


def _fail(problems: list[str]) -> None:
    # Shown as the start's failure; S3 keeps every object.
    raise RuntimeError(
        f"{len(problems)} backed-up files could not be restored ({'; '.join(problems[:3])})"
    )
