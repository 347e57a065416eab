"""Shared fixtures: the gateway a module talks to, and the VPC pieces a Studio needs.

Modules share the session's gateway (the plugin's ``emu_gateway``): starting one costs seconds,
and most modules only add resources of their own. A module whose tests need a gateway of their
own (other settings, a restart that must not touch other modules' state, or assertions about
everything an account holds) overrides ``gateway_env`` with that gateway's environment.
"""

from __future__ import annotations

import compileall
from collections.abc import Iterator
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
    otherwise compile emustudio's two hundred modules again: half a second of CPU each."""
    for package in (ROOT / "emustudio", ROOT / "jupyter_ext" / "emustudio_jupyter_ext"):
        compileall.compile_dir(package, quiet=2)


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
