"""The standalone engine against a Spark standalone master and worker that the test runs itself,
outside emustudio: plain containers of the cluster image on a network the test makes, as a user's
own Spark cluster would be. A gateway with ``cluster_engine: standalone`` then runs a cluster
through boto3 whose steps and notebook kernels get their executors from that worker; terminating
the cluster leaves the user's Spark cluster as it was."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images
from emustudio.testing import notebooks
from emustudio.testing.backup import Workspace
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status
from emustudio.testing.service_role import ensure_emr_default_roles, ensure_studio_service_role
from emustudio.testing.vpc import StudioNetwork, studio_args

SPARK = "3.5.9"
FAST = {"Delay": 2, "MaxAttempts": 300}
LABEL = "emustudio.test"  # what the test made, to find and remove it (never anything else)
# Real Spark: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1800)]


# --- the user's own Spark cluster, outside emustudio ---------------------------------------------


EPHEMERAL = (32768, 60999)  # Linux's default ip_local_port_range: where drivers listen


class SparkCluster:
    def __init__(self, network: Any, master: Any, worker: Any, url: str) -> None:
        self.network, self.master, self.worker, self.url = network, master, worker, url
        network.reload()
        self.cidr = str(network.attrs["IPAM"]["Config"][0]["Subnet"])

    def worker_connects(self, address: str, port: int) -> bool:
        """Whether a TCP connection from the worker to ``address:port`` opens (3 s)."""
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('{address}', {port}), timeout=3).close()\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        return int(self.worker.exec_run(["python3", "-c", probe]).exit_code) == 0

    @staticmethod
    def ip(container: Any, network: str) -> str:
        container.reload()
        return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])

    def master_json(self) -> dict[str, Any]:
        return http_json(f"http://{self.ip(self.master, self.network.name)}:8080/json/")

    def worker_json(self) -> dict[str, Any]:
        return http_json(f"http://{self.ip(self.worker, self.network.name)}:8081/json/")


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def wait_until(check: Any, what: str, seconds: float = 180) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if value := check():
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


@pytest.fixture(scope="module")
def spark_cluster(docker_client: docker.DockerClient) -> Iterator[SparkCluster]:
    """A Spark standalone master and one worker (2 cores, 1 GiB), each ``spark-class`` in its
    own container of the cluster image, on a bridge network of the test's own."""
    executor = DockerExecutor(None)
    try:
        image = asyncio.run(Images(executor).build_cluster(SPARK))
    finally:
        executor.close()
    run = secrets.token_hex(4)
    labels = {LABEL: f"standalone-{run}"}
    network = docker_client.networks.create(f"emustudio-test-spark-{run}", labels=labels)
    made: list[Any] = []
    try:

        def start(role: str, command: str, memory: str) -> Any:
            container = docker_client.containers.run(
                image,
                ["/bin/sh", "-c", command],
                name=f"emustudio-test-spark-{run}-{role}",
                labels=labels,
                network=network.name,
                environment={"SPARK_DAEMON_MEMORY": "256m"},
                healthcheck={"test": ["NONE"]},  # the image's check is an EMR node's
                mem_limit=memory,
                init=True,
                detach=True,
            )
            made.append(container)
            return container

        master = start(
            "master",
            'exec spark-class org.apache.spark.deploy.master.Master --host "$(hostname -i)"'
            " --port 7077 --webui-port 8080",
            "768m",
        )
        url = f"spark://{SparkCluster.ip(master, network.name)}:7077"
        worker = start(
            "worker",
            'exec spark-class org.apache.spark.deploy.worker.Worker --host "$(hostname -i)"'
            " --webui-port 8081 --cores 2 --memory 1g --work-dir /var/lib/spark/work " + url,
            "2g",
        )
        cluster = SparkCluster(network, master, worker, url)
        wait_until(lambda: cluster.master_json()["aliveworkers"] == 1, "the worker to register")
        yield cluster
    finally:
        for container in made:
            container.remove(force=True)
        network.remove()


@pytest.fixture(scope="module")
def gateway_env(spark_cluster: SparkCluster) -> dict[str, str]:
    return {
        "EMUSTUDIO_CLUSTER_ENGINE": "standalone",
        "EMUSTUDIO_STANDALONE_MASTER_URL": spark_cluster.url,
        "EMUSTUDIO_STANDALONE_NETWORK": spark_cluster.network.name,
    }


