"""A stopped Workspace does not keep its cluster alive: auto-termination sees what EMR sees.

EMR calls a cluster idle when no YARN application, step or EMR Studio connection is active; a
stopped Workspace has no connection, and AWS says a stop "terminates any corresponding notebook
kernels". So stopping an attached Workspace ends its kernels on the cluster and closes its
kernel route, and the cluster then ends by its ``IdleTimeout`` with EMR's idle reason. A running
attached Workspace with a kernel keeps the cluster alive past that timeout. The stopped
Workspace keeps naming its cluster and its next start attaches it again.

Real containers: a gateway of the module's own, one cluster of one master and one core node,
one Workspace, a PySpark kernel on the cluster. ``IdleTimeout`` is AWS's minimum, 60 s.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
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
from tests.web.test_browser_cluster import kernels_on

__all__ = ["workspace_image"]  # the module fixture that builds the Workspace image

# A cluster start, two Workspace starts, two Spark sessions, two idle minutes.
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1500)]
POLL = {"Delay": 2, "MaxAttempts": 450}
IDLE = 60  # AWS's minimum IdleTimeout
IDLE_REASON = {
    "Code": "ALL_STEPS_COMPLETED",
    "Message": "The cluster was idle for longer than its auto-termination policy's idle"
    f" timeout ({IDLE} seconds) and was terminated.",
}


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return {}


def until(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(1)
    return found


def route_code(gateway: GatewayProcess, editor_id: str) -> int:
    """What the kernel route answers a caller with no engine secret of the Workspace: 403 while
    the route is open (the secret is wrong), 409 once the Workspace has no route."""
    request = urllib.request.Request(
        f"{gateway.endpoint_url}/engine/{editor_id}/api/kernels",
        headers={"Authorization": "token not-the-secret"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def state_of(emr: Any, cluster_id: str) -> str:
    return str(emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"])


def test_a_stopped_workspace_lets_its_cluster_idle_and_a_running_one_keeps_it(
    gateway: GatewayProcess, docker_client: docker.DockerClient
) -> None:
    emr, editors = gateway.client("emr"), gateway.client("emr-studio")
    ec2 = gateway.client("ec2")
    net: StudioNetwork = open_engine_port(ec2, make_studio_network(ec2, subnets=1))
    ensure_emr_default_roles(gateway.client("iam"))
    ensure_studio_service_role(gateway.client("iam"))
    instances = job_flow()["Instances"] | {"Ec2SubnetId": net.subnet_ids[0]}
    spark = {"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "512m"}}
    cluster = emr.run_job_flow(
        **job_flow(Name="idle-attached", Instances=instances, Configurations=[spark])
    )["JobFlowId"]
    studio_id = emr.create_studio(**studio_args(net, Name="idle"))["StudioId"]
    editor_id = editors.create_editor(StudioId=studio_id, Name="attached")["EditorId"]
    wait_for_status(editors, editor_id, "Ready")
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=POLL)
    master = next(
        c for c in node_containers(docker_client, cluster)
        if c.labels["emustudio.instance-role"] == "MASTER"
    )  # fmt: skip

    # Attached, a cell run: the kernel runs on the master, the route is open.
    editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster, "Type": "EMR"})
    wait_for_status(editors, editor_id, "Attached")
    workspace = Workspace(gateway, editor_id)
    kernel = notebooks.open_kernel(workspace, "idle.ipynb")
    assert notebooks.execute(workspace, kernel, "spark.range(1000).count()") == "1000"
    assert len(kernels_on(master)) == 1
    assert route_code(gateway, editor_id) == 403

    # Stopped: its kernels on the cluster end, its route refuses it, and it still names its
    # cluster (as AWS keeps a stopped Workspace's cluster).
    editors.stop_editor(EditorId=editor_id)
    stopped = wait_for_status(editors, editor_id, "Idle")
    assert stopped["AttachedClusterId"] == cluster
    assert "ExecutionEngine" not in stopped
    until(lambda: kernels_on(master) == [], "the stopped Workspace's kernels ended")
    assert route_code(gateway, editor_id) == 409

    # Started again: once Ready it attaches to its cluster again, and a new kernel runs there.
    editors.start_editor(EditorId=editor_id)
    started = wait_for_status(editors, editor_id, "Attached")
    assert started["ExecutionEngine"] == {"Id": cluster, "Type": "EMR"}
    workspace = Workspace(gateway, editor_id)
    assert workspace.request("GET", "emustudio/engine")["attached"]["cluster_id"] == cluster
    kernel = notebooks.open_kernel(workspace, "idle.ipynb")
    assert notebooks.execute(workspace, kernel, "spark.range(10).count()") == "10"

    # The control: running, attached, a kernel on the cluster: alive well past the timeout.
    emr.put_auto_termination_policy(ClusterId=cluster, AutoTerminationPolicy={"IdleTimeout": IDLE})
    time.sleep(IDLE + 40)  # the idle check reads every 10 s
    assert state_of(emr, cluster) == "WAITING"
    assert len(kernels_on(master)) == 1

    # Stopped: nothing is left on the cluster, which ends for idleness with EMR's reason.
    editors.stop_editor(EditorId=editor_id)
    wait_for_status(editors, editor_id, "Idle")
    until(lambda: kernels_on(master) == [], "the stopped Workspace's kernels ended")
    stopped_at = time.monotonic()
    emr.get_waiter("cluster_terminated").wait(
        ClusterId=cluster, WaiterConfig={"Delay": 5, "MaxAttempts": 60}
    )
    assert time.monotonic() - stopped_at >= IDLE - 15  # idle for the timeout, not ended at once
    status = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert status["State"] == "TERMINATED"
    assert status["StateChangeReason"] == IDLE_REASON
    assert node_containers(docker_client, cluster) == []
    # The cluster is gone: the Workspace names it no longer.
    editor = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert editor["Status"] == "Idle" and "AttachedClusterId" not in editor
