"""The Docker side of emustudio: one executor for blocking docker calls, subnet networks."""

from emustudio.runtime.docker_executor import DockerExecutor, ExecutorClosed
from emustudio.runtime.networks import (
    LABEL,
    CidrConflict,
    NetworkInUse,
    ReconcileReport,
    RemapPoolExhausted,
    SubnetNetwork,
    SubnetNetworks,
    SubnetSpec,
)

__all__ = [
    "LABEL",
    "CidrConflict",
    "DockerExecutor",
    "ExecutorClosed",
    "NetworkInUse",
    "ReconcileReport",
    "RemapPoolExhausted",
    "SubnetNetwork",
    "SubnetNetworks",
    "SubnetSpec",
]
