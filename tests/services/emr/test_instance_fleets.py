"""A cluster of instance fleets, resized with ModifyInstanceFleet through boto3: the core fleet's
target capacity really adds and removes node containers (the removed one decommissioned first),
and what EMR refuses is refused with the operation's own error, changing nothing.

One cluster: a master fleet and a core fleet of one unit, grown to two and shrunk back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.service_role import ensure_emr_default_roles
from emustudio.testing.vpc import StudioNetwork
from tests.services.emr.test_clusters import (
    FAST,
    error_of,
    job_flow,
    node_containers,
    spark_workers,
    wait_until,
)

# a cluster start and a node's, on a loaded machine
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1500)]


def fleet(kind: str, units: int, itype: str = "m5.xlarge") -> dict[str, Any]:
    return {"Name": kind.title(), "InstanceFleetType": kind, "TargetOnDemandCapacity": units,
            "InstanceTypeConfigs": [{"InstanceType": itype, "WeightedCapacity": 1}]}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(gateway: GatewayProcess, emr: Any, network: StudioNetwork) -> Iterator[str]:
    ensure_emr_default_roles(gateway.client("iam"))
    instances = {
        "InstanceFleets": [fleet("MASTER", 1), fleet("CORE", 1)],
        "KeepJobFlowAliveWhenNoSteps": True,
        "Ec2SubnetIds": [network.subnet_ids[0]],
    }
    cluster_id = emr.run_job_flow(**job_flow(Name="fleets", Instances=instances))["JobFlowId"]
    try:
        yield cluster_id
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=FAST)


def fleets(emr: Any, cluster: str) -> dict[str, dict[str, Any]]:
    listed = emr.list_instance_fleets(ClusterId=cluster)["InstanceFleets"]
    return {f["InstanceFleetType"]: f for f in listed}


def refused(emr: Any, cluster: str, change: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        emr.modify_instance_fleet(ClusterId=cluster, InstanceFleet=change)
    return error_of(exc)


def test_refusals_change_nothing(emr: Any, cluster: str) -> None:
    core = fleets(emr, cluster)["CORE"]["Id"]
    state = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"]
    if state in ("STARTING", "BOOTSTRAPPING"):  # the cluster has only begun to start
        assert refused(emr, cluster, {"InstanceFleetId": core, "TargetOnDemandCapacity": 2}) == (
            "InvalidRequestException",
            f"The cluster {cluster} is {state}; an instance fleet can be resized only while the"
            " cluster is RUNNING or WAITING.",
        )
    emr.get_waiter("cluster_running").wait(
        ClusterId=cluster, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
    )
    master = fleets(emr, cluster)["MASTER"]["Id"]
    assert refused(emr, cluster, {"InstanceFleetId": master, "TargetOnDemandCapacity": 2}) == (
        "InvalidRequestException",
        "The master instance fleet cannot be resized.",
    )
    assert refused(emr, cluster, {"InstanceFleetId": "if-NOSUCHFLEET", "TargetSpotCapacity": 1}) == (
        "InvalidRequestException",
        "Instance fleet id 'if-NOSUCHFLEET' is not valid.",
    )  # fmt: skip
    assert refused(emr, cluster, {"InstanceFleetId": core, "TargetOnDemandCapacity": 0}) == (
        "InvalidRequestException",
        "The core instance fleet needs a target capacity of at least 1.",
    )
    change = {"InstanceFleetId": core, "InstanceTypeConfigs": [{"InstanceType": "x9.huge"}]}
    assert refused(emr, cluster, change) == (
        "InvalidRequestException",
        "The requested instance type x9.huge is not supported in the requested availability zone.",
    )
    # The model's own check, before the gateway: the fleet must be named.
    with pytest.raises(Exception, match="InstanceFleetId"):
        emr.modify_instance_fleet(ClusterId=cluster, InstanceFleet={"TargetSpotCapacity": 1})
    # Instance groups are not a fleet cluster's.
    with pytest.raises(ClientError) as exc:
        emr.modify_instance_groups(
            ClusterId=cluster, InstanceGroups=[{"InstanceGroupId": core, "InstanceCount": 2}]
        )
    assert error_of(exc) == ("InvalidRequestException", f"Instance group id '{core}' is not valid.")
    after = fleets(emr, cluster)
    assert after["CORE"]["TargetOnDemandCapacity"] == 1
    assert after["CORE"]["ProvisionedOnDemandCapacity"] == 1
    assert after["CORE"]["Status"]["State"] == "RUNNING"
    assert len(emr.list_instances(ClusterId=cluster)["Instances"]) == 2


@pytest.mark.timeout(1200)
def test_modify_instance_fleet_adds_and_removes_nodes(
    emr: Any, cluster: str, docker_client: docker.DockerClient
) -> None:
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    core = fleets(emr, cluster)["CORE"]["Id"]
    assert (
        emr.modify_instance_fleet(
            ClusterId=cluster,
            InstanceFleet={"InstanceFleetId": core, "TargetOnDemandCapacity": 2},
        )["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    assert fleets(emr, cluster)["CORE"]["Status"]["State"] == "RESIZING"
    assert refused(emr, cluster, {"InstanceFleetId": core, "TargetOnDemandCapacity": 1}) == (
        "InvalidRequestException",
        f"The instance fleet {core} is already resizing.",
    )
    wait_until(lambda: fleets(emr, cluster)["CORE"]["Status"]["State"] == "RUNNING", 600)
    grown = fleets(emr, cluster)["CORE"]
    assert (grown["TargetOnDemandCapacity"], grown["TargetSpotCapacity"]) == (2, 0)
    assert grown["ProvisionedOnDemandCapacity"] == 2
    roles = sorted(c.labels["emustudio.instance-role"] for c in node_containers(docker_client,
                                                                                 cluster))  # fmt: skip
    assert roles == ["CORE", "CORE", "MASTER"]
    wait_until(lambda: spark_workers(docker_client, cluster) == 2, 120)
    running = emr.list_instances(ClusterId=cluster, InstanceFleetType="CORE",
                                 InstanceStates=["RUNNING"])["Instances"]  # fmt: skip
    assert len(running) == 2 and all(i["InstanceFleetId"] == core for i in running)

    # Back to one unit: the newest node is decommissioned, then removed, and stays listed.
    newest = running[-1]["Ec2InstanceId"]
    emr.modify_instance_fleet(
        ClusterId=cluster, InstanceFleet={"InstanceFleetId": core, "TargetOnDemandCapacity": 1}
    )
    wait_until(lambda: fleets(emr, cluster)["CORE"]["Status"]["State"] == "RUNNING", 600)
    ended = emr.list_instances(ClusterId=cluster, InstanceStates=["TERMINATED"])["Instances"]
    assert [i["Ec2InstanceId"] for i in ended] == [newest]
    assert fleets(emr, cluster)["CORE"]["ProvisionedOnDemandCapacity"] == 1
    assert len(node_containers(docker_client, cluster)) == 2
    wait_until(lambda: spark_workers(docker_client, cluster) == 1, 120)


def test_the_master_log_shows_the_graceful_decommission(
    emr: Any, cluster: str, docker_client: docker.DockerClient
) -> None:
    """The removed node's worker was decommissioned through Spark, not killed."""
    ended = emr.list_instances(ClusterId=cluster, InstanceStates=["TERMINATED"])["Instances"]
    assert ended, "the resize test removes a node first"
    gone = ended[0]["Ec2InstanceId"]
    master = next(
        c for c in node_containers(docker_client, cluster)
        if c.labels["emustudio.instance-role"] == "MASTER"
    )  # fmt: skip
    lines = master.logs().decode(errors="replace").splitlines()
    assert any("Decommissioning worker" in line and gone in line for line in lines), [
        line for line in lines if "ecommission" in line
    ]
