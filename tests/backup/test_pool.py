"""The warm pool through a real gateway: a Studio's subnets get warm containers, CreateEditor and
StartEditor claim them, and the Workspace's backed-up files are restored into a claimed one."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import docker
import pytest
from minio import Minio

from emustudio.testing.backup import (
    StudioSetup,
    container_of,
    key_of,
    notebook,
    object_bytes,
    restart_workspace,
    start_workspace,
    wait_until,
)
from emustudio.testing.gateway import GatewayProcess
from tests.backup.conftest import backup_env


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return backup_env(EMUSTUDIO_WORKSPACE_POOL_SIZE="1")


def warm_containers(client: docker.DockerClient, gateway: GatewayProcess) -> list[Any]:
    """The gateway's pooled containers that answer their claim port (warm, unclaimed)."""
    labels = [f"emustudio.instance={gateway.instance_id}", "emustudio.pool=warm"]
    found = []
    for container in client.containers.list(filters={"label": labels}):
        if "-pool-" not in container.name:
            continue  # claimed: renamed to its Workspace
        for net in container.attrs["NetworkSettings"]["Networks"].values():
            try:
                with urllib.request.urlopen(
                    f"http://{net['IPAddress']}:8888/emustudio/warm", timeout=2
                ) as answer:
                    if answer.status == 200:
                        found.append(container)
            except OSError:
                pass
    return found


def test_workspaces_start_warm_and_get_their_files_back(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio, docker_client: docker.DockerClient
) -> None:
    # CreateStudio warmed one container on each of its two subnets.
    wait_until(
        lambda: len(warm_containers(docker_client, gateway)) == 2,
        timeout=300,  # a first run builds the image
        interval=0.5,
        what="a warm container on each of the Studio's subnets",
    )
    pooled = {c.id for c in warm_containers(docker_client, gateway)}

    started = time.monotonic()
    editors, editor_id, ws = start_workspace(gateway, studio, "warm")
    print(f"CreateEditor to Ready from the pool: {time.monotonic() - started:.2f} s")
    container = container_of(docker_client, editor_id)
    assert container.id in pooled  # claimed, not made for it
    assert "EMUSTUDIO_JUPYTER_TOKEN" not in str(container.attrs["Config"]["Env"])

    ws.save_notebook("warm.ipynb", notebook("print('warm')"))
    saved = ws.raw("warm.ipynb")
    wait_until(lambda: object_bytes(s3, key_of(editor_id, "warm.ipynb")) == saved, timeout=10)

    # The pool refills in the background; a restart claims another warm container, never the
    # one it had, and restores the file into it.
    wait_until(
        lambda: len(warm_containers(docker_client, gateway)) == 2,
        timeout=120,
        interval=0.5,
        what="the pool refilled",
    )
    refilled = {c.id for c in warm_containers(docker_client, gateway)}
    assert container.id not in refilled
    restart_workspace(editors, ws)
    again = container_of(docker_client, editor_id)
    assert again.id in refilled and again.id != container.id
    assert ws.raw("warm.ipynb") == saved
