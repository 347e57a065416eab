"""The engine contract: what runs an EMR cluster's nodes, steps and notebook kernels.

The EMR service (``services/emr/clusters.py``) owns the API state (cluster and step states, their
reasons); an engine only makes nodes exist, runs a step's command on the master, and says where
the master's Jupyter Enterprise Gateway answers. The setting ``cluster_engine`` picks the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from emustudio.engines.releases import InstanceType


class ClusterStartError(RuntimeError):
    """The nodes could not be started; the message says which and why (it becomes the
    cluster's ``StateChangeReason``)."""


@dataclass(frozen=True)
class NodeSpec:
    """One EC2 instance of the cluster: ``role`` is ``MASTER``, ``CORE`` or ``TASK``."""

    instance_id: str
    role: str
    instance_type: InstanceType


@dataclass(frozen=True)
class ClusterSpec:
    cluster_id: str
    subnet_id: str
    spark_version: str
    nodes: tuple[NodeSpec, ...]
    gateway_token: str
    spark_defaults: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeInfo:
    instance_id: str
    private_ip: str | None
    hostname: str


@dataclass(frozen=True)
class StepOutcome:
    """How a step's command ended: its exit code and the tails of its output."""

    exit_code: int
    stdout: str
    stderr: str
    cancelled: bool = False


class ClusterEngine(ABC):
    @abstractmethod
    async def start(self, spec: ClusterSpec) -> list[NodeInfo]:
        """Start every node; return once the master's daemons answer and the workers have
        registered. Raises :class:`ClusterStartError` (having removed what it made)."""

    @abstractmethod
    async def stop(self, cluster_id: str) -> None:
        """Remove every node of the cluster; a cluster with no nodes left counts as done."""

    @abstractmethod
    async def run_step(self, cluster_id: str, step_id: str, argv: list[str]) -> StepOutcome:
        """Run ``argv`` on the master as the ``hadoop`` user until it exits."""

    @abstractmethod
    async def run_on_node(
        self, cluster_id: str, instance_id: str, argv: list[str], files: Mapping[str, bytes]
    ) -> StepOutcome:
        """Put ``files`` (absolute path -> content, the ``hadoop`` user's, executable) on the
        node ``instance_id``, then run ``argv`` there as ``hadoop`` until it exits (bootstrap
        actions)."""

    @abstractmethod
    async def cancel_step(self, cluster_id: str, step_id: str) -> None:
        """Stop a running step's command (its :meth:`run_step` then returns cancelled)."""

    @abstractmethod
    async def gateway_endpoint(self, cluster_id: str) -> str | None:
        """``host:port`` of the master's Jupyter Enterprise Gateway, None when it is gone."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the engine holds (the nodes keep running)."""
