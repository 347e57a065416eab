"""Workspace containers: one JupyterLab server per EMR Studio Workspace.

:class:`WorkspaceRuntime` is the contract the Workspace service codes against (JupyterHub's
Spawner, reduced: ``start`` returns only once the server answers, ``state`` is ``poll``, ``adopt``
replaces ``load_state``); :class:`DockerWorkspaces` implements it on Docker.

States of a Workspace container (:class:`Phase`), and what moves it::

                    start()                      answers /emustudio/ready
      ABSENT ───────────────▶ CREATED ──▶ STARTING ─────────────────────────▶ HEALTHY
        ▲                                   │                                    │
        │     start fails: the server       │ die, or                            │
        │     exits or misses               │ start_timeout                      │ die (crash,
        ├──── start_timeout; the       ◀────┘                                    │ OOM kill):
        │     container is removed and                                           │ on_exit
        │     WorkspaceStartError says why                                       ▼ listeners
        └────────────────────── stop(): from any phase ◀────────────────────── EXITED

(UNHEALTHY remains for images of an older emustudio whose Docker health check is still on.)

* ``start(spec)`` is idempotent: a HEALTHY container started from the same spec is returned as
  is, a STARTING one is waited for, anything else under the Workspace's name (exited, created,
  unhealthy, or started from a different spec) is replaced.
* ``stop(workspace_id)`` gives the server ``stop_timeout`` seconds to shut down (SIGTERM), then
  removes the container; a missing container, or one already being removed, counts as done.
  A ``start`` still waiting for that container fails with reason ``stopped``.
* ``adopt()`` lists this gateway's Workspace containers after a restart, from their labels.
* ``disconnect(workspace_id)`` / ``reconnect(workspace_id)`` take a running container off its
  subnet network and put it back (an AZ outage and its end); the phase does not change, the
  endpoint is None while disconnected.

Readiness is learnt once, liveness from Docker's events; nothing polls a running container.
A starting container is probed by the gateway itself, ``GET <base_url>emustudio/ready`` at its
address every ``ready_poll`` seconds (50 ms: a refused connection costs microseconds, and the
server is noticed within one poll of listening, where JupyterHub's backoff is 0.6-3.3 s late).
Once it answers, its container id is remembered as ready and never probed again (a fresh
runtime, after a gateway restart, probes each running container once).  Docker's own
HEALTHCHECK is switched off on every container: it ran an exec in every Workspace every 2 s,
about half a core for ten idle Workspaces between the containers and dockerd.

The runtime keeps one events stream for all its containers (opened through the
:class:`DockerExecutor`, read by one daemon thread, dispatched on the event loop): a waiter
re-inspects its container on each of its events, so the inspect result, never the event text,
decides, and a ``die`` of a ready container that nobody is stopping goes to the
:meth:`DockerWorkspaces.on_exit` listeners (the Workspace then shows it stopped).  If the
stream breaks (dockerd restart), waiters re-open it and re-inspect, and the listeners' stream is
re-opened, so nothing is missed.

Each container is named ``emustudio-<instance>-<workspace id>``, labelled
``emustudio.instance``, ``emustudio.kind`` (``workspace``), ``emustudio.workspace-id``,
``emustudio.studio-id``, ``emustudio.subnet-id``, ``emustudio.network`` and ``emustudio.spec``
(a hash of its spec),
attached to its subnet's network only (no default bridge), publishes no port (the gateway, the
Studio's ENI, reaches it at its address on the subnet network), has the spec's memory and CPU
limits, runs under Docker's init, with no capabilities and no new privileges, and is never
restarted by Docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import hashlib
import io
import json
import logging
import re
import tarfile
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import L_INSTANCE, L_KIND, L_SUBNET_ID, LABEL
from emustudio.runtime.pool import L_POOL, PoolKey, WarmPool, claim

if TYPE_CHECKING:
    from emustudio.config import Settings

__all__ = [
    "JUPYTER_PORT",
    "KIND_WORKSPACE",
    "ContainerState",
    "DockerWorkspaces",
    "Phase",
    "StartProgress",
    "StartStep",
    "WorkspaceEndpoint",
    "WorkspaceRuntime",
    "WorkspaceSpec",
    "WorkspaceStartError",
]

log = logging.getLogger(__name__)

KIND_WORKSPACE = "workspace"
KIND_WORKSPACE_IMAGE = "workspace-image"
L_WORKSPACE_ID = f"{LABEL}.workspace-id"
L_STUDIO_ID = f"{LABEL}.studio-id"  # runtime/pool.py labels pooled containers with it too
L_SPEC = f"{LABEL}.spec"
L_NETWORK = f"{LABEL}.network"
JUPYTER_PORT = 8888

# Environment the image reads (compose/workspace/jupyter_server_config.py); the spec's own env
# cannot override these. The token itself is never passed: only its SHA-256, which the server
# checks presented tokens against (a kernel can read /proc/1/environ; docs/decisions.md).
ENV_TOKEN_SHA256 = "EMUSTUDIO_JUPYTER_TOKEN_SHA256"
ENV_BASE_URL = "EMUSTUDIO_BASE_URL"
ENV_ALLOW_ORIGIN = "EMUSTUDIO_ALLOW_ORIGIN"
ENV_WORKSPACE_ID = "EMUSTUDIO_WORKSPACE_ID"
ENV_STUDIO_ID = "EMUSTUDIO_STUDIO_ID"

_WORKSPACE_ID = re.compile(r"^e-[A-Z0-9]{25}$")
# Generous: JVM and Spark threads count as pids too; this only stops runaway forks.
_PIDS_LIMIT = 8192
_LOG_TAIL = 20
_EVENTS = ["start", "die", "destroy", "oom", "health_status"]


class Phase(enum.StrEnum):
    ABSENT = "absent"
    CREATED = "created"
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    EXITED = "exited"


class StartStep(enum.StrEnum):
    """Start progress, in order (pulling only for an image that is not present).

    ``HEALTHY`` is kept as the name of "its server answers" (there is no Docker health check).
    """

    PULLING = "pulling"
    CREATING = "creating"
    STARTING = "starting"
    WAITING = "waiting"
    HEALTHY = "healthy"


_STEP_PERCENT = {
    StartStep.PULLING: 10,
    StartStep.CREATING: 20,
    StartStep.STARTING: 40,
    StartStep.WAITING: 60,
    StartStep.HEALTHY: 100,
}


@dataclass(frozen=True)
class WorkspaceSpec:
    """Everything a Workspace container is made from; the caller owns every value.

    ``token`` is the JupyterLab token, random and known only to the gateway; ``network`` is the
    subnet's Docker network (:attr:`SubnetNetwork.name`).  ``memory`` takes Docker's units
    ("2g", "512m"); ``cpus`` may be fractional.
    """

    workspace_id: str
    studio_id: str
    subnet_id: str
    network: str
    token: str
    image: str
    memory: str = "2g"
    cpus: float = 1.0
    base_url: str = "/"
    allow_origin: str = ""
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _WORKSPACE_ID.match(self.workspace_id):
            raise ValueError(f"not a Workspace id: {self.workspace_id!r}")
        if len(self.token) < 16:
            raise ValueError("the Workspace token must have at least 16 characters")
        if self.cpus <= 0:
            raise ValueError("cpus must be positive")

    def digest(self) -> str:
        """A hash of the spec, kept as a label to tell whether a container matches it."""
        data = {
            **{k: v for k, v in self.__dict__.items() if k not in ("env", "token")},
            "env": dict(sorted(self.env.items())),
            "token": hashlib.sha256(self.token.encode()).hexdigest(),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WorkspaceEndpoint:
    """Where the gateway reaches a Workspace's server: its address on the subnet network."""

    ip: str
    port: int = JUPYTER_PORT

    def url(self, base_url: str = "/") -> str:
        return f"http://{self.ip}:{self.port}{base_url}"