# --- the EMR side ----------------------------------------------------------------------------------


def job_flow(subnet_id: str, master_groups: list[str]) -> dict[str, Any]:
    return {
        "Name": "on my spark",
        "ReleaseLabel": "emr-7.12.0",
        "Applications": [{"Name": "Spark"}, {"Name": "Livy"}, {"Name": "JupyterEnterpriseGateway"}],
        "Instances": {
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 2},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
            "Ec2SubnetId": subnet_id,
            "AdditionalMasterSecurityGroups": master_groups,
        },
        # One core an application, so the kernel's session and a step can share the worker.
        "Configurations": [
            {"Classification": "spark-defaults",
             "Properties": {"spark.cores.max": "1", "spark.executor.memory": "512m"}}
        ],
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
    }  # fmt: skip


@pytest.fixture(scope="module")
def cluster(
    gateway: GatewayProcess, emr: Any, ec2: Any, network: StudioNetwork, spark_cluster: SparkCluster
) -> Iterator[str]:
    ensure_emr_default_roles(gateway.client("iam"))
    # What an EC2 user opens for executors on their own machines: the master's drivers listen on
    # its ephemeral ports (Spark's default), inbound from the Spark network's CIDR, nothing else.
    low, high = EPHEMERAL
    drivers = ec2.create_security_group(
        GroupName="spark-executors", Description="executors call the drivers", VpcId=network.vpc_id
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=drivers,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": low, "ToPort": high,
                        "IpRanges": [{"CidrIp": spark_cluster.cidr}]}],
    )  # fmt: skip
    cluster_id = str(emr.run_job_flow(**job_flow(network.subnet_ids[0], [drivers]))["JobFlowId"])
    try:
        yield cluster_id
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=FAST)


def nodes_of(docker_client: docker.DockerClient, cluster_id: str) -> list[Any]:
    return docker_client.containers.list(
        all=True, filters={"label": [f"emustudio.cluster-id={cluster_id}"]}
    )


def apps_named(spark: SparkCluster, name: str, which: str) -> list[dict[str, Any]]:
    return [a for a in spark.master_json()[which] if a["name"] == name]


def test_a_step_runs_its_executors_on_the_external_worker(
    emr: Any, cluster: str, spark_cluster: SparkCluster, docker_client: docker.DockerClient
) -> None:
    emr.get_waiter("cluster_running").wait(
        ClusterId=cluster, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
    )
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"] == "WAITING"

    # EC2 knows the master node only: the executors are the external worker's.
    instances = emr.list_instances(ClusterId=cluster)["Instances"]
    assert len(instances) == 1 and instances[0]["PrivateIpAddress"]
    groups = {g["InstanceGroupType"]: g for g in emr.list_instance_groups(ClusterId=cluster)[
        "InstanceGroups"]}  # fmt: skip
    core = groups["CORE"]
    assert (core["RequestedInstanceCount"], core["RunningInstanceCount"]) == (2, 0)
    assert spark_cluster.url in core["Status"]["StateChangeReason"]["Message"]
    assert groups["MASTER"]["RunningInstanceCount"] == 1
    [master] = nodes_of(docker_client, cluster)
    assert master.labels["emustudio.instance-role"] == "MASTER"
    # It is on its subnet's network and on the Spark cluster's, where its security groups
    # admit the drivers' ports from the Spark network and nothing else: not Enterprise Gateway.
    address = SparkCluster.ip(master, spark_cluster.network.name)
    ports = master.exec_run(["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).output.split()
    assert tuple(int(p) for p in ports) == EPHEMERAL
    assert not spark_cluster.worker_connects(address, 18888)
    assert not spark_cluster.worker_connects(address, 18080)

    # A resize has nothing to act on: AWS-shaped refusal, nothing changes.
    with pytest.raises(ClientError) as exc:
        emr.modify_instance_groups(
            ClusterId=cluster,
            InstanceGroups=[{"InstanceGroupId": core["Id"], "InstanceCount": 3}],
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert spark_cluster.url in exc.value.response["Error"]["Message"]
    assert len(nodes_of(docker_client, cluster)) == 1

    name = f"standalone-step-{secrets.token_hex(3)}"
    script = (
        "cat > /tmp/count.py <<'EOF'\n"
        "from pyspark.sql import SparkSession\n"
        f"s = SparkSession.builder.appName('{name}').getOrCreate()\n"
        "assert s.range(10**6).count() == 10**6\n"
        "EOF\n"
        "spark-submit /tmp/count.py"
    )
    step = {
        "Name": "count",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["bash", "-c", script]},
    }
    step_id = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[step])["StepIds"][0]
    emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=step_id, WaiterConfig=FAST)

    # The application was the external master's, and its executor ran on the external worker.
    [app] = wait_until(lambda: apps_named(spark_cluster, name, "completedapps"), "the app")
    assert app["state"] == "FINISHED"
    ran = [e for e in spark_cluster.worker_json()["finishedexecutors"] if e["appid"] == app["id"]]
    assert ran, spark_cluster.worker_json()


