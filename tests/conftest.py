"""Shared fixtures: the gateway a module talks to, and the VPC pieces a Studio needs.

Modules share the session's gateway (the plugin's ``emu_gateway``): starting one costs seconds,
and most modules only add resources of their own. A module whose tests need a gateway of their
own (other settings, a restart that must not touch other modules' state, or assertions about
everything an account holds) overrides ``gateway_env`` with that gateway's environment.

In parallel (``scripts/test``: pytest-xdist, ``-n N --dist loadfile``) each worker is a session
of its own, with its own ``emu_gateway``; test gateways already share a Docker host (their own
instance label, network names, firewall chain and data directory; CIDRs remapped). A module runs
whole on one worker, so its module-scoped gateway and resources are made once. The modules that
start Spark clusters (``pytestmark = pytest.mark.spark_cluster``) are one unit of work: they run
one after the other on one worker, first, while the other workers take the rest (a cluster is a
handful of JVM containers; two at once on the 2-core machines this runs on only slow each other).
"""

from __future__ import annotations

import compileall
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import docker
import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.vpc import StudioNetwork, make_studio_network

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Byte-compile what the session's gateways and CLI calls import, once. Where
    PYTHONDONTWRITEBYTECODE is set, each of those processes (a hundred or so in the suite) would
    otherwise compile emustudio's two hundred modules again: half a second of CPU each. In
    parallel the controller does it before it starts the workers, and the workers do not."""
    if hasattr(session.config, "workerinput"):
        return
    for package in (ROOT / "emustudio", ROOT / "jupyter_ext" / "emustudio_jupyter_ext"):
        compileall.compile_dir(package, quiet=2)


# -- parallel runs (pytest-xdist) ---------------------------------------------------------------

SPARK_CLUSTER_UNIT = "spark clusters"
_SPARK_MARK = "pytest.mark.spark_cluster"


@cache
def starts_spark_clusters(module: str) -> bool:
    """Whether the test module at this path (relative to the root) is marked ``spark_cluster``.
    xdist's controller collects nothing, so it reads the module's source; the workers check at
    collection that every test of such a module, and no other, has the mark."""
    try:
        return _SPARK_MARK in (ROOT / module).read_text()
    except OSError:
        return False


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with every Spark cluster module in one unit of work (see above)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ClusterModulesTogether(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = _module_of(nodeid)
            return SPARK_CLUSTER_UNIT if starts_spark_clusters(module) else module

    # Units go out in collection order, which the workers sort (longest first): not by count.
    config.option.loadscopereorder = False
    return ClusterModulesTogether(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist: the Spark cluster modules first (the longest unit starts first), then the
    other modules longest first (``_MODULE_SECONDS``); a mark that is not the module's own
    ``pytestmark`` is refused (the controller could not see it)."""
    if not hasattr(config, "workerinput"):
        return
    for item in items:
        marked = item.get_closest_marker("spark_cluster") is not None
        if marked != starts_spark_clusters(_module_of(item.nodeid)):
            raise pytest.UsageError(
                f"{item.nodeid}: mark a module that starts Spark clusters with a module-level"
                " `pytestmark = pytest.mark.spark_cluster` (the whole module, nothing else)"
            )
    seconds: dict[str, float] = _cache(config).get(_MODULE_SECONDS, {})

    def unit_order(item: pytest.Item) -> tuple[bool, float]:
        module = _module_of(item.nodeid)
        return not starts_spark_clusters(module), -seconds.get(module, 0.0)

    items.sort(key=unit_order)  # stable: a module's tests keep their order


# What each module took in the last run that ran it (the pytest cache, where it is on): under
# xdist the longest modules go out first, so that no long one starts last while the other
# workers idle. A hint only: without it (a clean clone) the units go in collection order.
_MODULE_SECONDS = "emustudio/module-seconds"
_ran: dict[str, float] = {}


def _cache(config: pytest.Config) -> Any:
    cache = getattr(config, "cache", None)
    return cache if cache is not None else {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # In the controller (or a serial session): the workers' reports of setup, call, teardown.
    _ran[_module_of(report.nodeid)] = _ran.get(_module_of(report.nodeid), 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    cache = getattr(session.config, "cache", None)
    if cache is None or hasattr(session.config, "workerinput") or not _ran:
        return
    cache.set(_MODULE_SECONDS, {**cache.get(_MODULE_SECONDS, {}), **_ran})


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str] | None:
    """None: the module shares the session's gateway; a dict: the module gets a gateway of its
    own with this environment (``{}`` for the defaults)."""
    return None


@pytest.fixture(scope="module")
def gateway(
    gateway_env: dict[str, str] | None, request: pytest.FixtureRequest
) -> Iterator[GatewayProcess]:
    if gateway_env is None:
        yield request.getfixturevalue("emu_gateway")
        return
    gw = GatewayProcess(env=gateway_env)
    try:
        yield gw.start()
    finally:
        gw.close()


@pytest.fixture(scope="module")
def emr(gateway: GatewayProcess) -> Any:
    return gateway.client("emr")


@pytest.fixture(scope="module")
def ec2(gateway: GatewayProcess) -> Any:
    return gateway.client("ec2")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def network(ec2: Any) -> StudioNetwork:
    return make_studio_network(ec2, subnets=3)
