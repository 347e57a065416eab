"""The pytest plugin: ``emu_`` fixtures backed by a real gateway and real Docker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emustudio.testing.gateway import GatewayProcess


@pytest.fixture(scope="session")
def emu_gateway() -> Iterator[GatewayProcess]:
    """A gateway for the whole test session; its Docker networks are removed at the end."""
    gateway = GatewayProcess()
    try:
        yield gateway.start()
    finally:
        gateway.close()


@pytest.fixture
def emu_emr(emu_gateway: GatewayProcess) -> Any:
    """A boto3 EMR client signed with the gateway's root credentials."""
    return emu_gateway.client("emr")


@pytest.fixture
def emu_ec2(emu_gateway: GatewayProcess) -> Any:
    """A boto3 EC2 client signed with the gateway's root credentials."""
    return emu_gateway.client("ec2")
