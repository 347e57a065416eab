"""Graceful decommission of a node's Spark worker, before a resize down removes the node.

EMR shrinks a group gracefully: the node gets no new work, what runs there finishes (up to the
shrink's ``DecommissionTimeout``, else YARN's decommissioning timeout, 3600 s on EMR), then the
instance terminates. Spark standalone does the same with ``spark.decommission.enabled``: a
worker sent ``SIGPWR`` tells the master it is decommissioning; the master gives it no more
executors and tells the drivers, whose executors there take no new task, hand their cached and
shuffle blocks to the other executors (``spark.storage.decommission.*``) and exit once their
running tasks have ended. A node is drained when its worker runs no executor and no driver (the
worker's JSON view), or when the timeout has passed; then it is removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import docker
from docker.errors import APIError, NotFound

from emustudio.runtime.docker_executor import DockerExecutor

log = logging.getLogger(__name__)

SPARK_DEFAULTS = {
    "spark.decommission.enabled": "true",
    "spark.storage.decommission.enabled": "true",
    "spark.storage.decommission.rddBlocks.enabled": "true",
    "spark.storage.decommission.shuffleBlocks.enabled": "true",
}
"""Every node's (and so every driver's) Spark settings for it; a cluster's own
``spark-defaults`` come after and may turn it off (then the signal just ends the worker)."""
DEFAULT_TIMEOUT = 3600.0  # yarn.resourcemanager.decommissioning.timeout on EMR
POLL_SECONDS = 2.0
_WORKER = "org.apache.spark.deploy.worker.Worker"
# Exit 0 when the node's worker runs nothing (or no longer answers), 1 while it does.
_DRAINED = """
import json, sys, urllib.request
try:
    with urllib.request.urlopen("http://localhost:8081/json/", timeout=5) as answer:
        state = json.load(answer)
except OSError:
    sys.exit(0)
sys.exit(1 if state.get("executors") or state.get("drivers") else 0)
"""


async def drain(docker_: DockerExecutor, containers: list[str], timeout: float) -> list[str]:
    """Decommission the workers of ``containers`` and wait until each has drained or
    ``timeout`` seconds passed; the containers still busy at the timeout."""
    busy = await asyncio.gather(*(_drain(docker_, c, timeout) for c in containers))
    return [c for c, still in zip(containers, busy, strict=True) if still]


def _exec(container: str, argv: list[str]) -> Callable[[docker.DockerClient], int | None]:
    """``argv`` as hadoop on the node: its exit code, None when the node is gone."""

    def call(client: docker.DockerClient) -> int | None:
        try:
            return int(client.containers.get(container).exec_run(argv, user="hadoop").exit_code)
        except (NotFound, APIError):
            return None

    return call


async def _drain(docker_: DockerExecutor, container: str, timeout: float) -> bool:
    if await docker_.run(_exec(container, ["pkill", "-PWR", "-f", _WORKER])) != 0:
        return False  # no worker (gone, or never started): nothing runs there
    log.info("%s: decommissioning its Spark worker", container)
    deadline = time.monotonic() + timeout
    while True:
        code = await docker_.run(_exec(container, ["python3", "-I", "-S", "-c", _DRAINED]))
        if code != 1:
            log.info("%s: drained", container)
            return False
        if time.monotonic() >= deadline:
            log.warning("%s: still busy after %.0f s; removed anyway", container, timeout)
            return True
        await asyncio.sleep(POLL_SECONDS)
