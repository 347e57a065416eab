"""What several benchmarks measure the same way: the machine's load, the CPU of containers and
of Docker's daemons, and an ``emr-studio`` client of a gateway.

The scripts run as ``.venv/bin/python bench/<name>.py``, so this folder is on ``sys.path`` and
they import this module as ``_measure``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import botocore.session
import psutil

from emustudio.aws.spec import DATA_PATH
from emustudio.testing.gateway import GatewayProcess

CPUACCT = Path("/sys/fs/cgroup/cpuacct/docker")
DAEMONS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2")


def load() -> str:
    """The load average, for the line next to a figure."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def docker_daemons() -> list[psutil.Process]:
    """dockerd, containerd and the shims (shared with every container of the machine)."""
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] in DAEMONS]


def container_cpu(ids: list[str]) -> float:
    """CPU seconds these containers used, from their cgroups' ``cpuacct.usage``."""
    total = 0
    for cid in ids:
        path = CPUACCT / cid / "cpuacct.usage"
        if path.exists():
            total += int(path.read_text())
    return total / 1e9


def editors_client(gateway: GatewayProcess) -> Any:
    """Editors are in botocore's EMR model under the console's names (the gateway's data)."""
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    return session.create_client(
        "emr-studio",
        endpoint_url=gateway.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
