"""A Workspace attached to a cluster stays attached through a gateway restart: the same PySpark
kernel, its variables intact, runs Spark on the cluster afterwards. A cluster that ended while the
gateway was down leaves its Workspace honestly detached: ``Ready`` with the reason, and its
server back on local kernels.

Real containers and a real restart: a gateway of the module's own (a restart must not disturb
other modules), one cluster of one master and one core node, one Workspace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from emustudio.testing import notebooks
from emustudio.testing.backup import Workspace
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status
from emustudio.testing.service_role import ensure_emr_default_roles, ensure_studio_service_role
from emustudio.testing.vpc import StudioNetwork, make_studio_network, open_engine_port, studio_args
from tests.services.emr.test_clusters import job_flow, node_containers
from tests.web.test_browser import workspace_image

__all__ = ["workspace_image"]  # the module fixture that builds the Workspace image

# A cluster start, a Workspace start, a Spark session, two gateway starts.
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1500)]
POLL = {"Delay": 2, "MaxAttempts": 450}


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def studio_net(gateway: GatewayProcess) -> StudioNetwork:
    ec2 = gateway.client("ec2")
    return open_engine_port(ec2, make_studio_network(ec2, subnets=1))


@pytest.fixture(scope="module")
def cluster(gateway: GatewayProcess, studio_net: StudioNetwork) -> Iterator[str]:
    ensure_emr_default_roles(gateway.client("iam"))
    instances = job_flow()["Instances"] | {"Ec2SubnetId": studio_net.subnet_ids[0]}
    spark = {"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "512m"}}
    cluster_id = gateway.client("emr").run_job_flow(
        **job_flow(Name="restart", Instances=instances, Configurations=[spark])
    )["JobFlowId"]
    yield cluster_id  # the module's gateway removes its containers when it closes


def until(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.5)
    return found


def test_an_attached_workspace_runs_spark_on_its_cluster_after_a_gateway_restart(
    gateway: GatewayProcess, studio_net: StudioNetwork, cluster: str,
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    emr, editors = gateway.client("emr"), gateway.client("emr-studio")
    ensure_studio_service_role(gateway.client("iam"))
    studio_id = emr.create_studio(**studio_args(studio_net, Name="restart"))["StudioId"]
    editor_id = editors.create_editor(StudioId=studio_id, Name="attached")["EditorId"]
    wait_for_status(editors, editor_id, "Ready")
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=POLL)
    editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster, "Type": "EMR"})
    wait_for_status(editors, editor_id, "Attached")

    workspace = Workspace(gateway, editor_id)
    kernel_id = notebooks.open_kernel(workspace, "restart.ipynb")
    code = "app = spark.sparkContext.applicationId; spark.range(10**6).count()"
    assert notebooks.execute(workspace, kernel_id, code) == "1000000"

    assert gateway.stop() == 0, gateway.log()
    gateway.start()
    editors = gateway.client("emr-studio")
    editor = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert editor["Status"] == "Attached"
    assert editor["ExecutionEngine"] == {"Id": cluster, "Type": "EMR"}
    assert workspace.request("GET", "emustudio/engine")["attached"]["cluster_id"] == cluster
    # The same kernel, on the cluster, with its Spark application: the notebook goes on.
    code = "(app == spark.sparkContext.applicationId, spark.range(10**6).count())"
    assert notebooks.execute(workspace, kernel_id, code) == "(True, 1000000)"
    listed = workspace.request("GET", "api/kernels")
    assert [k["id"] for k in listed] == [kernel_id]

    # The cluster loses a node while the gateway is down: the restart ends the cluster, and
    # the Workspace says it is detached, down to its server's own kernels.
    assert gateway.stop() == 0, gateway.log()
    core = next(
        c for c in node_containers(docker_client, cluster)
        if c.labels["emustudio.instance-role"] == "CORE"
    )  # fmt: skip
    core.remove(force=True)
    gateway.start()
    emr, editors = gateway.client("emr"), gateway.client("emr-studio")
    status = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert status["State"] in ("TERMINATING", "TERMINATED_WITH_ERRORS")
    editor = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert editor["Status"] == "Ready"
    assert editor["StatusReason"] == f"Cluster {cluster} terminated; the Workspace is detached."
    assert "ExecutionEngine" not in editor and "AttachedClusterId" not in editor
    until(
        lambda: workspace.request("GET", "emustudio/engine") == {"attached": None},
        "the Workspace's server back on local kernels",
    )
    assert "pysparkkernel" not in workspace.request("GET", "api/kernelspecs")["kernelspecs"]
    until(
        lambda: (
            emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"]
            == "TERMINATED_WITH_ERRORS"
        ),
        "the cluster ended",
        timeout=300,
    )
    assert node_containers(docker_client, cluster) == []
