"""EMR clusters: start, attach and Spark through a Workspace, each against a baseline measured in
the same run on this machine.

* **RunJobFlow to WAITING** for 1 master + 2 core nodes (DescribeCluster polled every 0.2 s),
  against starting the same three containers bare (`docker run` of the cluster image with the
  engine's environment and limits, until Docker reports every health check healthy: the
  readiness the engine itself waits for).
* **Attach**: AttachEditor until DescribeEditor says ``Attached`` (polled every 50 ms): the
  kernel route opened and the Workspace's server switched to it.
* **Counts**: ``spark.range(10**7).count()`` ten times in a PySpark kernel started through the
  Workspace (its kernels API and kernel WebSocket, as JupyterLab uses them, hence through the
  gateway's kernel route to the cluster); the first includes waiting for the Spark session.
  Baseline: the same ten counts in ``pyspark`` with ``--master local[2]`` in the master container.
* **Idle memory**: the cluster's three containers, a minute after the counts.

Only credible on a quiet machine: note the load average printed with the figures.

    .venv/bin/python bench/cluster.py
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from typing import Any

import docker
from tornado import httpclient, websocket

from emustudio.testing.backup import Workspace
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status
from emustudio.testing.service_role import ensure_studio_service_role
from emustudio.testing.vpc import make_studio_network, studio_args

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
             "Action": "sts:AssumeRole"}
        ],
    }
)  # fmt: skip
COUNT = "spark.range(10**7).count()"
ROUNDS = 10
LOCAL = f"""
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").appName("bench-local").getOrCreate()
for _ in range({ROUNDS}):
    t = time.perf_counter()
    assert spark.range(10**7).count() == 10**7
    print("took", time.perf_counter() - t, flush=True)
"""


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def poll(check: Any, interval: float, timeout: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
        time.sleep(interval)
    raise TimeoutError("timed out")


def run_job_flow(emr: Any, subnet: str) -> tuple[str, float]:
    start = time.perf_counter()
    cluster_id = emr.run_job_flow(
        Name="bench",
        ReleaseLabel="emr-7.12.0",
        Applications=[{"Name": n} for n in ("Spark", "Livy", "JupyterEnterpriseGateway")],
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 2},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
            "Ec2SubnetId": subnet,
        },
        Configurations=[
            {"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "512m"}}
        ],
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]

    def waiting() -> bool:
        state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
        assert not state.startswith("TERMINAT"), state
        return bool(state == "WAITING")

    poll(waiting, 0.2, 900)
    return cluster_id, time.perf_counter() - start


def bare_start(client: docker.DockerClient, like: list[Any]) -> float:
    """The cluster's containers again, bare: same image, environment and limits, own network."""
    tag = secrets.token_hex(4)
    network = client.networks.create(f"bench-cluster-{tag}", labels={"bench": tag})
    made: list[Any] = []
    try:
        master_name = f"bench-{tag}-master"
        start = time.perf_counter()
        for node in sorted(like, key=lambda c: c.labels["emustudio.instance-role"] != "MASTER"):
            attrs = node.attrs
            env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
            env["EMR_MASTER_HOST"] = master_name
            role = node.labels["emustudio.instance-role"]
            name = master_name if role == "MASTER" else f"bench-{tag}-{len(made)}"
            made.append(
                client.containers.run(
                    attrs["Image"], name=name, hostname=name, environment=env,
                    network=network.name, labels={"bench": tag}, detach=True,
                    mem_limit=attrs["HostConfig"]["Memory"] or None,
                    nano_cpus=attrs["HostConfig"]["NanoCpus"] or None,
                )
            )  # fmt: skip

        def healthy() -> bool:
            for c in made:
                c.reload()
                if c.attrs["State"].get("Health", {}).get("Status") != "healthy":
                    return False
            return True

        poll(healthy, 0.2, 900)
        return time.perf_counter() - start
    finally:
        for c in made:
            c.remove(force=True)
        network.remove()