@dataclass(frozen=True)
class ContainerState:
    """A Workspace container as Docker sees it now (``phase`` ABSENT: there is none)."""

    workspace_id: str
    phase: Phase
    container_id: str | None = None
    studio_id: str | None = None
    subnet_id: str | None = None
    endpoint: WorkspaceEndpoint | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str | None = None


@dataclass(frozen=True)
class StartProgress:
    """One step of a start, for the Workspace's progress stream (JupyterHub's progress events)."""

    workspace_id: str
    step: StartStep
    message: str

    @property
    def progress(self) -> int:
        return _STEP_PERCENT[self.step]


ProgressCallback = Callable[[StartProgress], object]


class WorkspaceStartError(RuntimeError):
    """A Workspace container did not become healthy; its container has been removed.

    ``reason`` is one of ``image`` (missing, not pullable, or not a Workspace image),
    ``network`` (the subnet network is gone), ``exited``, ``unhealthy``, ``timeout``,
    ``stopped`` (stop() or someone else removed it meanwhile).  ``logs`` holds the last lines
    the server wrote, when there was a server.
    """

    def __init__(self, workspace_id: str, reason: str, message: str, logs: str = "") -> None:
        self.workspace_id = workspace_id
        self.reason = reason
        self.logs = logs
        detail = f"\n--- last lines of the server's log ---\n{logs}" if logs else ""
        super().__init__(f"Workspace {workspace_id}: {message}{detail}")


# The Workspace image's user (uid and gid) and its home, JupyterLab's root
# (compose/Dockerfile.workspace, compose/workspace/jupyter_server_config.py).
WORKSPACE_UID = 1000
WORKSPACE_HOME = "/home/emr-notebook"


