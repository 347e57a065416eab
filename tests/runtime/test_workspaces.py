"""Workspace containers against the real dockerd, on a test subnet network.

Every module run uses its own instance id (``test<hex>``) and a random /24 from
10.250.0.0/16..10.254.0.0/16 (not 10.253, the networks tests' remap pool).  Teardown removes,
through the docker SDK directly, every container and network carrying that instance id.  The
host reaches the containers at their address on the test bridge network, as the gateway does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import statistics
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import docker
import pytest
from tornado.websocket import websocket_connect

from emustudio import ids
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import BASE_IMAGE
from emustudio.runtime.networks import CidrConflict, SubnetNetwork, SubnetNetworks, SubnetSpec
from emustudio.runtime.workspaces import (
    ContainerState,
    DockerWorkspaces,
    Phase,
    StartProgress,
    StartStep,
    WorkspaceEndpoint,
    WorkspaceSpec,
    WorkspaceStartError,
)
from tests.runtime.conftest import BuiltImages, say

pytestmark = pytest.mark.timeout(1800)  # the first test may build the image

TEST_OCTETS = (250, 251, 252, 254)


@dataclass(frozen=True)
class Subnet:
    instance_id: str
    network: SubnetNetwork
    image: str


def make_spec(subnet: Subnet, **overrides: Any) -> WorkspaceSpec:
    values: dict[str, Any] = {
        "workspace_id": ids.editor_id(),
        "studio_id": ids.studio_id(),
        "subnet_id": subnet.network.subnet_id,
        "network": subnet.network.name,
        "token": secrets.token_hex(24),
        "image": subnet.image,
        "memory": "512m",
        "cpus": 0.5,
    }
    values.update(overrides)
    return WorkspaceSpec(**values)


def purge(client: docker.DockerClient, instance_id: str) -> None:
    label = [f"emustudio.instance={instance_id}"]
    for container in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True)
    for net in client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            net.remove()


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="module")
def subnet(
    workspace_images: BuiltImages, docker_executor: DockerExecutor, client: docker.DockerClient
) -> Iterator[Subnet]:
    instance_id = "test" + secrets.token_hex(4)
    networks = SubnetNetworks(docker_executor, instance_id)
    try:
        for _attempt in range(10):
            cidr = f"10.{secrets.choice(TEST_OCTETS)}.{secrets.randbelow(256)}.0/24"
            spec = SubnetSpec("subnet-" + secrets.token_hex(9)[:17], "vpc-test", "us-east-1a", cidr)
            with contextlib.suppress(CidrConflict):
                network = asyncio.run(networks.ensure(spec))
                break
        else:
            pytest.fail("no free test /24 after 10 tries")
        yield Subnet(instance_id, network, workspace_images.workspace)
    finally:
        purge(client, instance_id)


@dataclass(frozen=True)
class Running:
    spec: WorkspaceSpec
    endpoint: WorkspaceEndpoint
    steps: list[StartProgress]
    seconds: float


@pytest.fixture(scope="module")
def running(
    subnet: Subnet, docker_executor: DockerExecutor, pytestconfig: pytest.Config
) -> Running:
    """One Workspace started at module set-up, shared by the read-only checks below."""
    spec = make_spec(subnet)
    steps: list[StartProgress] = []

    async def start() -> tuple[WorkspaceEndpoint, float]:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id)
        started = time.monotonic()
        try:
            endpoint = await runtime.start(spec, progress=steps.append)
        finally:
            await runtime.close()
        return endpoint, time.monotonic() - started

    endpoint, seconds = asyncio.run(start())
    say(pytestconfig, f"\n[workspaces] start to healthy: {seconds:.2f} s")
    return Running(spec, endpoint, steps, seconds)


def http_get(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, None


async def start_once(
    docker_executor: DockerExecutor, subnet: Subnet, spec: WorkspaceSpec, **options: Any
) -> WorkspaceEndpoint:
    runtime = DockerWorkspaces(docker_executor, subnet.instance_id, **options)
    try:
        return await runtime.start(spec)
    finally:
        await runtime.close()


def inspect(client: docker.DockerClient, subnet: Subnet, spec: WorkspaceSpec) -> dict[str, Any]:
    name = f"emustudio-{subnet.instance_id}-{spec.workspace_id}"
    return dict(client.api.inspect_container(name))


# -- one running Workspace ----------------------------------------------------------------


def test_start_reports_progress_and_is_fast(running: Running) -> None:
    assert [p.step for p in running.steps] == [
        StartStep.CREATING,
        StartStep.STARTING,
        StartStep.WAITING,
        StartStep.HEALTHY,
    ]
    assert [p.progress for p in running.steps] == [20, 40, 60, 100]
    assert running.seconds < 60


def test_container_labels_name_and_network(
    running: Running, subnet: Subnet, client: docker.DockerClient
) -> None:
    attrs = inspect(client, subnet, running.spec)
    assert attrs["Name"] == f"/emustudio-{subnet.instance_id}-{running.spec.workspace_id}"
    labels = attrs["Config"]["Labels"]
    assert labels["emustudio.instance"] == subnet.instance_id
    assert labels["emustudio.kind"] == "workspace"
    assert labels["emustudio.workspace-id"] == running.spec.workspace_id
    assert labels["emustudio.studio-id"] == running.spec.studio_id
    assert labels["emustudio.subnet-id"] == subnet.network.subnet_id
    # Only the subnet's network: no default bridge.
    assert list(attrs["NetworkSettings"]["Networks"]) == [subnet.network.name]
    assert attrs["HostConfig"]["NetworkMode"] == subnet.network.name
    assert (
        running.endpoint.ip
        == attrs["NetworkSettings"]["Networks"][subnet.network.name]["IPAddress"]
    )


def test_limits_and_hardening(
    running: Running, subnet: Subnet, client: docker.DockerClient
) -> None:
    host = inspect(client, subnet, running.spec)["HostConfig"]
    assert host["Memory"] == 512 * 1024**2
    assert host["MemorySwap"] == 512 * 1024**2
    assert host["NanoCpus"] == 500_000_000
    assert host["RestartPolicy"]["Name"] == "no"
    assert host["Init"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]


def test_no_port_is_published(
    running: Running, subnet: Subnet, client: docker.DockerClient
) -> None:
    attrs = inspect(client, subnet, running.spec)
    assert not attrs["HostConfig"]["PortBindings"]
    assert not attrs["HostConfig"]["PublishAllPorts"]
    ports = attrs["NetworkSettings"]["Ports"] or {}
    assert all(binding is None for binding in ports.values())


def test_no_docker_health_check_runs_and_state_says_healthy(
    running: Running, subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    # Idle costs nothing: no exec into the container every few seconds.
    attrs = inspect(client, subnet, running.spec)
    assert attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert "Health" not in attrs["State"]
    # A fresh runtime (a restarted gateway) learns readiness with one probe.
    state = asyncio.run(
        DockerWorkspaces(docker_executor, subnet.instance_id).state(running.spec.workspace_id)
    )
    assert state.phase is Phase.HEALTHY
    assert state.endpoint == running.endpoint
    assert state.studio_id == running.spec.studio_id
    assert state.subnet_id == subnet.network.subnet_id


def test_jupyter_answers_with_the_token_only(running: Running) -> None:
    url = running.endpoint.url() + "api/status"
    status, body = http_get(url, running.spec.token)
    assert status == 200
    assert "started" in body
    assert http_get(url)[0] == 403
    assert http_get(url, "not-the-token-" + secrets.token_hex(8))[0] == 403


# Run inside the Workspace as its user (what a notebook cell can do): gather every byte of every
# process's environment and command line, every file under the writable places, and the Jupyter
# server's memory if Linux lets us; report what was refused. Printed as base64 for the test to
# search, so the token itself never goes into the container.
_LOOT = r"""
import base64, ctypes, json, os
blobs, refused = [], []
def grab(path, limit=1 << 20):
    try:
        with open(path, "rb") as f:
            blobs.append(f.read(limit))
        return True
    except OSError:
        refused.append(path)
        return False
pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
for pid in pids:
    grab(f"/proc/{pid}/environ"); grab(f"/proc/{pid}/cmdline")
for top in ("/home", "/tmp", "/var/tmp", "/dev/shm", "/run"):
    for folder, _, files in os.walk(top):
        for name in files:
            grab(os.path.join(folder, name))
cmdlines = {p: open(f"/proc/{p}/cmdline", "rb").read() for p in pids}
# The Jupyter server (Docker's init, pid 1, only names it in its arguments).
server = [p for p, c in cmdlines.items() if b"jupyter" in c and b"docker-init" not in c]
libc = ctypes.CDLL(None, use_errno=True)
traced = []
for pid in server:
    if libc.ptrace(16, int(pid), 0, 0) == 0:  # PTRACE_ATTACH
        traced.append(pid)
        libc.ptrace(17, int(pid), 0, 0)  # PTRACE_DETACH
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        with open(f"/proc/{pid}/mem", "rb") as mem:
            for line in maps:
                span, perms = line.split()[:2]
                if not perms.startswith("rw"):
                    continue
                lo, hi = (int(x, 16) for x in span.split("-"))
                try:
                    mem.seek(lo); blobs.append(mem.read(min(hi - lo, 64 << 20)))
                except OSError:
                    pass
    except OSError:
        refused.append(f"/proc/{pid}/mem")
