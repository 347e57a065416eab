"""The warm pool against the real dockerd: what a pooled container holds, and who gets it.

Same set-up as test_workspaces.py (its own instance id and test /24, purged at the end).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import docker
import pytest
from tornado.websocket import websocket_connect

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.pool import Warm, claim, request
from emustudio.runtime.workspaces import (
    DockerWorkspaces,
    StartProgress,
    WorkspaceEndpoint,
    WorkspaceSpec,
)
from tests.runtime import test_workspaces
from tests.runtime.conftest import say
from tests.runtime.test_workspaces import Subnet, http_get, make_spec

# The same module-scoped fixtures (instance id, test /24, purge), for this module's own run.
client = test_workspaces.client
subnet = test_workspaces.subnet

pytestmark = pytest.mark.timeout(1800)  # the first test may build the image

SKEL = {".bashrc", ".bash_logout", ".profile"}  # the image's home: useradd's skeleton only


def run(
    subnet: Subnet, docker_executor: DockerExecutor, size: int, body: Callable[..., Any]
) -> Any:
    """``body(runtime)`` on a fresh runtime with a pool of ``size``; the pool is removed after."""

    async def main() -> Any:
        runtime = DockerWorkspaces(docker_executor, subnet.instance_id, pool_size=size)
        try:
            return await body(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


STUDIO = "es-" + "POOLTEST" * 3 + "X"  # the pools of these tests are this Studio's


def spec_of(subnet: Subnet, **overrides: Any) -> WorkspaceSpec:
    return make_spec(subnet, studio_id=STUDIO, memory="512m", cpus=0.5, **overrides)


async def warm_up(runtime: DockerWorkspaces, subnet: Subnet, count: int) -> list[Warm]:
    key = runtime.pool_key(spec_of(subnet))
    runtime.pool.fill(key)
    for _ in range(1200):
        if len(runtime.pool.warm(key)) >= count:
            return runtime.pool.warm(key)
        await asyncio.sleep(0.1)
    raise AssertionError("the pool did not warm up within 120 s")


def exec_in(client: docker.DockerClient, container_id: str, command: str) -> str:
    code, out = client.containers.get(container_id).exec_run(["sh", "-c", command])
    assert code == 0, out
    return bytes(out).decode()


@pytest.fixture(autouse=True)
def no_pool_left(subnet: Subnet, client: docker.DockerClient) -> Iterator[None]:
    yield
    # runtime.close() removes what is still pooled: nothing unclaimed outlives its runtime.
    left = client.containers.list(
        all=True,
        filters={"label": [f"emustudio.instance={subnet.instance_id}", "emustudio.pool=warm"]},
    )
    assert [c.name for c in left if "-pool-" in c.name] == []


def test_a_pooled_container_has_no_token_identity_files_or_credentials(
    subnet: Subnet, docker_executor: DockerExecutor, client: docker.DockerClient
) -> None:
    async def body(runtime: DockerWorkspaces) -> None:
        (warm,) = await warm_up(runtime, subnet, 1)
        attrs = client.api.inspect_container(warm.container_id)
        labels = attrs["Config"]["Labels"]
        # Labelled with its Studio (its security groups apply), with no Workspace of it.
        assert labels["emustudio.studio-id"] == STUDIO and "emustudio.workspace-id" not in labels
        env = {e.partition("=")[0] for e in attrs["Config"]["Env"]}
        assert "EMUSTUDIO_CLAIM_KEY" in env
        assert not env & {
            "EMUSTUDIO_JUPYTER_TOKEN",
            "EMUSTUDIO_WORKSPACE_ID",
            "EMUSTUDIO_STUDIO_ID",
        }
        assert not any(e.startswith(("AWS_", "EMUSTUDIO_BASE_URL")) for e in env)
        assert set(exec_in(client, warm.container_id, "ls -A /home/emr-notebook").split()) <= SKEL
        # Its server is not a Jupyter server yet: no token, whatever it is, opens anything.
        for path in ("/api/status", "/api/contents", f"/api/contents?token={'x' * 32}"):
            assert (await request(warm.ip, "GET", path))[0] == 404
        # Anyone on the subnet may knock; only the pool's key claims it.
        wrong = Warm(warm.container_id, warm.name, warm.ip, secrets.token_urlsafe(32))
        assert not await claim(wrong, token="t" * 32, base_url="/", allow_origin="", env={})
        assert (await request(warm.ip, "GET", "/emustudio/warm"))[0] == 200
        # And the claim's environment cannot reach beyond EMUSTUDIO_* (no PATH, no LD_PRELOAD).
        bad = {"LD_PRELOAD": "/tmp/x.so"}
        assert not await claim(warm, token="t" * 32, base_url="/", allow_origin="", env=bad)
        assert runtime.pool.warm(runtime.pool_key(spec_of(subnet))) == [warm]
        # Another Studio on the same subnet does not get this Studio's warm container.
        other = make_spec(subnet, memory="512m", cpus=0.5)
        assert runtime.pool.take(runtime.pool_key(other)) is None

    run(subnet, docker_executor, 1, body)


async def kernel_environ(endpoint: WorkspaceEndpoint, base_url: str, token: str) -> dict[str, Any]:
    url = f"http://{endpoint.ip}:{endpoint.port}{base_url}"
    post = urllib.request.Request(
        url + "api/kernels",
        data=b'{"name": "python3"}',
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    kernel = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(post, timeout=60)))
    ws = await websocket_connect(
        f"ws://{endpoint.ip}:{endpoint.port}{base_url}api/kernels/{kernel['id']}/channels"
        f"?token={token}"
    )
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    code = (
        "import os, json; print(json.dumps({k: v for k, v in os.environ.items()"
        " if k.startswith(('EMUSTUDIO_', 'JPY_', 'JUPYTER_TOKEN'))}))"
    )
    header = {"msg_id": msg_id, "username": "t", "session": session, "version": "5.3"}
    content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
    message = {
        "header": {**header, "msg_type": "execute_request"},
        "parent_header": {},
        "metadata": {},
        "content": {**content, "user_expressions": {}},
        "channel": "shell",
        "buffers": [],
    }
    await ws.write_message(json.dumps(message))
    try:
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 60)
            assert raw is not None
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                if reply["msg_type"] == "stream":
                    return dict(json.loads(reply["content"]["text"]))
                assert reply["msg_type"] != "error", reply["content"]
    finally:
        ws.close()


def test_a_claim_gets_its_token_and_identity_and_is_never_pooled_again(
    subnet: Subnet,
    docker_executor: DockerExecutor,
    client: docker.DockerClient,
    pytestconfig: pytest.Config,
) -> None:
    spec = spec_of(subnet)
    spec = spec_of(
        subnet, workspace_id=spec.workspace_id, base_url=f"/workspaces/{spec.workspace_id}/"
    )
    steps: list[StartProgress] = []

    async def body(runtime: DockerWorkspaces) -> None:
        (warm,) = await warm_up(runtime, subnet, 1)
        started = time.monotonic()
        endpoint = await runtime.start(spec, progress=steps.append)
        say(pytestconfig, f"\n[pool] warm start to ready: {time.monotonic() - started:.2f} s")
        assert any("Warm start" in s.message for s in steps), steps
        # It is the pooled container, now under the Workspace's name, at the same address.
        attrs = client.api.inspect_container(runtime.container_name(spec.workspace_id))
        assert attrs["Id"] == warm.container_id and endpoint.ip == warm.ip
        url = endpoint.url(spec.base_url)
        assert http_get(url + "api/status", spec.token)[0] == 200
        assert http_get(url + "api/status")[0] == 403
        assert http_get(url + "api/status", "y" * 32)[0] == 403
        # The token never went through an environment; the identity did (kernels see it).
        assert "EMUSTUDIO_JUPYTER_TOKEN" not in str(attrs["Config"]["Env"])
        environ = await kernel_environ(endpoint, spec.base_url, spec.token)
        assert environ["EMUSTUDIO_WORKSPACE_ID"] == spec.workspace_id
        assert environ["EMUSTUDIO_STUDIO_ID"] == spec.studio_id
        assert spec.token not in json.dumps(environ)
        # Claimed once: the same key claims nothing more (that port is JupyterLab's now).
        assert not await claim(warm, token="z" * 32, base_url="/", allow_origin="", env={})
        assert http_get(url + "api/status", spec.token)[0] == 200
        # start() again is idempotent on it; the pool refills with another container.
        assert await runtime.start(spec) == endpoint
        refill = await warm_up(runtime, subnet, 1)
        assert warm.container_id not in {w.container_id for w in refill}
        state = (await runtime.adopt())[0]
        assert (state.workspace_id, state.container_id) == (spec.workspace_id, warm.container_id)
        await runtime.stop(spec.workspace_id)
        assert warm.container_id not in {c.id for c in client.containers.list(all=True)}
        pooled = runtime.pool.warm(runtime.pool_key(spec))
        assert warm.container_id not in {w.container_id for w in pooled}

    run(subnet, docker_executor, 1, body)


def test_two_concurrent_claims_never_share_a_container(
    subnet: Subnet, docker_executor: DockerExecutor, client: docker.DockerClient
) -> None:
    specs = [spec_of(subnet) for _ in range(3)]

    async def body(runtime: DockerWorkspaces) -> None:
        await warm_up(runtime, subnet, 2)
        steps: dict[str, list[StartProgress]] = {s.workspace_id: [] for s in specs}
        starts: list[Awaitable[WorkspaceEndpoint]] = [
            runtime.start(s, progress=steps[s.workspace_id].append) for s in specs
        ]
        endpoints = await asyncio.gather(*starts)
        ids = [
            client.api.inspect_container(runtime.container_name(s.workspace_id))["Id"]
            for s in specs
        ]
        assert len(set(ids)) == 3 and len({e.ip for e in endpoints}) == 3
        warm = [w for w, s in steps.items() if any("Warm start" in p.message for p in s)]
        assert len(warm) == 2  # two pooled, the third one cold
        for spec, endpoint in zip(specs, endpoints, strict=True):
            for other in specs:
                status = http_get(endpoint.url() + "api/status", other.token)[0]
                assert status == (200 if other is spec else 403)
        for spec in specs:
            await runtime.stop(spec.workspace_id)

    run(subnet, docker_executor, 2, body)


def test_an_outage_drains_the_subnets_pool(
    subnet: Subnet, docker_executor: DockerExecutor, client: docker.DockerClient
) -> None:
    async def body(runtime: DockerWorkspaces) -> None:
        (warm,) = await warm_up(runtime, subnet, 1)
        key = runtime.pool_key(spec_of(subnet))
        await runtime.drain_pool({subnet.network.subnet_id})
        assert runtime.pool.take(key) is None
        assert warm.container_id not in {c.id for c in client.containers.list(all=True)}
        await asyncio.sleep(2)  # nothing refills it in the background
        assert runtime.pool.warm(key) == []
        labels = [f"emustudio.instance={subnet.instance_id}", "emustudio.pool=warm"]
        assert client.containers.list(all=True, filters={"label": labels}) == []

    run(subnet, docker_executor, 1, body)
