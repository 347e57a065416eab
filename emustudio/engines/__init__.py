"""What runs notebooks and jobs: EMR clusters as Apache Spark, behind a small contract."""

from emustudio.engines.base import (
    ClusterEngine,
    ClusterSpec,
    ClusterStartError,
    NodeInfo,
    NodeSpec,
    StepOutcome,
)

__all__ = [
    "ClusterEngine",
    "ClusterSpec",
    "ClusterStartError",
    "NodeInfo",
    "NodeSpec",
    "StepOutcome",
]