print(json.dumps({"server": server, "traced": traced, "refused": refused,
                  "loot": base64.b64encode(b"\0".join(blobs)).decode()}))
"""


def test_code_in_the_workspace_cannot_read_the_token(
    running: Running, client: docker.DockerClient, subnet: Subnet
) -> None:
    """As a notebook cell can: every process's environment and command line, the files, and the
    server's memory (ptrace, /proc/<pid>/mem) after the server has served the token."""
    url = running.endpoint.url() + "api/status"
    assert http_get(url, running.spec.token)[0] == 200  # the token is in the server's memory now
    container = client.containers.get(f"emustudio-{subnet.instance_id}-{running.spec.workspace_id}")
    done = container.exec_run(["python3", "-c", _LOOT], user="emr-notebook")
    assert done.exit_code == 0, done.output
    found = json.loads(done.output)
    loot = base64.b64decode(found["loot"])
    assert found["server"], "the server's process was not found"
    assert len(loot) > 1000  # it did read things (its own environment at least)
    assert running.spec.token.encode() not in loot
    assert found["traced"] == []
    for pid in found["server"]:
        assert f"/proc/{pid}/environ" in found["refused"]
        assert f"/proc/{pid}/mem" in found["refused"]
    # Nor does the container's configuration hold it (Docker's API is the gateway's, but still).
    assert running.spec.token not in json.dumps(container.attrs)
    # What they could read, the token's SHA-256, opens nothing.
    digest = hashlib.sha256(running.spec.token.encode()).hexdigest()
    assert digest.encode() in loot
    assert http_get(url, digest)[0] == 403
    # The gateway's way in still works.
    assert http_get(url, running.spec.token)[0] == 200


def test_ready_endpoint_reports_tcp_nodelay(running: Running) -> None:
    status, body = http_get(running.endpoint.url() + "emustudio/ready")
    assert status == 200
    assert body == {"ready": True, "tcp_nodelay": True}