async def counts_through(workspace: Workspace) -> list[float]:
    session = workspace.request(
        "POST", "api/sessions",
        {"path": "bench.ipynb", "type": "notebook", "kernel": {"name": "pysparkkernel"}},
        timeout=300,
    )  # fmt: skip
    kernel_id = session["kernel"]["id"]
    url = workspace.url(f"api/kernels/{kernel_id}/channels").replace("http", "ws", 1)
    conn = await websocket.websocket_connect(
        httpclient.HTTPRequest(url, headers={"Authorization": f"token {workspace.token}"})
    )
    times = []
    try:
        for _ in range(ROUNDS):
            msg_id = uuid.uuid4().hex
            message = {
                "header": {"msg_id": msg_id, "username": "bench", "session": uuid.uuid4().hex,
                           "msg_type": "execute_request", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": COUNT, "silent": False, "store_history": True,
                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
            }  # fmt: skip
            start = time.perf_counter()
            await conn.write_message(json.dumps(message))
            result = None
            while True:
                raw = await asyncio.wait_for(conn.read_message(), 600)
                assert raw is not None, "the kernel's WebSocket closed"
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = reply["header"]["msg_type"]
                if kind == "execute_result":
                    result = reply["content"]["data"]["text/plain"]
                elif kind == "error":
                    raise RuntimeError(reply["content"]["evalue"])
                elif kind == "execute_reply":
                    break
            times.append(time.perf_counter() - start)
            assert result == "10000000", result
    finally:
        conn.close()
        workspace.request("DELETE", f"api/sessions/{session['id']}")
    return times


def counts_local(master: Any) -> list[float]:
    result = master.exec_run(["/opt/spark-venv/bin/python", "-c", LOCAL], user="hadoop", demux=True)
    out = (result.output[0] or b"").decode()
    assert result.exit_code == 0, result.output
    return [float(line.split()[1]) for line in out.splitlines() if line.startswith("took ")]


def mib(container: Any) -> float:
    stats = container.stats(stream=False)
    memory = stats["memory_stats"]
    cache = memory.get("stats", {}).get("inactive_file", 0)
    return float(memory["usage"] - cache) / 2**20


def main() -> None:
    client = docker.from_env()
    gateway = GatewayProcess(env={}).start()
    try:
        iam, ec2, emr = gateway.client("iam"), gateway.client("ec2"), gateway.client("emr")
        for role in ("EMR_DefaultRole", "EMR_EC2_DefaultRole"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
        iam.create_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")
        iam.add_role_to_instance_profile(
            InstanceProfileName="EMR_EC2_DefaultRole", RoleName="EMR_EC2_DefaultRole"
        )
        net = make_studio_network(ec2, subnets=2)
        ec2.authorize_security_group_ingress(
            GroupId=net.engine_sg,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 18888, "ToPort": 18888,
                            "UserIdGroupPairs": [{"GroupId": net.workspace_sg}]}],
        )  # fmt: skip
        ensure_studio_service_role(iam)
        studio_id = emr.create_studio(**studio_args(net))["StudioId"]
        editors = gateway.client("emr-studio")
        editor_id = editors.create_editor(StudioId=studio_id, Name="bench")["EditorId"]
        print(f"load before: {load()}")

        cluster_id, to_waiting = run_job_flow(emr, net.subnet_ids[0])
        nodes = client.containers.list(filters={"label": [f"emustudio.cluster-id={cluster_id}"]})
        bare = bare_start(client, nodes)
        wait_for_status(editors, editor_id, "Ready")

        start = time.perf_counter()
        editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster_id})
        poll(
            lambda: editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] == "Attached",
            0.05, 120,
        )  # fmt: skip
        attach = time.perf_counter() - start

        through = asyncio.run(counts_through(Workspace(gateway, editor_id)))
        master = next(n for n in nodes if n.labels["emustudio.instance-role"] == "MASTER")
        local = counts_local(master)
        time.sleep(60)
        idle = {n.labels["emustudio.instance-role"] + n.name[-4:]: mib(n) for n in nodes}

        print(f"load after: {load()}")
        print(f"RunJobFlow -> WAITING (1+2): {to_waiting:.1f} s; bare containers healthy:"
              f" {bare:.1f} s; ratio {to_waiting / bare:.2f}")  # fmt: skip
        print(f"attach: {attach:.2f} s")
        print(f"count through the Workspace: first {through[0]:.2f} s, tenth {through[-1]:.2f} s")
        print(f"count in local[2] on the master: first {local[0]:.2f} s, tenth {local[-1]:.2f} s")
        print(f"tenth count ratio (Workspace / local[2]): {through[-1] / local[-1]:.2f}")
        print("idle memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in idle.items()))
        print(f"idle memory total: {sum(idle.values()):.0f} MiB")
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
    finally:
        gateway.close()


if __name__ == "__main__":
    main()
