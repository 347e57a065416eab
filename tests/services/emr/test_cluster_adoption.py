"""A gateway restart adopts a running cluster (as it adopts Workspaces), and the adopted cluster
ends by its auto-termination policy once idle; a restart in the middle of a resize goes on with
it: a node being added is made after all, a node being drained is drained and removed. A cluster each, on a gateway of the module's own (a restart must
not disturb other modules)."""

from __future__ import annotations

import json
import time
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from emustudio.testing.service_role import ensure_emr_default_roles
from emustudio.testing.vpc import StudioNetwork
from tests.services.emr.test_clusters import (
    DRAIN,
    bash_step,
    busy_executors,
    core_group,
    error_of,
    job_flow,
    node_containers,
    spark_workers,
    wait_until,
)

# a cluster on a loaded 2-core machine, idle a minute
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1200)]

POLL = {"Delay": 2, "MaxAttempts": 300}


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def roles(gateway: GatewayProcess) -> None:
    ensure_emr_default_roles(gateway.client("iam"))


def state_of(emr: Any, cluster_id: str) -> str:
    return str(emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"])


def test_a_restart_adopts_the_cluster_which_then_auto_terminates(
    gateway: GatewayProcess, roles: None, network: StudioNetwork,
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    emr = gateway.client("emr")
    instances = {
        "MasterInstanceType": "m5.xlarge",
        "InstanceCount": 1,
        "KeepJobFlowAliveWhenNoSteps": True,
        "Ec2SubnetId": network.subnet_ids[0],
    }
    cluster_id = emr.run_job_flow(
        **job_flow(Name="idle", Instances=instances, AutoTerminationPolicy={"IdleTimeout": 600})
    )["JobFlowId"]  # fmt: skip
    policy = emr.get_auto_termination_policy(ClusterId=cluster_id)["AutoTerminationPolicy"]
    assert policy == {"IdleTimeout": 600}
    with pytest.raises(ClientError) as exc:
        emr.put_auto_termination_policy(
            ClusterId=cluster_id, AutoTerminationPolicy={"IdleTimeout": 10}
        )
    assert error_of(exc)[0] == "ValidationException"
    emr.remove_auto_termination_policy(ClusterId=cluster_id)
    assert "AutoTerminationPolicy" not in emr.get_auto_termination_policy(ClusterId=cluster_id)
    emr.get_waiter("cluster_running").wait(ClusterId=cluster_id, WaiterConfig=POLL)
    nodes = {c.id for c in node_containers(docker_client, cluster_id)}

    # A step runs while the gateway stops: the restart adopts the cluster, the step is FAILED
    # (nothing watched it to its end), and the next step runs on the same nodes.
    running = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[bash_step("long", "sleep 600")])[
        "StepIds"
    ][0]
    for _ in range(150):
        if emr.describe_step(ClusterId=cluster_id, StepId=running)["Step"]["Status"]["State"] == (
            "RUNNING"
        ):
            break
        time.sleep(1)
    assert gateway.stop() == 0, gateway.log()
    gateway.start()
    emr = gateway.client("emr")
    assert {c.id for c in node_containers(docker_client, cluster_id)} == nodes
    status = emr.describe_step(ClusterId=cluster_id, StepId=running)["Step"]["Status"]
    assert status["State"] == "FAILED"
    assert status["FailureDetails"]["Reason"] == "The gateway restarted while the step ran."
    after = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[bash_step("after", "true")])[
        "StepIds"
    ][0]
    emr.get_waiter("step_complete").wait(ClusterId=cluster_id, StepId=after, WaiterConfig=POLL)
    emr.get_waiter("cluster_running").wait(ClusterId=cluster_id, WaiterConfig=POLL)
    assert state_of(emr, cluster_id) == "WAITING"

    # The policy, set through the AWS CLI, ends the idle cluster.
    aws_cli(gateway, "emr", "put-auto-termination-policy", "--cluster-id", cluster_id,
            "--auto-termination-policy", "IdleTimeout=60")  # fmt: skip
    got = json.loads(
        aws_cli(gateway, "emr", "get-auto-termination-policy", "--cluster-id", cluster_id).stdout
    )
    assert got == {"AutoTerminationPolicy": {"IdleTimeout": 60}}
    emr.get_waiter("cluster_terminated").wait(
        ClusterId=cluster_id, WaiterConfig={"Delay": 5, "MaxAttempts": 60}
    )
    status = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
    assert status["State"] == "TERMINATED"
    assert status["StateChangeReason"] == {
        "Code": "ALL_STEPS_COMPLETED",
        "Message": "The cluster was idle for longer than its auto-termination policy's idle"
        " timeout (60 seconds) and was terminated.",
    }
    assert node_containers(docker_client, cluster_id) == []

    # DescribeJobFlows tells it the old way.
    flow = emr.describe_job_flows(JobFlowIds=[cluster_id])["JobFlows"][0]
    assert flow["JobFlowId"] == cluster_id and flow["Name"] == "idle"
    assert flow["ExecutionStatusDetail"]["State"] == "COMPLETED"
    assert flow["Instances"]["InstanceCount"] == 1
    assert flow["Instances"]["MasterInstanceType"] == "m5.xlarge"
    assert flow["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    assert [g["InstanceRole"] for g in flow["Instances"]["InstanceGroups"]] == ["MASTER"]
    assert [s["StepConfig"]["Name"] for s in flow["Steps"]] == ["long", "after"]
    assert [s["ExecutionStatusDetail"]["State"] for s in flow["Steps"]] == ["FAILED", "COMPLETED"]
    assert flow["BootstrapActions"] == []
    assert "LogUri" not in flow  # a member AWS leaves out is left out
    listed = emr.describe_job_flows(JobFlowStates=["COMPLETED"])["JobFlows"]
    assert [f["JobFlowId"] for f in listed] == [cluster_id]


def test_a_restart_in_the_middle_of_a_resize_goes_on_with_it(
    gateway: GatewayProcess, roles: None, network: StudioNetwork,
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    emr = gateway.client("emr")
    instances = job_flow()["Instances"] | {"Ec2SubnetId": network.subnet_ids[0]}
    spark = {"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "512m"}}
    cluster_id = emr.run_job_flow(
        **job_flow(Name="grow", Instances=instances, Configurations=[spark])
    )["JobFlowId"]
    emr.get_waiter("cluster_running").wait(ClusterId=cluster_id, WaiterConfig=POLL)
    core = core_group(emr, cluster_id)["Id"]

    # The gateway stops while the new node is being made: the restart adopts the cluster (the
    # node it was adding is not one it must find running) and makes the node after all.
    emr.modify_instance_groups(
        ClusterId=cluster_id, InstanceGroups=[{"InstanceGroupId": core, "InstanceCount": 2}]
    )
    adding = emr.list_instances(ClusterId=cluster_id, InstanceGroupId=core)["Instances"]
    assert sorted(i["Status"]["State"] for i in adding) == ["PROVISIONING", "RUNNING"]
    assert gateway.stop() == 0, gateway.log()
    gateway.start()
    emr = gateway.client("emr")
    wait_until(lambda: (g := core_group(emr, cluster_id))["RunningInstanceCount"] == 2
               and g["Status"]["State"] == "RUNNING")  # fmt: skip
    assert state_of(emr, cluster_id) == "WAITING"
    running = emr.list_instances(ClusterId=cluster_id, InstanceStates=["RUNNING"])["Instances"]
    assert len(running) == 3 and all(i["PrivateIpAddress"] for i in running)
    assert {i["Ec2InstanceId"] for i in running} >= {i["Ec2InstanceId"] for i in adding}
    roles_ = sorted(
        c.labels["emustudio.instance-role"] for c in node_containers(docker_client, cluster_id)
    )
    assert roles_ == ["CORE", "CORE", "MASTER"]
    wait_until(lambda: spark_workers(docker_client, cluster_id) == 2, 180)

    # And in the middle of a shrink: the drain of the node going goes on after the restart
    # (the job that kept it busy ends with the restart, as any step that ran), then it ends.
    master = next(c for c in node_containers(docker_client, cluster_id)
                  if c.labels["emustudio.instance-role"] == "MASTER")  # fmt: skip
    step = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[bash_step("drain", DRAIN)])[
        "StepIds"
    ][0]
    wait_until(lambda: busy_executors(master) == 2, 300)
    newest = [i["Ec2InstanceId"] for i in running if i["InstanceGroupId"] == core][-1]
    emr.modify_instance_groups(
        ClusterId=cluster_id, InstanceGroups=[{"InstanceGroupId": core, "InstanceCount": 1,
                                               "EC2InstanceIdsToTerminate": [newest],
                                               "ShrinkPolicy": {"DecommissionTimeout": 600}}]
    )  # fmt: skip
    assert core_group(emr, cluster_id)["Status"]["State"] == "RESIZING"
    assert gateway.stop() == 0, gateway.log()
    gateway.start()
    emr = gateway.client("emr")
    assert emr.describe_step(ClusterId=cluster_id, StepId=step)["Step"]["Status"]["State"] == (
        "FAILED"
    )
    wait_until(lambda: core_group(emr, cluster_id)["Status"]["State"] == "RUNNING", 400)
    assert core_group(emr, cluster_id)["RunningInstanceCount"] == 1
    ended = emr.list_instances(ClusterId=cluster_id, InstanceStates=["TERMINATED"])["Instances"]
    assert [i["Ec2InstanceId"] for i in ended] == [newest]
    assert len(node_containers(docker_client, cluster_id)) == 2
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=POLL)
    assert node_containers(docker_client, cluster_id) == []