async def _kernel_round_trips(
    endpoint: WorkspaceEndpoint, token: str
) -> tuple[str, list[float], str]:
    request = urllib.request.Request(
        endpoint.url() + "api/kernels",
        data=b'{"name": "python3"}',
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    kernel = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(request, timeout=30)))
    ws = await websocket_connect(
        f"ws://{endpoint.ip}:{endpoint.port}/api/kernels/{kernel['id']}/channels?token={token}"
    )
    session = uuid.uuid4().hex

    async def execute(code: str) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "username": "test",
            "session": session,
            "msg_type": "execute_request",
            "version": "5.3",
        }
        content = {"code": code, "silent": False, "store_history": False}
        content |= {"user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        await ws.write_message(json.dumps({**message, "channel": "shell", "buffers": []}))
        out = []
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 30)
            assert raw is not None, "kernel websocket closed"
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply["msg_type"] == "stream":
                out.append(reply["content"]["text"])
            if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                return "".join(out)

    try:
        facts = await execute(
            "import os; print(os.getuid(), os.getcwd(),"
            " any(k.startswith('EMUSTUDIO_JUPYTER_TOKEN') for k in os.environ))"
        )
        loot = await execute(_LOOT)  # what a cell can gather, as in the test above
        for _ in range(5):
            await execute("1+1")
        times = []
        for _ in range(40):
            started = time.perf_counter()
            await execute("1+1")
            times.append((time.perf_counter() - started) * 1000)
    finally:
        ws.close()
    return facts, times, loot


def test_kernel_runs_as_emr_notebook_without_the_token_and_without_nagle_stalls(
    running: Running, pytestconfig: pytest.Config
) -> None:
    facts, times, loot = asyncio.run(_kernel_round_trips(running.endpoint, running.spec.token))
    assert facts.split() == ["1000", "/home/emr-notebook", "False"]
    found = json.loads(loot)
    assert found["server"] and found["traced"] == []
    assert running.spec.token.encode() not in base64.b64decode(found["loot"])
    median = statistics.median(times)
    say(
        pytestconfig, f"[workspaces] execute 1+1 until idle over the websocket: p50 {median:.1f} ms"
    )
    # Stock jupyter_server: ~52 ms (a 40 ms delayed-ACK stall per message); with nodelay ~8-12.
    assert median < 35


def test_start_again_returns_the_running_container(
    running: Running, subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    before = inspect(client, subnet, running.spec)["Id"]
    steps: list[StartProgress] = []

    async def again() -> WorkspaceEndpoint:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id)
        try:
            return await runtime.start(running.spec, progress=steps.append)
        finally:
            await runtime.close()

    started = time.monotonic()
    assert asyncio.run(again()) == running.endpoint
    assert time.monotonic() - started < 5
    assert inspect(client, subnet, running.spec)["Id"] == before
    assert StartStep.CREATING not in [p.step for p in steps]


def test_adopt_finds_the_running_workspace_from_a_new_runtime(
    running: Running, subnet: Subnet, docker_executor: DockerExecutor
) -> None:
    async def adopt() -> tuple[list[ContainerState], WorkspaceEndpoint]:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id)
        try:
            found = await runtime.adopt()
            return found, await runtime.wait_ready(running.spec.workspace_id, timeout=5)
        finally:
            await runtime.close()

    found, endpoint = asyncio.run(adopt())
    mine = [s for s in found if s.workspace_id == running.spec.workspace_id]
    assert len(mine) == 1
    assert mine[0].phase is Phase.HEALTHY
    assert mine[0].endpoint == running.endpoint == endpoint
    assert mine[0].studio_id == running.spec.studio_id
    # Another instance sees none of ours.
    other = DockerWorkspaces(docker_executor, "test" + secrets.token_hex(4))
    assert asyncio.run(other.adopt()) == []


# -- lifecycles of their own ----------------------------------------------------------------


