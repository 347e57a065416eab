"""The life of a Workspace: its state machine, its container, its Availability Zone.

States (as the Studio shows them)::

    CreateEditor ─> Starting ─(container healthy)─> Ready ─StopEditor─> Stopping ─> Idle
                        │                             │                             │
                        └─(start failed)─> Idle        └─DeleteEditor─> Deleting ─> (gone)
    Idle ─StartEditor─> Starting ─> Ready   (placed in another AZ, or another subnet; then
                                             Attaching ─> Attached if it was stopped attached)

Every transition is written to the store before the slow part begins, so a gateway that dies
mid-way finds a truthful state at its next start: :meth:`WorkspaceManager.adopt` keeps the
containers still running and marks the vanished ones Idle. Containers are reached only through
the :class:`Containers` contract; the Docker implementation lives in ``runtime/``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlmodel import Session, col, select

from emustudio.services.emr.common import InvalidRequest
from emustudio.services.emr.placement import Candidate, NoHealthySubnet, choose_subnet
from emustudio.store import Store
from emustudio.store.tables import EDITOR_RUNNING, Editor, Endpoint, Studio, Subnet, Tag, ZoneState

log = logging.getLogger(__name__)

RUNNING = EDITOR_RUNNING


def workspace_base_url(editor_id: str) -> str:
    """JupyterLab's ``base_url`` in a Workspace: the path the proxy serves it under."""
    return f"/workspaces/{editor_id}/"


@dataclass(frozen=True)
class ContainerSpec:
    editor_id: str
    studio_id: str
    subnet_id: str
    token: str
    base_url: str


class Containers(ABC):
    """What the Workspace manager needs of a container runtime."""

    @abstractmethod
    async def start(self, spec: ContainerSpec, progress: Callable[[str], None]) -> Endpoint:
        """Run the Workspace's JupyterLab on its subnet; its endpoint once it is healthy."""

    @abstractmethod
    async def stop(self, editor_id: str) -> None:
        """Stop and remove the container; nothing to do when there is none."""

    @abstractmethod
    async def running(self) -> dict[str, Endpoint]:
        """``editor_id -> endpoint`` of this gateway's running Workspace containers."""

    @abstractmethod
    async def disconnect(self, editor_id: str, subnet_id: str) -> None:
        """Take the container off its subnet network (an AZ outage)."""

    @abstractmethod
    async def reconnect(self, editor_id: str, subnet_id: str) -> Endpoint | None:
        """Put it back; its new endpoint, or None when the container is gone."""

    def on_exit(self, listener: Callable[[str, str], None]) -> None:  # noqa: B027 - optional
        """Call ``listener(editor_id, why)`` when a running container dies on its own."""

    #: Whether :meth:`put_files` works (a runtime that can write into its containers).
    puts_files = False

    async def put_files(self, editor_id: str, archive: bytes) -> None:
        """Unpack a tar archive into the Workspace's home folder, as its user's files, never
        replacing a folder by a file or a file by a folder."""
        raise NotImplementedError

    async def warm(self, studio_subnets: set[tuple[str, str]]) -> None:  # noqa: B027 - optional
        """Keep warm containers ready on these (Studio, subnet) pairs, if there is a pool."""

    async def drain(self, subnet_ids: set[str]) -> None:  # noqa: B027 - optional
        """Remove the warm containers of these subnets and stop refilling them (an outage)."""