def _owned(archive: bytes, uid: int) -> bytes:
    """The tar ``archive`` with every member owned by ``uid`` (and the group of that id),
    only plain files and folders kept, modes without set-id bits."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member in source:
            if not (member.isreg() or member.isdir()):
                continue
            member.uid = member.gid = uid
            member.uname = member.gname = ""
            member.mode &= 0o777
            target.addfile(member, source.extractfile(member) if member.isreg() else None)
    return out.getvalue()


class WorkspaceRuntime(ABC):
    """Runs Workspace servers.  See the module docstring for the states and what moves them."""

    @abstractmethod
    async def start(
        self, spec: WorkspaceSpec, progress: ProgressCallback | None = None
    ) -> WorkspaceEndpoint:
        """Start (or find running) the Workspace's server; return once it answers.

        Raises :class:`WorkspaceStartError` (the container removed) when it cannot be.
        """

    @abstractmethod
    async def wait_ready(
        self, workspace_id: str, timeout: float | None = None
    ) -> WorkspaceEndpoint:
        """Wait until an existing (e.g. adopted, STARTING) container's server answers."""

    @abstractmethod
    async def stop(self, workspace_id: str) -> None:
        """Stop and remove the Workspace's container; done if there is none."""

    @abstractmethod
    async def state(self, workspace_id: str) -> ContainerState:
        """The Workspace container's current state (phase ABSENT if there is none)."""

    @abstractmethod
    async def adopt(self) -> list[ContainerState]:
        """All of this gateway's Workspace containers, in any phase, e.g. after a restart."""

    @abstractmethod
    async def disconnect(self, workspace_id: str) -> None:
        """Take the container off its subnet network (an AZ outage); it keeps running."""

    @abstractmethod
    async def reconnect(self, workspace_id: str) -> WorkspaceEndpoint | None:
        """Put it back on its subnet network; its new endpoint, or None if it is gone."""

    def on_exit(self, listener: Callable[[str, str], None]) -> None:  # noqa: B027 - optional
        """Call ``listener(workspace_id, why)`` when a ready container dies unasked."""

    async def put_files(self, workspace_id: str, archive: bytes) -> None:
        """Unpack a tar ``archive`` into the Workspace's home folder, owned by its user."""
        raise NotImplementedError

    @property
    def pool_size(self) -> int:
        """Warm containers kept per pool key (runtime/pool.py); 0: none."""
        return 0

    def fill_pool(self, key: PoolKey) -> None:  # noqa: B027 - optional
        """Top ``key``'s warm pool up in the background."""

    async def drain_pool(self, subnet_ids: set[str]) -> None:  # noqa: B027 - optional
        """Remove the warm containers of ``subnet_ids``; they are not refilled until asked."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the runtime holds (streams, threads); containers keep running."""