def test_stop_removes_the_container_and_is_idempotent(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    spec = make_spec(subnet)

    async def scenario() -> list[ContainerState]:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id, stop_timeout=2)
        try:
            await runtime.start(spec)
            seen = [await runtime.state(spec.workspace_id)]
            started = time.monotonic()
            await runtime.stop(spec.workspace_id)
            assert time.monotonic() - started < 10
            seen.append(await runtime.state(spec.workspace_id))
            await runtime.stop(spec.workspace_id)  # nothing left: still fine
            return seen
        finally:
            await runtime.close()

    before, after = asyncio.run(scenario())
    assert before.phase is Phase.HEALTHY
    assert after == ContainerState(spec.workspace_id, Phase.ABSENT)
    with pytest.raises(docker.errors.NotFound):
        inspect(client, subnet, spec)


def test_a_different_spec_replaces_the_container(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    first = make_spec(subnet)
    second = replace(first, token=secrets.token_hex(24))

    async def scenario() -> tuple[str, str, int, int]:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id)
        try:
            await runtime.start(first)
            old = inspect(client, subnet, first)["Id"]
            endpoint = await runtime.start(second)
            new = inspect(client, subnet, second)["Id"]
            url = endpoint.url() + "api/status"
            with_new = await asyncio.to_thread(http_get, url, second.token)
            with_old = await asyncio.to_thread(http_get, url, first.token)
            return old, new, with_new[0], with_old[0]
        finally:
            await runtime.stop(first.workspace_id)
            await runtime.close()

    old, new, with_new, with_old = asyncio.run(scenario())
    assert old != new
    assert (with_new, with_old) == (200, 403)


def test_ready_poll_base_url_a_broken_events_stream_and_an_outage(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    base_url = f"/workspaces/{ids.editor_id()}/"
    spec = make_spec(subnet, base_url=base_url)

    async def scenario() -> dict[str, Any]:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id, ready_poll=0.2)
        try:
            task = asyncio.create_task(runtime.start(spec))
            await asyncio.sleep(0.5)
            runtime._events.close()  # as if dockerd restarted: waiters re-open and re-inspect
            endpoint = await asyncio.wait_for(task, 60)
            status = await asyncio.to_thread(
                http_get, endpoint.url(base_url) + "api/status", spec.token
            )
            assert status[0] == 200
            assert (await asyncio.to_thread(http_get, endpoint.url() + "api/status"))[0] == 404

            # An AZ outage: off the subnet network and back, still the same server.
            await runtime.disconnect(spec.workspace_id)
            cut = await runtime.state(spec.workspace_id)
            assert (cut.phase, cut.endpoint) == (Phase.HEALTHY, None)
            assert list(inspect(client, subnet, spec)["NetworkSettings"]["Networks"]) == []
            back = await runtime.reconnect(spec.workspace_id)
            assert back is not None
            assert (await runtime.state(spec.workspace_id)).endpoint == back
            status = await asyncio.to_thread(
                http_get, back.url(base_url) + "api/status", spec.token
            )
            assert status[0] == 200
            return inspect(client, subnet, spec)
        finally:
            await runtime.stop(spec.workspace_id)
            assert await runtime.reconnect(spec.workspace_id) is None
            await runtime.close()

    attrs = asyncio.run(scenario())
    assert list(attrs["NetworkSettings"]["Networks"]) == [subnet.network.name]
    assert attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]


def test_a_ready_container_that_dies_is_reported_and_a_stopped_one_is_not(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    crashing, stopped = make_spec(subnet), make_spec(subnet)

    async def scenario() -> list[tuple[str, str]]:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id, stop_timeout=1)
        exits: list[tuple[str, str]] = []
        heard = asyncio.Event()

        def listener(workspace_id: str, why: str) -> None:
            exits.append((workspace_id, why))
            heard.set()

        runtime.on_exit(listener)
        try:
            await asyncio.gather(runtime.start(crashing), runtime.start(stopped))
            await runtime.stop(stopped.workspace_id)  # asked for: no report
            name = f"emustudio-{subnet.instance_id}-{crashing.workspace_id}"
            await asyncio.to_thread(client.api.kill, name)  # as an OOM kill would
            await asyncio.wait_for(heard.wait(), 30)
            await asyncio.sleep(0.5)  # nothing else comes
            return exits
        finally:
            await runtime.stop(crashing.workspace_id)
            await runtime.close()

    exits = asyncio.run(scenario())
    assert exits == [(crashing.workspace_id, "JupyterLab exited with code 137")]


