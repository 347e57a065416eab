"""Fixtures for the S3 backup: a real gateway (``emustudio up`` in a child process) with its
embedded S3 server (rclone), real Workspace containers, and the ``minio`` SDK to look at S3.

A test saves files the way JupyterLab does, through the Workspace's contents API, at the
container's address on its subnet network with the token the gateway keeps (read from the
gateway's store, as only a test may).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from minio import Minio

from emustudio.testing.backup import BUCKET, PREFIX, StudioSetup, minio_of
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.vpc import make_studio_network, studio_args

# Sweeps every few seconds so that tests of the sweep stay short.
SWEEP_SECONDS = 3


def backup_env(**extra: str) -> dict[str, str]:
    return {"EMUSTUDIO_BACKUP_SWEEP_SECONDS": str(SWEEP_SECONDS), **extra}


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    """Each module gets a gateway of its own that sweeps every few seconds."""
    return backup_env()


@pytest.fixture(scope="module")
def gateway(gateway: GatewayProcess, request: pytest.FixtureRequest) -> Iterator[GatewayProcess]:
    """The module's gateway (tests/conftest.py), whose log is kept when it goes."""
    yield gateway
    keep_log(gateway, request.module.__name__)


def keep_log(gateway: GatewayProcess, name: str) -> None:
    """The gateway's log outlives its data directory, for a failure's post-mortem."""
    target = Path(os.environ.get("EMUSTUDIO_TEST_LOGS", "/tmp/emustudio-test-logs"))
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{name}.log").write_text(gateway.log())


@pytest.fixture(scope="module")
def s3(gateway: GatewayProcess) -> Minio:
    return minio_of(gateway)


def rclone_process(gateway: GatewayProcess) -> psutil.Process:
    assert gateway.proc is not None
    found = [p for p in psutil.Process(gateway.proc.pid).children() if p.name() == "rclone"]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def studio(gateway: GatewayProcess) -> StudioSetup:
    net = make_studio_network(gateway.client("ec2"), subnets=2)  # us-east-1a and us-east-1b
    location = f"s3://{BUCKET}/{PREFIX}"
    studio_id = gateway.client("emr").create_studio(**studio_args(net, DefaultS3Location=location))[
        "StudioId"
    ]
    return StudioSetup(studio_id, net.subnet_ids, location)


def pause(process: psutil.Process) -> None:
    os.kill(process.pid, signal.SIGSTOP)


def resume(process: psutil.Process) -> None:
    # A process killed while stopped may already be reaped (the gateway restarts it at once).
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGCONT)


def data_path(gateway: GatewayProcess) -> Path:
    return gateway.data_dir
