"""The pending-upload journal, what S3 holds, and the local spool: the backup's durable state.

Every change is written to :class:`~emustudio.store.backup_tables.BackupPending` before it is
processed and removed only after S3 has it, in one transaction with the row that says what S3
now holds (:class:`~emustudio.store.backup_tables.BackupObject`) and the Workspace's
``LastBackupTime``.  A row is keyed by Workspace and path: a later change to the same path
replaces what an earlier one asked for (latest wins) and bumps ``version``, so processing that
read an older version leaves the row for the next round.

:class:`Spool` keeps file contents read while S3 was down (``data_dir/backup-spool/<sha256>``,
written atomically), so a Workspace can stop, or its container vanish, before S3 returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, delete, select

from emustudio.backup.blocking import Blocking
from emustudio.store import Store
from emustudio.store.backup_tables import BackupCursor, BackupObject, BackupPending
from emustudio.store.tables import Editor

__all__ = ["Journal", "Restored", "Spool", "sha256"]

SYNC = "sync"
DELETE = "delete"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Restored:
    """A file put back into a Workspace from S3."""

    path: str
    sha256: str
    size: int
    last_modified: str | None


def _under(path: str) -> str:
    """The LIKE pattern of every path below directory ``path``."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


class Journal:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- changes in ---------------------------------------------------------------------------

    async def record(
        self,
        editor_id: str,
        location: str,
        changes: Iterable[tuple[str, str]],
        cursor: tuple[str, int] | None = None,
    ) -> None:
        """Journal ``(op, path)`` changes and, in the same transaction, move the feed cursor."""
        items = [(op, path.strip("/")) for op, path in changes]

        def write(session: Session) -> None:
            now = time.time()
            for op, path in items:
                if not path:
                    continue
                row = session.get(BackupPending, (editor_id, path))
                if row is None:
                    row = BackupPending(
                        editor_id=editor_id, path=path, op=op, location=location, queued_at=now
                    )
                else:
                    row.version += 1
                    row.op = op
                    row.location = location
                    row.queued_at = now
                    row.attempts = 0
                    row.last_error = None
                # A sync must read the Workspace again; content captured earlier stays as the
                # fallback should the Workspace be gone by then. A delete needs neither.
                row.needs_read = op == SYNC
                if op == DELETE:
                    row.content_hash = None
                session.add(row)
            if cursor is not None:
                session.merge(BackupCursor(editor_id=editor_id, epoch=cursor[0], seq=cursor[1]))

        await self.store.tx(write)

    # --- reading ------------------------------------------------------------------------------

    async def get(
        self, editor_id: str, path: str
    ) -> tuple[BackupPending | None, BackupObject | None]:
        """The pending row of a path, and what S3 holds of it."""
        return await self.store.tx(
            lambda s: (
                s.get(BackupPending, (editor_id, path)),
                s.get(BackupObject, (editor_id, path)),
            )
        )

    async def pending(self, editor_id: str | None = None) -> list[BackupPending]:
        def read(session: Session) -> list[BackupPending]:
            query = select(BackupPending)
            if editor_id is not None:
                query = query.where(BackupPending.editor_id == editor_id)
            return list(session.exec(query))

        return await self.store.tx(read)

    async def unread(self, editor_id: str) -> int:
        """How many of the Workspace's changes still wait to be read from it."""

        def count(session: Session) -> int:
            return len(
                session.exec(
                    select(BackupPending.path).where(
                        BackupPending.editor_id == editor_id,
                        col(BackupPending.needs_read).is_(True),
                    )
                ).all()
            )

        return await self.store.tx(count)

    async def object(self, editor_id: str, path: str) -> BackupObject | None:
        return await self.store.tx(lambda s: s.get(BackupObject, (editor_id, path)))

    async def objects(self, editor_id: str, under: str = "") -> dict[str, BackupObject]:
        """What S3 holds of the Workspace, by path; only below directory ``under`` if given."""

        def read(session: Session) -> dict[str, BackupObject]:
            query = select(BackupObject).where(BackupObject.editor_id == editor_id)
            if under:
                query = query.where(col(BackupObject.path).like(_under(under), escape="\\"))
            return {o.path: o for o in session.exec(query)}

        return await self.store.tx(read)

    async def cursor(self, editor_id: str) -> tuple[str, int] | None:
        found = await self.store.tx(lambda s: s.get(BackupCursor, editor_id))
        return None if found is None else (found.epoch, found.seq)

    async def references(self, content_hash: str) -> int:
        def count(session: Session) -> int:
            return len(
                session.exec(
                    select(BackupPending.path).where(BackupPending.content_hash == content_hash)
                ).all()
            )

        return await self.store.tx(count)

    # --- outcomes -----------------------------------------------------------------------------

    async def uploaded(
        self,
        row: BackupPending,
        *,
        digest: str,
        size: int,
        last_modified: str | None,
        wrote: bool,
    ) -> bool:
        """S3 holds ``digest`` at the row's path: remember it, and end the row unless it changed
        since it was read. ``wrote``: an upload happened (the Workspace's LastBackupTime)."""

        def write(session: Session) -> bool:
            now = time.time()
            known = session.get(BackupObject, (row.editor_id, row.path))
            if known is None:
                known = BackupObject(
                    editor_id=row.editor_id,
                    path=row.path,
                    location=row.location,
                    sha256=digest,
                    size=size,
                    uploaded_at=now,
                )
            known.location, known.sha256, known.size = row.location, digest, size
            if last_modified is not None:
                known.last_modified = last_modified
            if wrote:
                known.uploaded_at = now
                editor = session.get(Editor, row.editor_id)
                if editor is not None:
                    editor.last_backup_at = now
                    session.add(editor)
            session.add(known)
            return _end(session, row)

        return await self.store.tx(write)

    async def deleted(self, row: BackupPending) -> list[str]:
        """S3 no longer holds the row's path or anything under it.

        Files under it uploaded after the delete was queued (a directory deleted, then made
        again) are returned: they must be uploaded again, the delete having taken them too.
        """

        def write(session: Session) -> list[str]:
            exact = session.get(BackupObject, (row.editor_id, row.path))
            if exact is not None:
                session.delete(exact)
            again: list[str] = []
            below = session.exec(
                select(BackupObject).where(
                    BackupObject.editor_id == row.editor_id,
                    col(BackupObject.path).like(_under(row.path), escape="\\"),
                )
            )
            for known in below:
                if known.uploaded_at > row.queued_at:
                    again.append(known.path)
                session.delete(known)
            _end(session, row)
            return again

        return await self.store.tx(write)

    async def to_delete(self, row: BackupPending) -> None:
        """The Workspace has nothing at the row's path any more: delete it from S3 instead."""

        def write(session: Session) -> None:
            current = session.get(BackupPending, (row.editor_id, row.path))
            if current is not None and current.version == row.version:
                current.op, current.needs_read, current.content_hash = DELETE, False, None
                session.add(current)

        await self.store.tx(write)

    async def done(self, row: BackupPending) -> bool:
        """Nothing more to do for the row (a directory whose files were queued instead)."""
        return await self.store.tx(lambda s: _end(s, row))

    async def spooled(self, row: BackupPending, content_hash: str) -> None:
        """The row's content, as read now, is in the spool: the Workspace need not be read again
        unless it changed since."""

        def write(session: Session) -> None:
            current = session.get(BackupPending, (row.editor_id, row.path))
            if current is None or current.op != SYNC:
                return
            current.content_hash = content_hash
            if current.version == row.version:
                current.needs_read = False
            session.add(current)

        await self.store.tx(write)

    async def failed(self, row: BackupPending, error: str) -> int:
        """Count a failed attempt; the number of attempts so far."""

        def write(session: Session) -> int:
            current = session.get(BackupPending, (row.editor_id, row.path))
            if current is None:
                return 0
            current.attempts += 1
            current.last_error = error[:1000]
            session.add(current)
            return current.attempts

        return await self.store.tx(write)

    async def drop(self, row: BackupPending) -> None:
        await self.store.tx(lambda s: _end(s, row, any_version=True))

    async def unreadable(self, editor_id: str) -> list[str]:
        """The Workspace's container is gone: changes still to be read from it fall back to
        content captured earlier, or are lost (returned)."""

        def write(session: Session) -> list[str]:
            lost = []
            rows = session.exec(
                select(BackupPending).where(
                    BackupPending.editor_id == editor_id,
                    col(BackupPending.needs_read).is_(True),
                )
            )
            for row in rows:
                if row.content_hash is None:
                    lost.append(row.path)
                    session.delete(row)
                else:
                    row.needs_read = False
                    session.add(row)
            return lost

        return await self.store.tx(write)

    async def restored(self, editor_id: str, location: str, files: list[Restored]) -> None:
        """A new container holds exactly ``files`` from S3; its change feed starts afresh."""

        def write(session: Session) -> None:
            session.exec(delete(BackupObject).where(col(BackupObject.editor_id) == editor_id))
            session.exec(delete(BackupCursor).where(col(BackupCursor.editor_id) == editor_id))
            now = time.time()
            for f in files:
                session.add(
                    BackupObject(
                        editor_id=editor_id,
                        path=f.path,
                        location=location,
                        sha256=f.sha256,
                        size=f.size,
                        last_modified=f.last_modified,
                        uploaded_at=now,
                    )
                )

        await self.store.tx(write)

    async def checked(self, editor_id: str, path: str, size: int, last_modified: str) -> None:
        """The sweep found the file unchanged (same hash): remember its size and time."""

        def write(session: Session) -> None:
            known = session.get(BackupObject, (editor_id, path))
            if known is not None:
                known.size, known.last_modified = size, last_modified
                session.add(known)

        await self.store.tx(write)

    async def forget(self, editor_id: str) -> None:
        """The Workspace is deleted: its S3 copy stays, the gateway's notes about it go (but not
        its pending changes, which still reach S3)."""

        def write(session: Session) -> None:
            session.exec(delete(BackupObject).where(col(BackupObject.editor_id) == editor_id))
            session.exec(delete(BackupCursor).where(col(BackupCursor.editor_id) == editor_id))

        await self.store.tx(write)