def test_stop_during_start_fails_the_start_as_stopped(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    spec = make_spec(subnet)

    async def scenario() -> WorkspaceStartError:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id, stop_timeout=1)
        waiting = asyncio.Event()

        def progress(p: StartProgress) -> None:
            if p.step is StartStep.WAITING:
                waiting.set()

        try:
            task = asyncio.create_task(runtime.start(spec, progress=progress))
            await asyncio.wait_for(waiting.wait(), 30)
            await runtime.stop(spec.workspace_id)
            with pytest.raises(WorkspaceStartError) as caught:
                await asyncio.wait_for(task, 30)
            return caught.value
        finally:
            await runtime.close()

    error = asyncio.run(scenario())
    assert error.reason == "stopped"
    with pytest.raises(docker.errors.NotFound):
        inspect(client, subnet, spec)


def test_start_timeout_removes_the_container(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    spec = make_spec(subnet)

    with pytest.raises(WorkspaceStartError) as caught:
        asyncio.run(start_once(docker_executor, subnet, spec, start_timeout=0.3))
    error = caught.value
    assert error.reason == "timeout"
    assert "not ready within" in str(error)
    with pytest.raises(docker.errors.NotFound):
        inspect(client, subnet, spec)


def test_a_server_killed_while_starting_fails_with_its_logs(
    subnet: Subnet, client: docker.DockerClient, docker_executor: DockerExecutor
) -> None:
    spec = make_spec(subnet, memory="16m")  # far too little for JupyterLab: OOM-killed

    with pytest.raises(WorkspaceStartError) as caught:
        asyncio.run(start_once(docker_executor, subnet, spec))
    error = caught.value
    assert error.reason == "exited", error
    with pytest.raises(docker.errors.NotFound):
        inspect(client, subnet, spec)


@pytest.mark.parametrize(
    ("image", "message"),
    [(BASE_IMAGE, "not an emustudio Workspace image"), ("emustudio/not-built:0", "images build")],
)
def test_unusable_images_fail_before_any_container(
    subnet: Subnet,
    client: docker.DockerClient,
    docker_executor: DockerExecutor,
    image: str,
    message: str,
) -> None:
    spec = make_spec(subnet, image=image)
    with pytest.raises(WorkspaceStartError, match=message) as caught:
        asyncio.run(start_once(docker_executor, subnet, spec))
    assert caught.value.reason == "image"
    with pytest.raises(docker.errors.NotFound):
        inspect(client, subnet, spec)


def test_missing_network_fails_clearly(subnet: Subnet, docker_executor: DockerExecutor) -> None:
    spec = make_spec(subnet, network=f"emustudio-{subnet.instance_id}-subnet-gone")
    with pytest.raises(WorkspaceStartError, match="does not exist") as caught:
        asyncio.run(start_once(docker_executor, subnet, spec))
    assert caught.value.reason == "network"


def test_spec_validation() -> None:
    good: dict[str, Any] = {
        "workspace_id": ids.editor_id(),
        "studio_id": ids.studio_id(),
        "subnet_id": "subnet-1",
        "network": "n",
        "token": secrets.token_hex(16),
        "image": "i",
    }
    WorkspaceSpec(**good)
    for bad in ({"workspace_id": "e-lower"}, {"token": "short"}, {"cpus": 0}):
        with pytest.raises(ValueError):
            WorkspaceSpec(**{**good, **bad})
    spec = WorkspaceSpec(**good)
    assert spec.digest() == WorkspaceSpec(**good).digest()
    assert spec.digest() != replace(spec, token=secrets.token_hex(16)).digest()
    assert spec.token not in spec.digest()
