"""Shared fixtures: a fresh gateway per test module, and the VPC pieces a Studio needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.vpc import StudioNetwork, make_studio_network


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProcess]:
    gw = GatewayProcess()
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