class DockerWorkspaces(WorkspaceRuntime):
    """:class:`WorkspaceRuntime` on Docker; every docker call goes through ``docker``."""

    def __init__(
        self,
        docker: DockerExecutor,
        instance_id: str,
        *,
        start_timeout: float = 120.0,
        stop_timeout: int = 5,
        ready_poll: float = 0.05,
        pool_size: int = 0,
    ) -> None:
        self._docker = docker
        self._instance_id = instance_id
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.ready_poll = ready_poll
        self.pool = WarmPool(
            docker,
            instance_id,
            pool_size,
            create_options=_create_options,
            start_timeout=start_timeout,
            ready_poll=ready_poll,
        )
        # Container id -> spec digest of the pooled containers this runtime claimed (their
        # labels are the pool's): start() again with the same spec finds them running.
        self._claimed: dict[str, str] = {}
        self._events = _EventStream(
            docker,
            {
                "type": "container",
                "label": [f"{L_INSTANCE}={instance_id}", f"{L_KIND}={KIND_WORKSPACE}"],
                "event": _EVENTS,
            },
            on_event=self._on_event,
            on_lost=self._on_lost,
        )
        # Container id -> Workspace id of the servers seen answering: never probed again.
        self._ready: dict[str, str] = {}
        self._exit_listeners: list[Callable[[str, str], None]] = []
        self._closed = False
        self._reopening: asyncio.Future[None] | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Workspaces whose stop() is running: a start waiting on one fails as "stopped".
        self._stopping: set[str] = set()

    @classmethod
    def from_settings(
        cls, docker: DockerExecutor, instance_id: str, settings: Settings
    ) -> DockerWorkspaces:
        return cls(
            docker,
            instance_id,
            start_timeout=settings.workspace_start_timeout,
            stop_timeout=settings.workspace_stop_timeout,
            ready_poll=settings.workspace_ready_poll,
            pool_size=settings.workspace_pool_size,
        )

    def container_name(self, workspace_id: str) -> str:
        return f"emustudio-{self._instance_id}-{workspace_id}"

    # -- contract --------------------------------------------------------------------------

    async def start(
        self, spec: WorkspaceSpec, progress: ProgressCallback | None = None
    ) -> WorkspaceEndpoint:
        wid = spec.workspace_id
        name = self.container_name(wid)

        def report(step: StartStep, message: str) -> None:
            log.debug("workspace %s: %s", wid, message)
            if progress is not None:
                progress(StartProgress(wid, step, message))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        # Subscribe before anything can happen to the container, so no event is missed.
        await self._events.open()
        with self._events.subscription(name) as queue:
            async with self._lock(wid):
                await self._ensure_image(spec, report)
                if not await self._claim(spec, report):
                    await self._ensure_started(spec, report)
            report(StartStep.WAITING, "Waiting for JupyterLab to answer")
            try:
                endpoint = await self._wait(wid, queue, deadline, spec.network)
            except WorkspaceStartError as exc:
                if exc.reason != "stopped":
                    await self._remove(name)
                raise
        report(StartStep.HEALTHY, f"JupyterLab is up at {endpoint.ip}:{endpoint.port}")
        return endpoint

    async def wait_ready(
        self, workspace_id: str, timeout: float | None = None
    ) -> WorkspaceEndpoint:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.start_timeout if timeout is None else timeout)
        await self._events.open()
        with self._events.subscription(self.container_name(workspace_id)) as queue:
            return await self._wait(workspace_id, queue, deadline, None)

    async def stop(self, workspace_id: str) -> None:
        name = self.container_name(workspace_id)
        timeout = self.stop_timeout

        def _stop(client: docker.DockerClient) -> bool:
            try:
                container = client.containers.get(name)
            except NotFound:
                return False
            with contextlib.suppress(NotFound):
                try:
                    container.stop(timeout=timeout)
                except APIError as exc:  # e.g. 409: already being removed
                    if exc.status_code != 409:
                        raise
            _remove_sync(container)
            return True

        self._stopping.add(workspace_id)
        # Forgotten before the container goes, so that its "die" is not taken for a crash.
        for container_id in [c for c, w in self._ready.items() if w == workspace_id]:
            del self._ready[container_id]
        try:
            async with self._lock(workspace_id):
                if await self._docker.run(_stop):
                    log.info("stopped workspace %s (%s)", workspace_id, name)
        finally:
            self._stopping.discard(workspace_id)

    async def put_files(self, workspace_id: str, archive: bytes) -> None:
        """Docker unpacks it (``PUT /containers/{id}/archive``), outside the container: no
        work for the Workspace's one CPU, and about 15x faster than its server unpacking the
        same bytes.  Every member is made the Workspace user's here (Docker's ``copyUIDGID``
        looks the image's user up on the host, and fails); ``noOverwriteDirNonDir`` refuses to
        replace a folder by a file or a file by a folder, where Docker would otherwise remove
        what was there.  docker-py's ``put_archive`` does not pass it, hence its low-level
        client here."""
        name = self.container_name(workspace_id)

        def _put(client: docker.DockerClient) -> None:
            api = client.api
            response = api._put(
                api._url("/containers/{0}/archive", name),
                params={"path": WORKSPACE_HOME, "noOverwriteDirNonDir": "true"},
                data=_owned(archive, WORKSPACE_UID),
            )
            api._raise_for_status(response)

        await self._docker.run(_put)

    async def state(self, workspace_id: str) -> ContainerState:
        attrs = await self._inspect(self.container_name(workspace_id))
        return await self._current(workspace_id, attrs)

    def on_exit(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(workspace_id, why)`` when a ready container dies unasked (a crash,
        an OOM kill, ``docker stop`` by hand); not for stop() nor for a failing start."""
        self._exit_listeners.append(listener)

    async def adopt(self) -> list[ContainerState]:
        # From now on the events stream stays open: it is how exits are noticed.
        await self._events.open()
        filters = {"label": [f"{L_INSTANCE}={self._instance_id}", f"{L_KIND}={KIND_WORKSPACE}"]}

        def _list(client: docker.DockerClient) -> list[dict[str, Any]]:
            out = []
            for summary in client.api.containers(all=True, filters=filters):
                with contextlib.suppress(NotFound):
                    out.append(client.api.inspect_container(summary["Id"]))
            return out

        states = await asyncio.gather(
            *(
                self._current(self._workspace_id(attrs["Config"]["Labels"], attrs["Name"]), attrs)
                for attrs in await self._docker.run(_list)
            )
        )
        return [s for s in states if s.workspace_id]

    async def disconnect(self, workspace_id: str) -> None:
        name = self.container_name(workspace_id)

        def _disconnect(client: docker.DockerClient) -> None:
            try:
                attrs = client.api.inspect_container(name)
            except NotFound:
                return
            for network in (attrs.get("NetworkSettings") or {}).get("Networks") or {}:
                with contextlib.suppress(NotFound):
                    client.api.disconnect_container_from_network(name, network, force=True)

        async with self._lock(workspace_id):
            await self._docker.run(_disconnect)
        log.info("workspace %s: disconnected from its subnet network", workspace_id)

    async def reconnect(self, workspace_id: str) -> WorkspaceEndpoint | None:
        name = self.container_name(workspace_id)

        def _reconnect(client: docker.DockerClient) -> dict[str, Any] | None:
            try:
                attrs = client.api.inspect_container(name)
            except NotFound:
                return None
            network = attrs["Config"]["Labels"].get(L_NETWORK) or attrs["HostConfig"].get(
                "NetworkMode"
            )
            if network not in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}):
                try:
                    client.api.connect_container_to_network(name, network)
                except NotFound:
                    return None  # the container, or its network, is gone
                return dict(client.api.inspect_container(name))
            return dict(attrs)

        async with self._lock(workspace_id):
            attrs = await self._docker.run(_reconnect)
        state = _state(workspace_id, attrs)
        log.info("workspace %s: reconnected (%s)", workspace_id, state.endpoint)
        return state.endpoint

    async def close(self) -> None:
        self._closed = True
        self._events.close()
        await self.pool.close()

    @property
    def pool_size(self) -> int:
        return self.pool.size

    def fill_pool(self, key: PoolKey) -> None:
        self.pool.fill(key)

    async def drain_pool(self, subnet_ids: set[str]) -> None:
        await self.pool.drain(subnet_ids)

    def pool_key(self, spec: WorkspaceSpec) -> PoolKey:
        return PoolKey(
            spec.studio_id, spec.subnet_id, spec.network, spec.image, spec.memory, spec.cpus
        )

    # -- steps -----------------------------------------------------------------------------

    def _lock(self, workspace_id: str) -> asyncio.Lock:
        lock = self._locks.get(workspace_id)
        if lock is None:
            lock = self._locks[workspace_id] = asyncio.Lock()
        return lock

    async def _ensure_image(
        self, spec: WorkspaceSpec, report: Callable[[StartStep, str], None]
    ) -> None:
        def _usable(client: docker.DockerClient) -> bool | None:
            # Built by `emustudio images build`, or FROM such an image (labels are inherited):
            # it serves /emustudio/ready, which readiness needs.
            try:
                image = client.images.get(spec.image)
            except ImageNotFound:
                return None
            return (image.labels or {}).get(L_KIND) == KIND_WORKSPACE_IMAGE

        usable = await self._docker.run(_usable)
        if usable is None:
            if spec.image.startswith(("emustudio/", "sha256:")):
                raise WorkspaceStartError(
                    spec.workspace_id,
                    "image",
                    f"image {spec.image} is not built; run `emustudio images build`",
                )
            report(StartStep.PULLING, f"Pulling {spec.image}")
            try:
                await self._docker.run(lambda client: client.images.pull(spec.image))
            except Exception as exc:  # APIError, or the daemon's connection errors
                raise WorkspaceStartError(
                    spec.workspace_id, "image", f"image {spec.image} cannot be pulled: {exc}"
                ) from exc
            usable = await self._docker.run(_usable)
        if not usable:
            raise WorkspaceStartError(
                spec.workspace_id,
                "image",
                f"image {spec.image} is not an emustudio Workspace image (label"
                f" {L_KIND}={KIND_WORKSPACE_IMAGE}): build it FROM emustudio/workspace",
            )

    async def _claim(self, spec: WorkspaceSpec, report: Callable[[StartStep, str], None]) -> bool:
        """Start from a warm pooled container if there is one (True), else leave it to a cold
        start; either way the subnet's pool is topped up afterwards."""
        if self.pool.size == 0:
            return False
        key = self.pool_key(spec)
        name = self.container_name(spec.workspace_id)
        self.pool.fill(key, delay=self.pool.refill_delay)
        if not all(k.startswith("EMUSTUDIO_") for k in spec.env):
            return False  # a claim carries only EMUSTUDIO_* variables
        if await self._inspect(name) is not None:
            return False  # its own container exists: start() is idempotent on it
        warm = self.pool.take(key)
        if warm is None:
            report(StartStep.CREATING, "No warm JupyterLab in this subnet's pool: a cold start")
            return False

        def _rename(client: docker.DockerClient) -> None:
            client.api.rename(warm.container_id, name)

        identity = {ENV_WORKSPACE_ID: spec.workspace_id, ENV_STUDIO_ID: spec.studio_id}
        try:
            await self._docker.run(_rename)
            accepted = await claim(
                warm,
                token=spec.token,
                base_url=spec.base_url,
                allow_origin=spec.allow_origin,
                env={**spec.env, **identity},
            )
        except (NotFound, APIError) as exc:
            log.warning("workspace %s: warm %s not claimed: %s", spec.workspace_id, warm.name, exc)
            accepted = False
        if not accepted:
            await self._remove(warm.container_id)  # taken: never pooled again
            report(StartStep.CREATING, "The warm JupyterLab did not answer: a cold start")
            return False
        self._claimed[warm.container_id] = spec.digest()
        log.info("workspace %s: claimed warm container %s", spec.workspace_id, warm.name)
        report(StartStep.STARTING, "Warm start: claimed a pre-started JupyterLab of the subnet")
        return True

    async def _ensure_started(
        self, spec: WorkspaceSpec, report: Callable[[StartStep, str], None]
    ) -> None:
        """Leave a container from ``spec`` running (or starting) under the Workspace's name."""
        name = self.container_name(spec.workspace_id)
        digest = spec.digest()
        attrs = await self._inspect(name)
        if attrs is not None:
            status = attrs["State"]["Status"]
            same = (
                attrs["Config"]["Labels"].get(L_SPEC) == digest
                or self._claimed.get(attrs["Id"]) == digest
            )
            if same and status == "running":
                health = (attrs["State"].get("Health") or {}).get("Status")
                if health != "unhealthy":
                    log.info("workspace %s: container %s already running", spec.workspace_id, name)
                    return
            if not (same and status == "created"):
                log.info(
                    "workspace %s: replacing container %s (%s)", spec.workspace_id, name, status
                )
                await self._remove(name)
                attrs = None
        if attrs is None:
            report(StartStep.CREATING, "Creating the Workspace container")
            await self._create(spec, digest)
        report(StartStep.STARTING, "Starting JupyterLab")

        def _start(client: docker.DockerClient) -> None:
            client.api.start(name)

        try:
            await self._docker.run(_start)
        except NotFound as exc:
            raise WorkspaceStartError(
                spec.workspace_id, "stopped", "the container was removed while starting"
            ) from exc

    async def _create(self, spec: WorkspaceSpec, digest: str) -> None:
        name = self.container_name(spec.workspace_id)
        labels = {
            L_INSTANCE: self._instance_id,
            L_KIND: KIND_WORKSPACE,
            L_WORKSPACE_ID: spec.workspace_id,
            L_STUDIO_ID: spec.studio_id,
            L_SUBNET_ID: spec.subnet_id,
            L_SPEC: digest,
            L_NETWORK: spec.network,
        }
        environment = {
            **spec.env,
            ENV_TOKEN_SHA256: hashlib.sha256(spec.token.encode()).hexdigest(),
            ENV_BASE_URL: spec.base_url,
            ENV_ALLOW_ORIGIN: spec.allow_origin,
            ENV_WORKSPACE_ID: spec.workspace_id,
            ENV_STUDIO_ID: spec.studio_id,
        }

        def _create_sync(client: docker.DockerClient) -> None:
            try:
                client.networks.get(spec.network)
            except NotFound as exc:
                raise WorkspaceStartError(
                    spec.workspace_id,
                    "network",
                    f"subnet network {spec.network} ({spec.subnet_id}) does not exist",
                ) from exc
            try:
                client.containers.create(
                    spec.image,
                    name=name,
                    labels=labels,
                    environment=environment,
                    **_create_options(spec.network, spec.memory, spec.cpus),
                )
            except APIError as exc:
                if exc.status_code != 409:  # 409: created meanwhile by another start
                    raise

        await self._docker.run(_create_sync)
        log.info("workspace %s: created container %s on %s", spec.workspace_id, name, spec.network)

    async def _wait(
        self,
        workspace_id: str,
        queue: asyncio.Queue[dict[str, Any] | None],
        deadline: float,
        network: str | None,
    ) -> WorkspaceEndpoint:
        """Until HEALTHY: probe every ``ready_poll`` s while the server may be coming up, and
        re-inspect on each of the container's events (it died, it was removed...)."""
        loop = asyncio.get_running_loop()
        name = self.container_name(workspace_id)
        attrs = await self._inspect(name)
        while True:
            current = await self._current(workspace_id, attrs, network)
            if current.phase is Phase.HEALTHY:
                if current.endpoint is None:
                    raise WorkspaceStartError(
                        workspace_id, "network", "the container has no address on its network"
                    )
                return current.endpoint
            if current.phase is Phase.ABSENT or workspace_id in self._stopping:
                raise WorkspaceStartError(
                    workspace_id, "stopped", "the Workspace was stopped while starting"
                )
            if current.phase in (Phase.EXITED, Phase.UNHEALTHY):
                what = (
                    f"JupyterLab exited with code {current.exit_code}"
                    + (" (out of memory)" if current.oom_killed else "")
                    if current.phase is Phase.EXITED
                    else "JupyterLab did not pass its health check"
                )
                reason = "exited" if current.phase is Phase.EXITED else "unhealthy"
                raise WorkspaceStartError(workspace_id, reason, what, await self._logs(name))
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WorkspaceStartError(
                    workspace_id,
                    "timeout",
                    f"JupyterLab was not ready within {self.start_timeout:.0f} s",
                    await self._logs(name),
                )
            probing = current.phase is Phase.STARTING and current.endpoint is not None
            try:
                event = await asyncio.wait_for(
                    queue.get(), min(remaining, self.ready_poll) if probing else remaining
                )
            except TimeoutError:
                if loop.time() >= deadline:
                    attrs = await self._inspect(name)  # once more, then report the timeout
                continue  # probe again: no event means Docker has nothing new to say
            if event is None:  # the events stream broke: re-open it, then re-inspect
                await self._events.open()
            attrs = await self._inspect(name)

    async def _current(
        self, workspace_id: str, attrs: Mapping[str, Any] | None, network: str | None = None
    ) -> ContainerState:
        """The container's state, STARTING turned HEALTHY once its server has answered."""
        state = _state(workspace_id, attrs, network)
        if attrs is None or state.phase is not Phase.STARTING:
            return state
        container_id = str(attrs.get("Id"))
        if container_id not in self._ready:  # else ready, even while off its network
            if state.endpoint is None or not await _answers(
                state.endpoint, _env(attrs, ENV_BASE_URL) or "/"
            ):
                return state
            self._ready[container_id] = workspace_id
        return dataclasses.replace(state, phase=Phase.HEALTHY)

    def _workspace_id(self, labels: Mapping[str, Any], name: str) -> str:
        """The Workspace of a container: its label, or for a claimed pooled container (whose
        labels are the pool's) its name; "" for a pooled container not claimed."""
        if labels.get(L_POOL) is None:
            return str(labels.get(L_WORKSPACE_ID, ""))
        prefix = self.container_name("")
        name = name.lstrip("/")
        found = name[len(prefix) :] if name.startswith(prefix) else ""
        return found if _WORKSPACE_ID.match(found) else ""

    def _on_event(self, event: dict[str, Any]) -> None:
        action = event.get("Action") or event.get("status")
        if action not in ("die", "destroy"):
            return
        container_id = str(event.get("id") or (event.get("Actor") or {}).get("ID"))
        if self._ready.pop(container_id, None) is None:
            return  # never ready, or being stopped: those paths report it themselves
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        workspace_id = self._workspace_id(attributes, str(attributes.get("name", "")))
        if action != "die" or not workspace_id or workspace_id in self._stopping:
            return
        why = f"JupyterLab exited with code {attributes.get('exitCode', '?')}"
        log.warning("workspace %s: %s", workspace_id, why)
        for listener in self._exit_listeners:
            try:
                listener(workspace_id, why)
            except Exception:
                log.exception("exit listener of %s failed", workspace_id)

    def _on_lost(self) -> None:
        # Waiters re-open the stream themselves; the exit listeners need it open all along.
        if self._exit_listeners and not self._closed:
            asyncio.get_running_loop().call_later(1.0, self._reopen)

    def _reopen(self) -> None:
        if self._closed:
            return

        async def reopen() -> None:
            try:
                await self._events.open()
            except Exception as exc:  # dockerd still away: try again later
                log.debug("docker events stream not re-opened: %s", exc)
                asyncio.get_running_loop().call_later(5.0, self._reopen)

        task = asyncio.ensure_future(reopen())
        self._reopening = task  # keep a reference until it is done

    async def _inspect(self, name: str) -> dict[str, Any] | None:
        def _get(client: docker.DockerClient) -> dict[str, Any] | None:
            try:
                return dict(client.api.inspect_container(name))
            except NotFound:
                return None

        return await self._docker.run(_get)

    async def _logs(self, name: str) -> str:
        def _tail(client: docker.DockerClient) -> str:
            try:
                raw = client.api.logs(name, tail=_LOG_TAIL)
            except (NotFound, APIError):
                return ""
            return bytes(raw).decode(errors="replace").rstrip()

        return await self._docker.run(_tail)

    async def _remove(self, name: str) -> None:
        def _rm(client: docker.DockerClient) -> None:
            try:
                container = client.containers.get(name)
            except NotFound:
                return
            _remove_sync(container)

        await self._docker.run(_rm)


def _create_options(network: str, memory: str, cpus: float) -> dict[str, Any]:
    """How every Workspace container is made, pooled or not (all but image, name, labels, env)."""
    return {
        "network": network,  # the only network: no default bridge
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap on top
        "nano_cpus": round(cpus * 1e9),
        "pids_limit": _PIDS_LIMIT,
        "restart_policy": {"Name": "no"},
        "init": True,  # reaps kernels' orphans; JupyterLab is not an init
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        # No Docker health check, whatever the image says: readiness is probed once by the
        # gateway, and liveness comes from Docker's events (see the module docstring).
        "healthcheck": {"test": ["NONE"]},
        "detach": True,
    }


def _remove_sync(container: Any) -> None:
    try:
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress
            raise


def _state(
    workspace_id: str, attrs: Mapping[str, Any] | None, network: str | None = None
) -> ContainerState:
    if attrs is None:
        return ContainerState(workspace_id, Phase.ABSENT)
    st = attrs.get("State") or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    status = st.get("Status")
    health = (st.get("Health") or {}).get("Status")
    if status == "created":
        phase = Phase.CREATED
    elif status == "running":
        phase = {"healthy": Phase.HEALTHY, "unhealthy": Phase.UNHEALTHY}.get(
            health or "", Phase.STARTING
        )
    elif status == "paused":
        phase = Phase.UNHEALTHY
    else:  # exited, dead, removing, restarting (never: restart policy "no")
        phase = Phase.EXITED
    endpoint = None
    if phase in (Phase.STARTING, Phase.HEALTHY, Phase.UNHEALTHY):
        ip = _address(attrs, network)
        endpoint = WorkspaceEndpoint(ip) if ip else None
    return ContainerState(
        workspace_id=workspace_id,
        phase=phase,
        container_id=attrs.get("Id"),
        studio_id=labels.get(L_STUDIO_ID),
        subnet_id=labels.get(L_SUBNET_ID),
        endpoint=endpoint,
        exit_code=st.get("ExitCode") if phase is Phase.EXITED else None,
        oom_killed=bool(st.get("OOMKilled")),
        started_at=st.get("StartedAt"),
    )


async def _answers(endpoint: WorkspaceEndpoint, base_url: str, timeout: float = 1.0) -> bool:
    """Whether the server at ``endpoint`` answers ``GET <base_url>emustudio/ready`` with 200.

    Before the server listens the connection is refused at once, so probing costs nothing.
    """
    path = "/" + (base_url.strip("/") + "/emustudio/ready").lstrip("/")
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.ip, endpoint.port), timeout
        )
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {endpoint.ip}:{endpoint.port}\r\n\r\n".encode())
        status = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
    return status.split(b" ")[1:2] == [b"200"]


