"""The backup engine: each running Workspace's files mirrored to ``<location>/<e-ID>/<path>``.

How a change travels::

    JupyterLab save ─▶ contents event ─▶ change feed (jupyter_ext) ─WebSocket─▶ gateway
      ─▶ journal row + cursor (one transaction) ─▶ debounce ─▶ read the file (contents API)
      ─▶ put to S3 ─▶ row removed, BackupObject + LastBackupTime (one transaction)

* **Latest wins, per path.** A path has at most one journal row; a change while it is being
  processed bumps its version, and the processing that read the older version leaves the row to
  a next round, which reads the file again.  Saves coming every second (collaboration) are
  uploaded at most once per ``debounce`` seconds, always the newest content.
* **Renames and deletes.** A rename is a delete of the old path (the object and everything
  under ``old/``) and a sync of the new one (read back from the Workspace, so nothing depends
  on the old object having arrived); a delete deletes.  A sync that finds nothing at its path
  deletes; one that finds a directory queues its files.
* **The sweep**, every ``sweep_seconds`` and before a stop, lists the Workspace's files and
  queues those whose size or time differ from what S3 was last given (and those S3 holds but
  the Workspace no longer does): files written by code or a terminal, changes a lost feed
  missed.
* **S3 down.** A change is still read from the Workspace, and its content kept in the local
  spool; the row waits until a probe (backing off up to 10 s) finds S3 again, then uploads.
  The Workspace keeps working.  A stop only waits for its changes to be read, not uploaded.
* **Gateway restart, even SIGKILL.** Journal rows are replayed at start: the file is read
  again from the container, which the restart adopted; the feed resumes from its cursor.
* **Restore.** Before a Workspace is Ready, its changes that never reached S3 go first, then
  every object of it is put into the new container, in a few tar archives Docker (or the
  Workspace's server extension) unpacks (:mod:`.restore`); only then does its feed start.

Every blocking call (the minio SDK, the spool, hashing, the store) runs off the event loop;
the Workspace's JupyterLab is reached with tornado's AsyncHTTPClient and the token only the
gateway has.  Nothing of S3 ever goes to a Workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from emustudio.backup.blocking import Blocking
from emustudio.backup.contents import ContentsClient, Unreachable, WorkspaceServer
from emustudio.backup.feed import Subscription
from emustudio.backup.journal import DELETE, SYNC, Journal, Spool, sha256
from emustudio.backup.restore import restore
from emustudio.backup.s3client import (
    Location,
    S3Client,
    S3Endpoint,
    S3Failure,
    S3Unavailable,
)
from emustudio.store import Store
from emustudio.store.backup_tables import BackupPending
from emustudio.store.tables import EDITOR_RUNNING, Editor, Endpoint

if TYPE_CHECKING:
    from emustudio.config import Settings

__all__ = ["BackupEngine"]

log = logging.getLogger(__name__)

RUNNING = frozenset(EDITOR_RUNNING)
FOLLOWED = RUNNING | {"Stopping", "Deleting"}
MAX_BACKOFF = 10.0
_HASH_IN_THREAD = 256 * 1024

Key = tuple[str, str]


class _WaitForS3:
    """A processing outcome: S3 is unavailable; try again once it is back."""


WAIT_S3 = _WaitForS3()


def backoff(attempts: int) -> float:
    """Exponential, from 0.25 s, capped at :data:`MAX_BACKOFF`, with a little jitter."""
    return float(min(0.25 * 2 ** max(attempts - 1, 0), MAX_BACKOFF) * random.uniform(0.8, 1.0))


@dataclass
class Session:
    """A running Workspace the engine follows."""

    editor_id: str
    location: Location
    server: WorkspaceServer
    subscription: Subscription | None = None
    sweeper: asyncio.Task[None] | None = None
    sweep_now: asyncio.Event = field(default_factory=asyncio.Event)
    sweeps: int = 0


class BackupEngine:
    """The S3 backup of every Workspace; its Workspace hooks are ``before_ready``,
    ``before_stop``, ``after_stop`` and ``after_delete`` (see
    ``services/emr/workspaces.WorkspaceHooks``)."""

    def __init__(
        self,
        store: Store,
        s3: S3Client,
        contents: ContentsClient,
        spool: Spool,
        blocking: Blocking,
        *,
        base_url: Callable[[str], str],
        sweep_seconds: float = 60.0,
        debounce: float = 0.5,
        restore_timeout: float = 120.0,
        flush_timeout: float = 120.0,
        concurrency: int = 8,
    ) -> None:
        self.store = store
        self.journal = Journal(store)
        self.s3 = s3
        self.contents = contents
        self.spool = spool
        self.blocking = blocking
        self.base_url = base_url
        self.sweep_seconds = sweep_seconds
        self.debounce = debounce
        self.restore_timeout = restore_timeout
        self.flush_timeout = flush_timeout
        self.sessions: dict[str, Session] = {}
        self.timers: dict[Key, asyncio.TimerHandle] = {}
        self.active: dict[Key, asyncio.Task[None]] = {}
        self.again: dict[Key, float] = {}
        self.parked: set[Key] = set()  # rounds waiting for S3 to come back
        self.changed_at: dict[Key, float] = {}  # loop time of each path's last change
        self.slots = asyncio.Semaphore(concurrency)
        self.s3_up = asyncio.Event()
        self.s3_up.set()
        self.prober: asyncio.Task[None] | None = None
        self.closed = False
        self.uploads = 0

    @classmethod
    def from_settings(
        cls,
        store: Store,
        endpoint: S3Endpoint,
        settings: Settings,
        *,
        base_url: Callable[[str], str],
        create_buckets: bool,
    ) -> BackupEngine:
        blocking = Blocking(workers=8)
        return cls(
            store,
            S3Client(endpoint, blocking, create_buckets=create_buckets),
            ContentsClient(blocking),
            Spool(settings.data_dir / "backup-spool", blocking),
            blocking,
            base_url=base_url,
            sweep_seconds=settings.backup_sweep_seconds,
            debounce=settings.backup_debounce_seconds,
            restore_timeout=settings.backup_restore_timeout,
            flush_timeout=settings.backup_flush_timeout,
        )

    # --- gateway life -------------------------------------------------------------------------

    async def start(self) -> None:
        """After the gateway adopted its Workspaces: follow the running ones, replay the journal."""
        editors = await self.store.tx(lambda s: list(s.exec(select(Editor))))
        running = {e.id: e for e in editors if e.status in RUNNING}
        rows = await self.journal.pending()
        for editor_id in {r.editor_id for r in rows} - set(running):
            lost = await self.journal.unreadable(editor_id)
            if lost:
                log.error(
                    "backup of %s: the Workspace stopped before these changes could be read: %s",
                    editor_id,
                    ", ".join(lost),
                )
        rows = await self.journal.pending()
        await self.spool.keep_only({r.content_hash for r in rows if r.content_hash})
        self.prober = asyncio.create_task(self._probe(), name="S3 probe")
        for editor in running.values():
            # An endpoint of None: its AZ is impaired; followed once it is back.
            server = WorkspaceServer(
                editor.id, editor.endpoint or "", self.base_url(editor.id), editor.token
            )
            self.sessions[editor.id] = Session(
                editor.id, Location.parse(editor.s3_location), server
            )
        await asyncio.gather(*(self._follow(s, adopted=True) for s in self.sessions.values()))
        for row in rows:
            self.schedule((row.editor_id, row.path), 0)
        if rows:
            log.info("backup: replaying %d pending changes", len(rows))

    async def close(self) -> None:
        """Gateway shutdown: stop following; the journal keeps what is pending."""
        self.closed = True
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for session in list(self.sessions.values()):
            await self._unfollow(session)
        tasks = list(self.active.values())
        if self.prober is not None:
            tasks.append(self.prober)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.contents.close()
        self.s3.close()
        self.blocking.close()

    # --- Workspace hooks ----------------------------------------------------------------------

    async def before_ready(
        self,
        editor: Editor,
        endpoint: Endpoint,
        note: Callable[[str], None] | None = None,
        put_files: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        """Restore the Workspace's files into its new container, then follow it; ``note``
        tells the start's progress what is restored, ``put_files`` (the runtime's) unpacks
        tar archives into the container."""
        if (old := self.sessions.pop(editor.id, None)) is not None:
            await self._unfollow(old)
        location = Location.parse(editor.s3_location)
        server = WorkspaceServer(editor.id, endpoint.netloc, self.base_url(editor.id), editor.token)
        deadline = time.monotonic() + self.restore_timeout
        # Changes read from the previous container that S3 does not have yet go first.
        await self.journal.unreadable(editor.id)
        for row in await self.journal.pending(editor.id):
            self.schedule((row.editor_id, row.path), 0)
        while pending := await self.journal.pending(editor.id):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"S3 is unavailable: {len(pending)} changes of the Workspace are not"
                    " backed up yet, so its files cannot be restored."
                )
            await asyncio.sleep(0.05)
        while True:
            try:
                restored = await restore(
                    self.s3,
                    self.contents,
                    self.blocking,
                    server,
                    location,
                    note=note,
                    put_files=put_files,
                )
                break
            except S3Unavailable as exc:
                self._s3_down(exc)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(
                        f"S3 is unavailable, so the Workspace's files cannot be restored: {exc}"
                    ) from exc
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.s3_up.wait(), left)
        await self.journal.restored(editor.id, str(location), restored)
        session = Session(editor.id, location, server)
        self.sessions[editor.id] = session
        await self._follow(session, adopted=False)

    async def before_stop(self, editor: Editor) -> None:
        """Read every change of the Workspace into the backup before its container goes."""
        session = self.sessions.get(editor.id)
        if session is None:
            return
        try:
            await asyncio.wait_for(self.flush(session), self.flush_timeout)
        except TimeoutError:
            log.error(
                "backup of %s: flush did not finish within %.0f s", editor.id, self.flush_timeout
            )
        except Unreachable as exc:
            log.error("backup of %s: cannot reach the Workspace to flush it: %s", editor.id, exc)
        finally:
            await self._unfollow(session)
            self.sessions.pop(editor.id, None)
            lost = await self.journal.unreadable(editor.id)
            if lost:
                log.error(
                    "backup of %s: could not read before the stop: %s", editor.id, ", ".join(lost)
                )

    async def after_stop(self, editor: Editor) -> None:
        """Nothing: ``before_stop`` read the last changes while the container still ran."""

    async def after_delete(self, editor: Editor) -> None:
        """The Workspace is gone; its backups stay in S3 (as in AWS)."""
        if (session := self.sessions.pop(editor.id, None)) is not None:
            await self._unfollow(session)
        await self.journal.forget(editor.id)

    # --- following a Workspace ----------------------------------------------------------------

    async def _follow(self, session: Session, *, adopted: bool) -> None:
        cursor = await self.journal.cursor(session.editor_id) if adopted else None
        subscription = Subscription(
            session.editor_id,
            server=lambda: self._server(session),
            on_change=lambda change, at: self._on_change(session, change, at),
            on_gap=session.sweep_now.set,
            cursor=cursor,
        )
        session.subscription = subscription
        subscription.start()
        if adopted:
            session.sweep_now.set()  # whatever changed while the gateway was away
        session.sweeper = asyncio.create_task(
            self._sweep_loop(session), name=f"backup sweep {session.editor_id}"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscription.connected.wait(), 5)
        for row in await self.journal.pending(session.editor_id):
            self.schedule((row.editor_id, row.path), 0)

    async def _unfollow(self, session: Session) -> None:
        if session.sweeper is not None:
            session.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session.sweeper
            session.sweeper = None
        if session.subscription is not None:
            await session.subscription.close()
            session.subscription = None

    async def _server(self, session: Session) -> WorkspaceServer | None:
        """Where the Workspace answers now (it moves in an AZ outage); None: not reachable."""
        editor = await self.store.tx(lambda s: s.get(Editor, session.editor_id))
        if editor is None:
            return None
        if editor.status == "Starting":
            return session.server
        # Stopping and Deleting: the container runs until the stop hook (the flush) is done.
        if editor.status not in FOLLOWED or editor.endpoint is None:
            return None
        if editor.endpoint != session.server.endpoint or editor.token != session.server.token:
            session.server = replace(session.server, endpoint=editor.endpoint, token=editor.token)
        return session.server

    async def _on_change(
        self, session: Session, change: dict[str, Any], cursor: tuple[str, int]
    ) -> None:
        action, path = change.get("action"), str(change.get("path", ""))
        if action == "delete":
            ops = [(DELETE, path)]
        elif action == "rename" and change.get("source_path"):
            ops = [(DELETE, str(change["source_path"])), (SYNC, path)]
        else:
            ops = [(SYNC, path)]
        await self.journal.record(session.editor_id, str(session.location), ops, cursor)
        for _, p in ops:
            key = (session.editor_id, p.strip("/"))
            self.schedule(key, self._debounce(key))

    def _debounce(self, key: Key) -> float:
        """No wait for a path quiet for ``debounce`` s; the whole window for a busy one."""
        now = asyncio.get_running_loop().time()
        last = self.changed_at.get(key)
        self.changed_at[key] = now
        if len(self.changed_at) > 4096:  # forget the quiet ones: they wait for nothing anyway
            self.changed_at = {k: t for k, t in self.changed_at.items() if now - t < self.debounce}
        return 0.0 if last is None or now - last >= self.debounce else self.debounce

    # --- the sweep ----------------------------------------------------------------------------

    async def _sweep_loop(self, session: Session) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.sweep_now.wait(), self.sweep_seconds)
            session.sweep_now.clear()
            try:
                await self.sweep(session)
            except Unreachable as exc:
                log.debug("sweep of %s skipped: %s", session.editor_id, exc)
            except Exception:
                log.exception("sweep of %s failed", session.editor_id)

    async def sweep(self, session: Session, under: str = "", *, delay: float = 0) -> int:
        """Queue every file below ``under`` that S3 does not hold as it is now; how many."""
        server = await self._server(session)
        if server is None:
            return 0
        files = await self.contents.walk(server, under)
        known = await self.journal.objects(session.editor_id, under)
        location = str(session.location)
        listed = {f.path for f in files}
        changed = [
            f.path
            for f in files
            if (k := known.get(f.path)) is None
            or k.location != location
            or k.size != f.size
            or k.last_modified != f.last_modified
        ]
        gone = [p for p in known if p not in listed]
        session.sweeps += 1
        if not changed and not gone:
            return 0
        await self.journal.record(session.editor_id, location, [(SYNC, p) for p in changed + gone])
        for p in changed + gone:
            self.schedule((session.editor_id, p), delay)
        return len(changed) + len(gone)

    async def flush(self, session: Session) -> None:
        """Sweep, then process every change of the Workspace now, until each has been read."""
        await self.sweep(session)
        scheduled: dict[str, int] = {}
        while True:
            rows = [r for r in await self.journal.pending(session.editor_id) if r.needs_read]
            if not rows:
                return
            if await self._server(session) is None:
                # Off its network (an impaired AZ): what it holds cannot be read any more.
                log.error(
                    "backup of %s: unreachable, %d changes unread", session.editor_id, len(rows)
                )
                return
            for row in rows:
                if scheduled.get(row.path) != row.version:
                    scheduled[row.path] = row.version
                    self.schedule((row.editor_id, row.path), 0)
            await asyncio.sleep(0.02)

    # --- scheduling ---------------------------------------------------------------------------

    def schedule(self, key: Key, delay: float) -> None:
        """Process ``key`` in ``delay`` seconds (sooner if it already is); once more after the
        current round if it is being processed now."""
        if self.closed:
            return
        if key in self.active:
            self.again[key] = min(delay, self.again.get(key, delay))
            if key in self.parked:
                # It waits for S3 with what it read before; this change must be read now
                # (a stop waits for the reads), so that round ends and a new one starts.
                self.active[key].cancel()
            return
        loop = asyncio.get_running_loop()
        handle = self.timers.get(key)
        if handle is not None:
            if handle.when() <= loop.time() + delay:
                return
            handle.cancel()
        self.timers[key] = loop.call_later(delay, self._start, key)

    def _start(self, key: Key) -> None:
        self.timers.pop(key, None)
        task = asyncio.create_task(self._drive(key), name=f"backup {key[0]} {key[1]}")
        self.active[key] = task
        task.add_done_callback(lambda t: self._finished(key, t))

    def _finished(self, key: Key, task: asyncio.Task[None]) -> None:
        self.active.pop(key, None)
        again = self.again.pop(key, None)
        if task.cancelled():
            if again is not None and not self.closed:
                self.schedule(key, again)
            return
        if (exc := task.exception()) is not None:
            log.error("backup of %s %s failed", key[0], key[1], exc_info=exc)
            again = min(again if again is not None else MAX_BACKOFF, MAX_BACKOFF)
        if again is not None:
            self.schedule(key, again)

    async def _drive(self, key: Key) -> None:
        while not self.closed:
            async with self.slots:
                outcome = await self._process(key)
            if outcome is None:
                return
            if isinstance(outcome, _WaitForS3):
                if self.again.pop(key, None) is not None:
                    continue  # changed while this round ran: read it now, S3 or not
                self.parked.add(key)
                try:
                    await self.s3_up.wait()
                finally:
                    self.parked.discard(key)
                continue
            self.again[key] = min(outcome, self.again.get(key, outcome))
            return

    # --- processing one path ------------------------------------------------------------------

    async def _process(self, key: Key) -> float | _WaitForS3 | None:
        """One round for one journal row: None when done (or nothing can be done now), a delay
        to try again after, or :data:`WAIT_S3`."""
        editor_id, path = key
        row, known = await self.journal.get(editor_id, path)
        if row is None:
            return None
        location = Location.parse(row.location)
        object_key = location.key(editor_id, path)
        if row.op == DELETE:
            if not self.s3_up.is_set():
                return WAIT_S3
            try:
                await self.s3.delete_tree(location.bucket, object_key)
            except S3Failure as exc:
                return await self._failed(row, exc)
            again = await self.journal.deleted(row)
            if again:
                await self.journal.record(editor_id, row.location, [(SYNC, p) for p in again])
                for p in again:
                    self.schedule((editor_id, p), 0)
            return None

        data: bytes | None = None
        last_modified: str | None = None
        session = self.sessions.get(editor_id)
        if row.needs_read and session is not None:
            try:
                server = session.server
                if not server.endpoint:  # adopted during an AZ outage
                    server = await self._server(session) or server
                    if not server.endpoint:
                        raise Unreachable(f"{editor_id}: its Availability Zone is impaired")
                found = await self.contents.read(server, path)
            except Unreachable as exc:
                await self._server(session)  # it may have moved (an AZ outage and its end)
                attempts = await self.journal.failed(row, str(exc))
                return backoff(attempts)
            if found is None:
                await self.journal.to_delete(row)
                return 0.0
            entry, data = found
            if data is None:  # a directory: its files, each on its own
                await self.sweep(session, path, delay=self.debounce)
                await self.journal.done(row)
                return None
            last_modified = entry.last_modified
        elif row.content_hash is not None:
            data = await self.spool.get(row.content_hash)
            if data is None:
                log.error("backup of %s %s: spooled content is missing", editor_id, path)
                await self.journal.drop(row)
                return None
        else:
            # Still to be read, and the Workspace is not followed (starting, or just stopped):
            # its next start or stop settles it.
            return None

        digest = await self._hash(data)
        if known is not None and known.sha256 == digest and known.location == row.location:
            await self.journal.uploaded(
                row, digest=digest, size=len(data), last_modified=last_modified, wrote=False
            )
            return None
        if not self.s3_up.is_set():
            if row.needs_read:
                await self.journal.spooled(row, await self.spool.put(data))
            return WAIT_S3
        try:
            await self.s3.put(location.bucket, object_key, data)
        except S3Failure as exc:
            if row.needs_read:
                await self.journal.spooled(row, await self.spool.put(data))
            return await self._failed(row, exc)
        self.uploads += 1
        ended = await self.journal.uploaded(
            row, digest=digest, size=len(data), last_modified=last_modified, wrote=True
        )
        if ended and row.content_hash and not await self.journal.references(row.content_hash):
            await self.spool.discard(row.content_hash)
        return None

    async def _hash(self, data: bytes) -> str:
        if len(data) < _HASH_IN_THREAD:
            return sha256(data)
        return await self.blocking.run(sha256, data)

    async def _failed(self, row: BackupPending, exc: S3Failure) -> float | _WaitForS3:
        attempts = await self.journal.failed(row, str(exc))
        if isinstance(exc, S3Unavailable):
            if attempts < 3:
                self._s3_down(exc)
                return WAIT_S3
            try:
                await self.s3.ping()
            except S3Unavailable:
                self._s3_down(exc)
                return WAIT_S3
            # S3 answers, yet this one keeps failing: retry it alone, not as an outage.
        if attempts in (1, 3, 10) or attempts % 100 == 0:
            log.warning(
                "backup of %s %s failed (attempt %d): %s",
                row.editor_id,
                row.path,
                attempts,
                exc,
            )
        return backoff(attempts)

    # --- S3 health ----------------------------------------------------------------------------

    def _s3_down(self, exc: Exception) -> None:
        if self.s3_up.is_set():
            log.warning("S3 is unavailable (%s): changes are kept and retried", exc)
        self.s3_up.clear()
        if self.prober is None or self.prober.done():
            self.prober = asyncio.create_task(self._probe(), name="S3 probe")

    async def _probe(self) -> None:
        """Until S3 answers: try, backing off from 0.1 s to :data:`MAX_BACKOFF`."""
        delay = 0.1
        while not self.closed:
            try:
                await self.s3.ping()
            except S3Unavailable as exc:
                if self.s3_up.is_set():
                    log.warning("S3 is unavailable (%s)", exc)
                self.s3_up.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if not self.s3_up.is_set():
                log.info("S3 is available again")
            self.s3_up.set()
            return
