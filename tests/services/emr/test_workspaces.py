"""The Workspace state machine, with an in-memory container double (a unit test of this room;
the Docker runtime has its own tests, and the browser test drives both together)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from emustudio.services.emr.workspaces import Containers, ContainerSpec, WorkspaceManager
from emustudio.store import Store
from emustudio.store.tables import Editor, Endpoint, Studio, Subnet, Vpc


class MemoryContainers(Containers):
    def __init__(self) -> None:
        self.live: dict[str, ContainerSpec] = {}
        self.detached: set[str] = set()
        self.fail_next = False
        self.warm_pools: set[tuple[str, str]] = set()  # (Studio, subnet) pools kept filled

    async def start(self, spec: ContainerSpec, progress: Callable[[str], None]) -> Endpoint:
        progress("Creating container")
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("image missing")
        self.live[spec.editor_id] = spec
        progress("Healthy")
        return Endpoint(spec.subnet_id, 8888)

    async def stop(self, editor_id: str) -> None:
        self.live.pop(editor_id, None)

    async def running(self) -> dict[str, Endpoint]:
        return {k: Endpoint(v.subnet_id, 8888) for k, v in self.live.items()}

    async def disconnect(self, editor_id: str, subnet_id: str) -> None:
        self.detached.add(editor_id)

    async def warm(self, studio_subnets: set[tuple[str, str]]) -> None:
        self.warm_pools |= studio_subnets

    async def drain(self, subnet_ids: set[str]) -> None:
        self.warm_pools = {(st, sn) for st, sn in self.warm_pools if sn not in subnet_ids}

    async def reconnect(self, editor_id: str, subnet_id: str) -> Endpoint | None:
        self.detached.discard(editor_id)
        return Endpoint(subnet_id, 8888) if editor_id in self.live else None


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[WorkspaceManager, MemoryContainers, Store]]:
    store = Store(f"sqlite:///{tmp_path}/t.db")
    store.create_all()

    def seed(session: object) -> None:
        now = time.time()
        session.add(
            Vpc(
                id="vpc-1",
                region="us-east-1",
                cidr="10.0.0.0/16",
                cidr_association_id="a",
                created_at=now,
            )
        )  # type: ignore[attr-defined]
        session.flush()  # type: ignore[attr-defined]
        for sid, az in (("subnet-a", "us-east-1a"), ("subnet-b", "us-east-1b")):
            session.add(
                Subnet(
                    id=sid,
                    region="us-east-1",
                    vpc_id="vpc-1",
                    cidr="10.0.0.0/24",
                    availability_zone=az,
                    created_at=now,
                )
            )  # type: ignore[attr-defined]
        session.add(
            Studio(
                id="es-1",
                region="us-east-1",
                name="s",
                auth_mode="IAM",
                vpc_id="vpc-1",
                subnet_ids=["subnet-a", "subnet-b"],
                service_role="r",
                workspace_security_group_id="sg-1",
                engine_security_group_id="sg-2",
                default_s3_location="s3://b",
                created_at=now,
            )
        )  # type: ignore[attr-defined]
        session.add(
            Editor(
                id="e-1",
                region="us-east-1",
                studio_id="es-1",
                name="w",
                status="Starting",
                s3_location="s3://b",
                created_by="arn",
                token="t",
                created_at=now,
                last_modified_at=now,
            )
        )  # type: ignore[attr-defined]

    await store.tx(seed)  # type: ignore[arg-type]
    containers = MemoryContainers()
    manager = WorkspaceManager(store, containers, region="us-east-1")
    yield manager, containers, store
    await manager.close()
    store.close()


async def editor(store: Store) -> Editor:
    found = await store.tx(lambda s: s.get(Editor, "e-1"))
    assert found is not None
    return found


async def settle(manager: WorkspaceManager) -> None:
    while manager.tasks:
        await asyncio.gather(*manager.tasks)


async def test_start_stop_start_moves_to_another_zone(world) -> None:  # type: ignore[no-untyped-def]
    manager, containers, store = world
    manager.launch("e-1")
    messages = [m async for m in manager.watch("e-1")]
    assert messages[0].startswith("Placed in subnet-a")
    assert messages[-1] == "Ready"
    first = await editor(store)
    assert (first.status, first.availability_zone, first.endpoint) == (
        "Ready",
        "us-east-1a",
        "subnet-a:8888",
    )
    assert containers.live["e-1"].token == first.token

    await manager.stop("e-1")
    stopped = await editor(store)
    assert (stopped.status, stopped.endpoint) == ("Idle", None)
    assert "e-1" not in containers.live

    await manager.set_status("e-1", "Starting")
    manager.launch("e-1")
    await settle(manager)
    again = await editor(store)
    assert (again.status, again.availability_zone) == ("Ready", "us-east-1b")
    assert again.token != first.token  # a fresh token for every container


async def test_a_failed_start_leaves_the_workspace_idle_with_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    manager, containers, store = world
    containers.fail_next = True
    manager.launch("e-1")
    await settle(manager)
    failed = await editor(store)
    assert failed.status == "Idle"
    assert failed.status_reason == "The Workspace failed to start: image missing"


async def test_an_az_outage_and_recovery(world) -> None:  # type: ignore[no-untyped-def]
    manager, containers, store = world
    manager.launch("e-1")
    await settle(manager)
    await manager.adopt()
    assert containers.warm_pools == {("es-1", "subnet-a"), ("es-1", "subnet-b")}
    assert await manager.fail_zone("us-east-1a") == ["e-1"]
    assert containers.warm_pools == {("es-1", "subnet-b")}  # the impaired zone's is drained
    hurt = await editor(store)
    assert hurt.status_reason == "Unhealthy: Availability Zone us-east-1a is impaired."
    assert hurt.endpoint is None and "e-1" in containers.detached

    # Restarting it during the outage places it in the healthy zone.
    await manager.stop("e-1")
    await manager.set_status("e-1", "Starting")
    manager.launch("e-1")
    await settle(manager)
    moved = await editor(store)
    assert (moved.status, moved.availability_zone, moved.status_reason) == (
        "Ready",
        "us-east-1b",
        None,
    )

    await manager.fail_zone("us-east-1b")
    assert containers.warm_pools == set()
    assert await manager.restore_zone("us-east-1b") == ["e-1"]
    assert containers.warm_pools == {("es-1", "subnet-b")}  # us-east-1a is still impaired
    back = await editor(store)
    assert (back.endpoint, back.status_reason) == ("subnet-b:8888", None)
    assert await manager.failed_zones() == {"us-east-1a"}


async def test_adopt_keeps_running_and_marks_vanished_idle(world) -> None:  # type: ignore[no-untyped-def]
    manager, containers, store = world
    manager.launch("e-1")
    await settle(manager)
    fresh = WorkspaceManager(store, containers, region="us-east-1")
    await fresh.adopt()
    assert (await editor(store)).status == "Ready"
    assert containers.warm_pools == {("es-1", "subnet-a"), ("es-1", "subnet-b")}
    containers.live.clear()
    await fresh.adopt()
    gone = await editor(store)
    assert (gone.status, gone.status_reason) == (
        "Idle",
        "The Workspace stopped while the gateway was down.",
    )


async def test_idle_workspaces_are_stopped(world) -> None:  # type: ignore[no-untyped-def]
    manager, _, store = world
    manager.launch("e-1")
    await settle(manager)
    assert await manager.cull_idle(3600) == []
    manager.last_activity["e-1"] -= 7200
    assert await manager.cull_idle(3600) == ["e-1"]
    assert (await editor(store)).status == "Idle"


async def test_a_container_that_dies_on_its_own_leaves_the_workspace_idle(world) -> None:  # type: ignore[no-untyped-def]
    manager, containers, store = world
    changed: list[str] = []
    manager.status_listeners.append(changed.append)
    # While it starts, a death is the start's own business.
    manager.container_exited("e-1", "JupyterLab exited with code 137")
    await settle(manager)
    assert (await editor(store)).status == "Starting"

    manager.launch("e-1")
    await settle(manager)
    assert changed[-1] == "e-1"  # the gate hears of Ready
    changed.clear()
    manager.container_exited("e-1", "JupyterLab exited with code 137")
    await settle(manager)
    dead = await editor(store)
    assert (dead.status, dead.endpoint) == ("Idle", None)
    assert dead.status_reason == "The Workspace stopped: JupyterLab exited with code 137."
    assert "e-1" not in containers.live and "e-1" not in manager.last_activity
    assert changed == ["e-1"]


class Recorder:
    """A Workspace hook that notes what the manager tells it, and whether the container still
    ran at the time (``after_stop`` must come once it is gone: the kernel route closes then)."""

    def __init__(self, containers: MemoryContainers) -> None:
        self.containers = containers
        self.calls: list[tuple[str, str, bool]] = []

    def _note(self, what: str, editor: Editor) -> None:
        self.calls.append((what, editor.status, editor.id in self.containers.live))

    async def before_ready(
        self, editor: Editor, endpoint: Endpoint, note: object = None, put_files: object = None
    ) -> None:
        self._note("before_ready", editor)

    async def before_stop(self, editor: Editor) -> None:
        self._note("before_stop", editor)

    async def after_stop(self, editor: Editor) -> None:
        self._note("after_stop", editor)

    async def after_delete(self, editor: Editor) -> None:
        self._note("after_delete", editor)


async def test_after_stop_comes_once_the_container_is_gone_however_it_went(world) -> None:  # type: ignore[no-untyped-def]
    manager, containers, store = world
    hook = Recorder(containers)
    manager.hooks.append(hook)
    then: list[str] = []

    async def attached_again() -> None:
        then.append((await editor(store)).status)

    manager.launch("e-1", attached_again)
    await settle(manager)
    assert then == ["Ready"]  # what follows a start runs once it is Ready
    await manager.stop("e-1")
    assert hook.calls[-2:] == [("before_stop", "Ready", True), ("after_stop", "Stopping", False)]

    await manager.set_status("e-1", "Starting")
    manager.launch("e-1")
    await settle(manager)
    manager.container_exited("e-1", "JupyterLab exited with code 137")
    await settle(manager)
    assert hook.calls[-1] == ("after_stop", "Ready", False)  # died on its own: no before_stop

    await manager.set_status("e-1", "Starting")
    manager.launch("e-1")
    await settle(manager)
    await manager.delete("e-1")
    assert [c[0] for c in hook.calls[-3:]] == ["before_stop", "after_stop", "after_delete"]
    assert hook.calls[-2] == ("after_stop", "Deleting", False)


async def test_a_background_step_does_not_undo_a_stop(world) -> None:  # type: ignore[no-untyped-def]
    manager, _, store = world
    changed: list[str] = []
    manager.status_listeners.append(changed.append)
    manager.launch("e-1")
    await settle(manager)
    assert await manager.set_status("e-1", "Attaching", only_from="Ready")
    await manager.stop("e-1")
    changed.clear()
    # An attach that finishes after the stop finds the Workspace no longer Attaching.
    assert not await manager.set_status("e-1", "Attached", only_from="Attaching")
    assert (await editor(store)).status == "Idle"
    assert changed == []  # nothing written, nothing announced