class WorkspaceHooks(Protocol):
    """What other rooms do at a Workspace's transitions (the backup engine, for one: it has
    these methods, and is handed to the manager as it is).

    ``before_ready`` runs once the container is healthy and before the Workspace shows Ready
    (restore its files); ``before_stop`` runs before its container goes (flush its files);
    ``after_stop`` once its container is gone, whether stopped, deleted or dead on its own
    (close what served it: the kernel route); ``after_delete`` once its row is gone too. A
    hook that raises fails the start (``before_ready``) or is logged (the others): a stop or
    delete always completes.
    """

    async def before_ready(
        self,
        editor: Editor,
        endpoint: Endpoint,
        note: Callable[[str], None] | None = None,
        put_files: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        """The container answers at ``endpoint``; the Workspace is not Ready yet. ``note``
        adds a line to the start's progress; ``put_files`` unpacks a tar archive into its
        home folder (:meth:`Containers.put_files`), when the runtime can."""
        ...

    async def before_stop(self, editor: Editor) -> None:
        """The container still runs; it is about to be stopped."""
        ...

    async def after_stop(self, editor: Editor) -> None:
        """The container is gone (the row still says why: Stopping, Deleting, Idle)."""
        ...

    async def after_delete(self, editor: Editor) -> None:
        """The Workspace's row and container are gone."""
        ...


@dataclass
class Progress:
    """Start progress of one Workspace, for the Studio page's live stream."""

    events: list[tuple[float, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False


class WorkspaceManager:
    def __init__(
        self,
        store: Store,
        containers: Containers,
        *,
        region: str,
        base_url: Callable[[str], str] = workspace_base_url,
        hooks: Sequence[WorkspaceHooks] = (),
    ) -> None:
        self.store = store
        self.containers = containers
        self.region = region
        self.base_url = base_url
        self.tasks: set[asyncio.Task[None]] = set()
        self.progress: dict[str, Progress] = {}
        self.last_activity: dict[str, float] = {}
        self.hooks: list[WorkspaceHooks] = list(hooks)
        self.status_listeners: list[Callable[[str], None]] = []
        containers.on_exit(self.container_exited)

    # --- transitions --------------------------------------------------------------------------

    def new_token(self) -> str:
        return secrets.token_urlsafe(32)

    async def set_status(
        self,
        editor_id: str,
        status: str,
        reason: str | None = None,
        *,
        only_from: str | None = None,
        **changes: object,
    ) -> bool:
        """Write ``status`` (only if the Workspace is still ``only_from``, when given: a
        background step must not undo a user's stop); whether it was written."""

        def write(session: Session) -> bool:
            editor = session.get(Editor, editor_id)
            if editor is None or (only_from is not None and editor.status != only_from):
                return False
            editor.status = status
            editor.status_reason = reason
            editor.last_modified_at = time.time()
            for key, value in changes.items():
                setattr(editor, key, value)
            session.add(editor)
            return True

        if not await self.store.tx(write):
            return False
        for listener in self.status_listeners:
            listener(editor_id)  # the proxy's gate forgets what it decided from the old row
        self.note(editor_id, status if reason is None else f"{status}: {reason}")
        return True

    def note(self, editor_id: str, message: str) -> None:
        progress = self.progress.get(editor_id)
        if progress is None:
            return
        progress.events.append((time.time(), message))
        progress.changed.set()
        progress.changed = asyncio.Event()

    def launch(self, editor_id: str, then: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start the container in the background; the editor row already says Starting.
        ``then`` runs once it is Ready (a start's re-attach to its cluster)."""
        self.progress[editor_id] = Progress()
        task = asyncio.create_task(self._launch(editor_id, then), name=f"launch {editor_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _launch(
        self, editor_id: str, then: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        try:
            placed = await self.store.tx(lambda s: self._place(s, editor_id))
            if placed is None:
                return
            spec, zone = placed
            self.note(editor_id, f"Placed in {spec.subnet_id} ({zone})")
            endpoint = await self.containers.start(spec, lambda m: self.note(editor_id, m))
            editor = await self.store.tx(lambda s: s.get(Editor, editor_id))
            if editor is not None:
                put_files = (
                    functools.partial(self.containers.put_files, editor_id)
                    if self.containers.puts_files
                    else None
                )
                for hook in self.hooks:
                    await hook.before_ready(
                        editor, endpoint, lambda m: self.note(editor_id, m), put_files
                    )
            self.last_activity[editor_id] = time.monotonic()
            await self.set_status(editor_id, "Ready", endpoint=endpoint.netloc)
        except NoHealthySubnet as exc:
            await self.set_status(editor_id, "Idle", str(exc))
        except Exception as exc:
            log.exception("Workspace %s failed to start", editor_id)
            await self.containers.stop(editor_id)
            await self.set_status(editor_id, "Idle", f"The Workspace failed to start: {exc}")
        else:
            if then is not None:  # the Workspace is Ready: what follows does not undo that
                try:
                    await then()
                except Exception:
                    log.exception("Workspace %s: after its start", editor_id)
        finally:
            if (progress := self.progress.get(editor_id)) is not None:
                progress.done = True
                progress.changed.set()

    def _place(self, session: Session, editor_id: str) -> tuple[ContainerSpec, str] | None:
        editor = session.get(Editor, editor_id)
        if editor is None or editor.status != "Starting":
            return None
        studio = session.get(Studio, editor.studio_id)
        if studio is None:
            raise NoHealthySubnet("The Workspace's Studio no longer exists.")
        subnets = {
            s.id: s
            for s in session.exec(select(Subnet).where(col(Subnet.id).in_(studio.subnet_ids)))
        }
        candidates = [
            Candidate(sid, subnets[sid].availability_zone)
            for sid in studio.subnet_ids
            if sid in subnets
        ]
        failed = frozenset(z.name for z in session.exec(select(ZoneState)))
        previous = (
            Candidate(editor.subnet_id, editor.availability_zone)
            if editor.subnet_id and editor.availability_zone and editor.previous_zones
            else None
        )
        requested = [c for c in candidates if c.subnet_id == editor.subnet_id]
        if previous is None and requested and requested[0].availability_zone not in failed:
            chosen = requested[0]  # the subnet asked for at CreateEditor
        else:
            chosen = choose_subnet(candidates, previous=previous, failed_zones=failed)
        editor.subnet_id = chosen.subnet_id
        editor.availability_zone = chosen.availability_zone
        editor.previous_zones = [*editor.previous_zones, chosen.availability_zone][-10:]
        editor.token = self.new_token()
        session.add(editor)
        spec = ContainerSpec(
            editor.id, editor.studio_id, chosen.subnet_id, editor.token, self.base_url(editor.id)
        )
        return spec, chosen.availability_zone

    async def _before_stop(self, editor_id: str) -> None:
        editor = await self.store.tx(lambda s: s.get(Editor, editor_id))
        if editor is None or editor.endpoint is None:
            return
        for hook in self.hooks:
            try:
                await hook.before_stop(editor)
            except Exception:
                log.exception("before-stop hook of %s failed", editor_id)

    async def _after_stop(self, editor_id: str) -> None:
        editor = await self.store.tx(lambda s: s.get(Editor, editor_id))
        if editor is None:
            return
        for hook in self.hooks:
            try:
                await hook.after_stop(editor)
            except Exception:
                log.exception("after-stop hook of %s failed", editor_id)

    async def stop(self, editor_id: str, *, reason: str | None = None) -> None:
        await self._before_stop(editor_id)
        await self.set_status(editor_id, "Stopping", reason)
        await self.containers.stop(editor_id)
        await self._after_stop(editor_id)
        self.last_activity.pop(editor_id, None)
        await self.set_status(editor_id, "Idle", reason, endpoint=None)

    async def delete(self, editor_id: str) -> None:
        await self._before_stop(editor_id)
        await self.set_status(editor_id, "Deleting")
        await self.containers.stop(editor_id)
        await self._after_stop(editor_id)

        def remove(session: Session) -> Editor | None:
            editor = session.get(Editor, editor_id)
            for tag in session.exec(select(Tag).where(Tag.resource_id == editor_id)):
                session.delete(tag)
            if editor is not None:
                session.delete(editor)
            return editor

        removed = await self.store.tx(remove)
        if removed is not None:
            for hook in self.hooks:
                try:
                    await hook.after_delete(removed)
                except Exception:
                    log.exception("after-delete hook of %s failed", editor_id)
        self.progress.pop(editor_id, None)
        self.last_activity.pop(editor_id, None)

    def background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def container_exited(self, editor_id: str, why: str) -> None:
        """A running Workspace's container died on its own (crash, OOM kill): show it Idle."""
        self.background(self._exited(editor_id, why), f"exited {editor_id}")

    async def _exited(self, editor_id: str, why: str) -> None:
        editor = await self.store.tx(lambda s: s.get(Editor, editor_id))
        if editor is None or editor.status not in RUNNING:
            return  # starting, stopping or deleting: that path handles its container
        await self.containers.stop(editor_id)  # remove what is left of it
        await self._after_stop(editor_id)
        self.last_activity.pop(editor_id, None)
        await self.set_status(editor_id, "Idle", f"The Workspace stopped: {why}.", endpoint=None)

    # --- gateway start-up and outages --------------------------------------------------------

    async def adopt(self) -> None:
        """After a gateway restart: keep running containers, mark vanished ones Idle."""
        running = await self.containers.running()
        editors = await self.store.tx(
            lambda s: list(s.exec(select(Editor).where(Editor.region == self.region)))
        )
        for editor in editors:
            if editor.status in RUNNING and editor.id in running:
                await self.set_status(
                    editor.id,
                    editor.status,
                    editor.status_reason,
                    endpoint=running[editor.id].netloc,
                )
                self.last_activity[editor.id] = time.monotonic()
            elif editor.status == "Deleting":
                await self.delete(editor.id)
            elif editor.status != "Idle":
                await self.containers.stop(editor.id)
                await self.set_status(
                    editor.id, "Idle", "The Workspace stopped while the gateway was down.",
                    endpoint=None,
                )  # fmt: skip
        await self.sync_pools()

    async def sync_pools(self) -> None:
        """Warm pools on the subnets of this region's Studios outside impaired AZs; none
        elsewhere (after a Studio's creation, change or deletion, an outage and its end)."""

        def subnets(session: Session) -> tuple[set[tuple[str, str]], set[str]]:
            failed = {z.name for z in session.exec(select(ZoneState))}
            every = list(session.exec(select(Subnet).where(Subnet.region == self.region)))
            healthy = {s.id for s in every if s.availability_zone not in failed}
            wanted = {
                (studio.id, sid)
                for studio in session.exec(select(Studio).where(Studio.region == self.region))
                for sid in studio.subnet_ids
                if sid in healthy
            }
            return wanted, {s.id for s in every} - {sid for _, sid in wanted}

        wanted, others = await self.store.tx(subnets)
        await self.containers.drain(others)
        await self.containers.warm(wanted)

    async def fail_zone(self, zone: str) -> list[str]:
        """Mark ``zone`` failed; its running Workspaces lose their network."""

        def mark(session: Session) -> list[Editor]:
            session.merge(ZoneState(name=zone, region=self.region, failed_at=time.time()))
            return list(
                session.exec(
                    select(Editor).where(
                        Editor.availability_zone == zone, col(Editor.status).in_(RUNNING)
                    )
                )
            )

        hit = await self.store.tx(mark)
        await self.sync_pools()  # the impaired zone's pools are drained
        for editor in hit:
            assert editor.subnet_id is not None
            await self.containers.disconnect(editor.id, editor.subnet_id)
            await self.set_status(
                editor.id, editor.status, f"Unhealthy: Availability Zone {zone} is impaired.",
                endpoint=None,
            )  # fmt: skip
        return [e.id for e in hit]

    async def restore_zone(self, zone: str) -> list[str]:
        """End the outage; Workspaces still running there get their network back."""

        def clear(session: Session) -> list[Editor]:
            state = session.get(ZoneState, zone)
            if state is not None:
                session.delete(state)
            return list(
                session.exec(
                    select(Editor).where(
                        Editor.availability_zone == zone, col(Editor.status).in_(RUNNING)
                    )
                )
            )

        restored = []
        for editor in await self.store.tx(clear):
            assert editor.subnet_id is not None
            endpoint = await self.containers.reconnect(editor.id, editor.subnet_id)
            if endpoint is None:
                await self.set_status(editor.id, "Idle", "The Workspace's container is gone.")
            else:
                await self.set_status(editor.id, editor.status, None, endpoint=endpoint.netloc)
                restored.append(editor.id)
        await self.sync_pools()
        return restored

    async def failed_zones(self) -> set[str]:
        return await self.store.tx(lambda s: {z.name for z in s.exec(select(ZoneState))})

    # --- activity --------------------------------------------------------------------------

    def touch(self, editor_id: str) -> None:
        self.last_activity[editor_id] = time.monotonic()

    async def cull_idle(self, idle_seconds: float) -> list[str]:
        """Stop Workspaces nobody used for ``idle_seconds`` (EMR Studio stops idle ones too)."""
        now = time.monotonic()
        stale = [e for e, t in list(self.last_activity.items()) if now - t > idle_seconds]
        for editor_id in stale:
            await self.stop(editor_id, reason=f"Stopped after {int(idle_seconds)} s without use.")
        return stale

    async def watch(self, editor_id: str) -> AsyncIterator[str]:
        """Start progress messages, as they happen, until the start ends."""
        progress = self.progress.get(editor_id)
        if progress is None:
            return
        seen = 0
        while True:
            changed = progress.changed
            while seen < len(progress.events):
                yield progress.events[seen][1]
                seen += 1
            if progress.done:
                return
            await changed.wait()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def editor_not_found(editor_id: str) -> InvalidRequest:
    return InvalidRequest(f"Workspace {editor_id} does not exist.")