def _end(session: Session, row: BackupPending, *, any_version: bool = False) -> bool:
    current = session.get(BackupPending, (row.editor_id, row.path))
    if current is None:
        return True
    if any_version or current.version == row.version:
        session.delete(current)
        return True
    return False


class Spool:
    """Contents read while S3 was down, by sha256, in ``directory``."""

    def __init__(self, directory: Path, blocking: Blocking) -> None:
        self.directory = directory
        self.blocking = blocking

    async def put(self, data: bytes) -> str:
        return await self.blocking.run(self._put, data)

    def _put(self, data: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = sha256(data)
        target = self.directory / digest
        if target.exists():
            return digest
        tmp = self.directory / f".{digest}.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return digest

    async def get(self, digest: str) -> bytes | None:
        return await self.blocking.run(self._get, digest)

    def _get(self, digest: str) -> bytes | None:
        try:
            return (self.directory / digest).read_bytes()
        except FileNotFoundError:
            return None

    async def discard(self, digest: str) -> None:
        await self.blocking.run(self._discard, digest)

    def _discard(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / digest).unlink()

    async def keep_only(self, digests: set[str]) -> None:
        await self.blocking.run(self._keep_only, digests)

    def _keep_only(self, digests: set[str]) -> None:
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.name not in digests:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