def _env(attrs: Mapping[str, Any], name: str) -> str | None:
    for item in (attrs.get("Config") or {}).get("Env") or ():
        key, _, value = str(item).partition("=")
        if key == name:
            return value
    return None


def _address(attrs: Mapping[str, Any], network: str | None) -> str | None:
    """The container's IPv4 address on its subnet network (the one it was created on)."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    wanted = network or labels.get(L_NETWORK) or (attrs.get("HostConfig") or {}).get("NetworkMode")
    if wanted:
        return (networks.get(wanted) or {}).get("IPAddress") or None
    addresses = [n.get("IPAddress") for n in networks.values() if n.get("IPAddress")]
    return addresses[0] if len(addresses) == 1 else None


class _EventStream:
    """One Docker events stream, shared by every waiter of a runtime.

    Opened through the executor (the request returns once dockerd answers); read by a daemon
    thread of its own, so a long wait never holds one of the executor's few workers; each event
    is handed to the loop and put on the queues subscribed to its container's name.  When the
    stream ends or fails, every queue gets ``None`` and the next :meth:`open` makes a new one.
    """

    def __init__(
        self,
        docker: DockerExecutor,
        filters: dict[str, Any],
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._docker = docker
        self._filters = filters
        self._on_event = on_event
        self._on_lost = on_lost
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open_lock = asyncio.Lock()
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._open_lock:
            if self._stream is not None and self._loop is loop:
                return
            self.close()  # a stream left from another event loop, if any
            filters = self._filters

            def _open(client: docker.DockerClient) -> Any:
                return client.events(filters=filters, decode=True)

            stream = await self._docker.run(_open)
            self._stream, self._loop = stream, loop
            threading.Thread(
                target=self._read,
                args=(stream, loop),
                name="emustudio-docker-events",
                daemon=True,
            ).start()

    @contextlib.contextmanager
    def subscription(self, name: str) -> Iterator[asyncio.Queue[dict[str, Any] | None]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.setdefault(name, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(name)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[name]

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def _read(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for event in stream:
                if isinstance(event, dict):
                    loop.call_soon_threadsafe(self._dispatch, event)
        except Exception as exc:  # the socket closed under us, or dockerd went away
            log.debug("docker events stream ended: %s", exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(self._lost, stream)

    def _dispatch(self, event: dict[str, Any]) -> None:
        name = ((event.get("Actor") or {}).get("Attributes") or {}).get("name")
        for queue in self._subscribers.get(str(name), ()):
            queue.put_nowait(event)
        if self._on_event is not None:
            self._on_event(event)

    def _lost(self, stream: Any) -> None:
        if self._stream is not None and stream is not self._stream:
            return  # an old stream, already replaced by a newer one
        self._stream = None
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(None)
        if self._on_lost is not None:
            self._on_lost()