def count_in_kernel(workspace: Workspace, code: str) -> tuple[str, str]:
    """Run ``code`` in a new PySpark kernel of the Workspace (its sessions API and kernel
    WebSocket, as JupyterLab uses them); the result's text and the session id (still open)."""
    session = workspace.request(
        "POST", "api/sessions",
        {"path": "standalone.ipynb", "type": "notebook", "kernel": {"name": "pysparkkernel"}},
        timeout=300,
    )  # fmt: skip
    return notebooks.execute(workspace, session["kernel"]["id"], code), str(session["id"])


def test_an_attached_workspace_counts_on_the_external_worker(
    gateway: GatewayProcess, emr: Any, ec2: Any, network: StudioNetwork, cluster: str,
    spark_cluster: SparkCluster,
) -> None:  # fmt: skip
    ec2.authorize_security_group_ingress(
        GroupId=network.engine_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 18888, "ToPort": 18888,
                        "UserIdGroupPairs": [{"GroupId": network.workspace_sg}]}],
    )  # fmt: skip
    ensure_studio_service_role(gateway.client("iam"))
    studio_id = emr.create_studio(**studio_args(network))["StudioId"]
    editors = gateway.client("emr-studio")
    editor_id = editors.create_editor(StudioId=studio_id, Name="on my spark")["EditorId"]
    wait_for_status(editors, editor_id, "Ready")
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster, "Type": "EMR"})
    wait_for_status(editors, editor_id, "Attached")

    workspace = Workspace(gateway, editor_id)
    result, session_id = count_in_kernel(workspace, "spark.range(10**7).count()")
    assert result == "10000000"
    try:
        # The kernel's session is an application of the external master while it lives, with
        # its executor on the external worker.
        [app] = [a for a in spark_cluster.master_json()["activeapps"]
                 if a["name"].endswith("-pyspark")]  # fmt: skip
        running = spark_cluster.worker_json()["executors"]
        assert [e for e in running if e["appid"] == app["id"]], running
    finally:
        workspace.request("DELETE", f"api/sessions/{session_id}")
    editors.detach_editor(EditorId=editor_id)


def test_terminating_leaves_the_external_spark_cluster_as_it_was(
    emr: Any, cluster: str, spark_cluster: SparkCluster, docker_client: docker.DockerClient
) -> None:
    before = {c.id: c.attrs["State"]["StartedAt"] for c in (spark_cluster.master,
                                                          spark_cluster.worker)}  # fmt: skip
    emr.terminate_job_flows(JobFlowIds=[cluster])
    emr.get_waiter("cluster_terminated").wait(ClusterId=cluster, WaiterConfig=FAST)
    assert nodes_of(docker_client, cluster) == []
    for container_id, started in before.items():
        container = docker_client.containers.get(container_id)
        assert container.status == "running"
        assert container.attrs["State"]["StartedAt"] == started
    state = spark_cluster.master_json()
    assert state["aliveworkers"] == 1
    # Its drivers gone, the cluster's applications are over; the worker keeps its cores.
    wait_until(lambda: not spark_cluster.master_json()["activeapps"], "the apps to end", 120)
    wait_until(lambda: spark_cluster.worker_json()["coresused"] == 0, "the executors to end", 60)
