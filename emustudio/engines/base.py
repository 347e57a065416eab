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
    """How a step's command ended: its exit code and the tails of its output; ``logs`` holds
    a step's whole ``stdout`` and ``stderr`` files (up to a cap) for its ``LogUri``."""

    exit_code: int
    stdout: str
    stderr: str
    cancelled: bool = False
    logs: Mapping[str, bytes] = field(default_factory=dict)


class ClusterEngine(ABC):
    external_workers: str | None = None
    """Where the executors come from when the engine runs no core or task node of its own (the
    standalone engine: its master's ``spark://`` URL); None when the core and task nodes are the
    engine's. The EMR service then records the master node only (docs/decisions.md)."""

    @abstractmethod
    async def start(self, spec: ClusterSpec) -> list[NodeInfo]:
        """Start every node; return once the master's daemons answer and the workers have
        registered. Raises :class:`ClusterStartError` (having removed what it made)."""

    @abstractmethod
    async def add_nodes(self, spec: ClusterSpec, nodes: list[NodeSpec]) -> list[NodeInfo]:
        """Start ``nodes`` (workers) in the running cluster ``spec`` (its master among
        ``spec.nodes``); return once they have registered. Raises :class:`ClusterStartError`
        (having removed what it made)."""

    @abstractmethod
    async def remove_nodes(self, cluster_id: str, instance_ids: list[str]) -> None:
        """Remove those nodes of the cluster (a resize down)."""

    async def decommission_nodes(  # noqa: B027 - optional: an engine may only remove
        self, cluster_id: str, instance_ids: list[str], timeout: float
    ) -> None:
        """Before :meth:`remove_nodes` of a resize down: let the work running on those nodes
        finish and give them no more, for ``timeout`` seconds at most (EMR's graceful
        decommission)."""

    @abstractmethod
    async def stop(self, cluster_id: str) -> None:
        """Remove every node of the cluster; a cluster with no nodes left counts as done."""

    @abstractmethod
    async def run_step(
        self,
        cluster_id: str,
        step_id: str,
        argv: list[str],
        files: Mapping[str, bytes] | None = None,
    ) -> StepOutcome:
        """Put ``files`` on the master (a custom JAR), then run ``argv`` there as the ``hadoop``
        user until it exits; its output goes where EMR keeps it
        (``/mnt/var/log/hadoop/steps/<step id>/``) and comes back in ``logs``."""

    @abstractmethod
    async def run_on_node(
        self, cluster_id: str, instance_id: str, argv: list[str], files: Mapping[str, bytes]
    ) -> StepOutcome:
        """Put ``files`` (absolute path -> content, the ``hadoop`` user's, executable) on the
        node ``instance_id``, then run ``argv`` there as ``hadoop`` until it exits (bootstrap
        actions); its whole ``stdout`` and ``stderr`` (up to a cap) come back in ``logs``."""

    @abstractmethod
    async def cancel_step(self, cluster_id: str, step_id: str) -> None:
        """Stop a running step's command, also one not started yet (its :meth:`run_step`
        then returns cancelled)."""

    @abstractmethod
    async def running_instances(self, cluster_id: str) -> set[str]:
        """The instance ids of the cluster's nodes that run (after a restart: what to adopt)."""

    @abstractmethod
    async def busy(self, cluster_id: str, within: float) -> bool:
        """Whether the cluster works (for auto-termination): a Spark application runs, or
        ``/emr/metricscollector/isbusy`` on the master was touched in the last ``within``
        seconds, as EMR reads it."""

    @abstractmethod
    async def gateway_endpoint(self, cluster_id: str) -> str | None:
        """``host:port`` of the master's Jupyter Enterprise Gateway, None when it is gone."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the engine holds (the nodes keep running)."""
