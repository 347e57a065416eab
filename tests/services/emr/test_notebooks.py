"""Notebooks written for EMR Studio run unchanged on a real cluster, through an attached
Workspace's kernel route, the way JupyterLab runs them (the Workspace's sessions API and kernel
WebSocket): the example notebooks in ``examples/notebooks`` (our own, in the style of AWS's
published EMR Studio examples) with ``%%configure``, ``%%info``, ``%%sql``, ``%%local``,
``s3://`` and ``hdfs:///`` paths, and ``hdfs:///`` shared by the driver and the executors.

One cluster (a master and two core nodes) and one attached Workspace serve the module; the
last test terminates the cluster and its HDFS volume goes with it.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from botocore.exceptions import WaiterError

from emustudio.testing import notebooks
from emustudio.testing.backup import Workspace
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status
from emustudio.testing.service_role import ensure_emr_default_roles, ensure_studio_service_role
from emustudio.testing.vpc import StudioNetwork, make_studio_network, open_engine_port, studio_args
from tests.services.emr.test_clusters import FAST, job_flow, node_containers
from tests.services.emr.test_editors import studio_client

pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(2400)]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "notebooks"


@pytest.fixture(scope="module")
def bucket(gateway: GatewayProcess) -> str:
    """The notebooks' EXAMPLE-BUCKET, which the nodes' role may use."""
    name = f"notebooks-{secrets.token_hex(3)}"
    gateway.client("s3").create_bucket(Bucket=name)
    ensure_emr_default_roles(gateway.client("iam"))
    gateway.client("iam").put_role_policy(
        RoleName="EMR_EC2_DefaultRole",
        PolicyName=f"Notebooks-{name}",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]}]}),
    )  # fmt: skip
    return name


@pytest.fixture(scope="module")
def studio_net(ec2: Any) -> StudioNetwork:
    return open_engine_port(ec2, make_studio_network(ec2, subnets=2))


@pytest.fixture(scope="module")
def cluster(emr: Any, bucket: str, studio_net: StudioNetwork) -> Iterator[str]:
    instances = job_flow()["Instances"] | {"Ec2SubnetId": studio_net.subnet_ids[0]}
    instances["InstanceGroups"][1]["InstanceCount"] = 2
    cluster_id = emr.run_job_flow(**job_flow(Name="notebooks", Instances=instances))["JobFlowId"]
    try:
        yield cluster_id
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=FAST)


@pytest.fixture(scope="module")
def workspace(
    gateway: GatewayProcess, emr: Any, cluster: str, studio_net: StudioNetwork
) -> Workspace:
    """A Workspace attached to the cluster (it starts while the cluster boots)."""
    ensure_studio_service_role(gateway.client("iam"))
    studio_id = emr.create_studio(**studio_args(studio_net))["StudioId"]
    editors = studio_client(gateway)
    editor_id = editors.create_editor(StudioId=studio_id, Name="examples")["EditorId"]
    wait_for_status(editors, editor_id, "Ready")
    try:
        emr.get_waiter("cluster_running").wait(
            ClusterId=cluster, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
        )
    except WaiterError:
        pytest.fail(f"the cluster did not start: {emr.describe_cluster(ClusterId=cluster)}")
    editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster, "Type": "EMR"})
    wait_for_status(editors, editor_id, "Attached")
    return Workspace(gateway, editor_id)


def code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def cell_after(nb: dict[str, Any], start: str) -> dict[str, Any]:
    """The code cell whose source starts with ``start``."""
    found = [c for c in code_cells(nb) if notebooks.source(c).lstrip().startswith(start)]
    assert len(found) == 1, start
    return found[0]


def table_rows(html: str) -> list[list[str]]:
    """The body rows of the first HTML table (a pandas DataFrame's, sparkmagic's shape)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def flat(cell: dict[str, Any]) -> str:
    """A cell's value on one line (IPython wraps long reprs)."""
    return " ".join(notebooks.result_of(cell).split())


def test_word_count_on_hdfs_and_s3(
    gateway: GatewayProcess, workspace: Workspace, bucket: str
) -> None:
    nb = notebooks.load(EXAMPLES / "word-count-with-pyspark.ipynb", {"EXAMPLE-BUCKET": bucket})
    assert nb["metadata"]["kernelspec"]["name"] == "pysparkkernel"
    done = notebooks.run(workspace, "word-count-with-pyspark.ipynb", nb)

    shown = notebooks.stdout_of(cell_after(done, "linesDF ="))
    assert "|emr studio notebooks|" in shown and "|-- line: string" in shown
    assert notebooks.result_of(cell_after(done, "lines = sc.textFile")) == "3"
    assert flat(cell_after(done, "counts =")) == (
        "[('emr', 2), ('notebooks', 1), ('on', 2), ('spark', 3), ('sql', 1), ('studio', 1)]"
    )
    saved_cell = cell_after(done, "saved =")
    assert notebooks.result_of(saved_cell) == "6"
    saved = notebooks.stdout_of(saved_cell)
    rows = dict(re.findall(r"^\|\s*(\w+)\|\s*(\d+)\|$", saved, re.M))
    assert rows == {
        "spark": "3",
        "emr": "2",
        "on": "2",
        "notebooks": "1",
        "sql": "1",
        "studio": "1",
    }
    # The counts are in the bucket, written through EMRFS by the executors.
    keys = [
        o["Key"]
        for o in gateway.client("s3").list_objects_v2(Bucket=bucket, Prefix="word-count/output/")[
            "Contents"
        ]
    ]
    assert "word-count/output/_SUCCESS" in keys and any("/part-" in k for k in keys)


def test_spark_sql_magics(workspace: Workspace, bucket: str) -> None:
    nb = notebooks.load(EXAMPLES / "spark-sql-magics.ipynb", {"EXAMPLE-BUCKET": bucket})
    done = notebooks.run(workspace, "spark-sql-magics.ipynb", nb)

    configured = notebooks.stdout_of(cell_after(done, "%%configure\n"))
    assert configured.startswith('Current session configs: {"executorMemory": "512m"')
    assert "SparkSession available as 'spark'." in configured
    info = cell_after(done, "%%info")
    assert '"numExecutors": 2' in notebooks.stdout_of(info)
    assert "app-" in notebooks.html_of(info) and "pyspark" in notebooks.html_of(info)

    revenue = cell_after(done, "%%sql\nSELECT category, ROUND")
    assert table_rows(notebooks.html_of(revenue)) == [
        ["0", "shoes", "135.97"], ["1", "games", "59.97"], ["2", "books", "25.97"],
    ]  # fmt: skip
    quiet = cell_after(done, "%%sql -o top")["outputs"]  # -q: no table
    assert not [o for o in quiet if o["output_type"] != "stream"] and not notebooks.stdout_of(
        {"outputs": quiet}
    )
    assert notebooks.result_of(cell_after(done, "%%local")) == "['shoes', 'games']"
    assert flat(cell_after(done, 'spark.read.parquet("hdfs')) == (
        "[Row(category='books', items=3), Row(category='games', items=3),"
        " Row(category='shoes', items=3)]"
    )
    restarted = notebooks.stdout_of(cell_after(done, "%%configure -f"))
    assert restarted.startswith('Current session configs: {"conf"')
    assert notebooks.result_of(cell_after(done, "spark.conf.get")) == "'6'"
    after = cell_after(done, "%%sql\nSELECT SUM(items)")
    assert table_rows(notebooks.html_of(after)) == [["0", "9"]]


def run_cells(workspace: Workspace, name: str, *cells: str) -> list[dict[str, Any]]:
    nb = {
        "cells": [
            {"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "source": s,
             "outputs": [], "execution_count": None}
            for i, s in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "pysparkkernel", "display_name": "PySpark"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    return code_cells(notebooks.run(workspace, name, nb))


DRIVER_WRITES = """
import socket
conf = sc._jsc.hadoopConfiguration()
path = sc._jvm.org.apache.hadoop.fs.Path("hdfs:///user/hadoop/shared/from-driver.txt")
fs = path.getFileSystem(conf)
out = fs.create(path, True)
out.write(bytearray(b"written by the driver on " + socket.gethostname().encode() + b"\\n"))
out.close()
"""
EXECUTORS_READ = """
sorted(set(sc.textFile("hdfs:///user/hadoop/shared/from-driver.txt", 4)
       .map(lambda line: (socket.gethostname(), line)).collect()))
"""
EXECUTORS_WRITE = """
sc.parallelize(range(8), 8).map(lambda i: f"{i} {socket.gethostname()}") \\
  .saveAsTextFile("hdfs:///user/hadoop/shared/from-executors")
"""
DRIVER_READS = """
folder = sc._jvm.org.apache.hadoop.fs.Path("hdfs:///user/hadoop/shared/from-executors")
parts = [s.getPath() for s in fs.listStatus(folder) if s.getPath().getName().startswith("part-")]
text = "".join(sc._jvm.org.apache.commons.io.IOUtils.toString(fs.open(p), "UTF-8") for p in parts)
sorted(int(line.split()[0]) for line in text.splitlines()), sorted({line.split()[1] for line in text.splitlines()})
"""


def test_hdfs_is_shared_by_the_driver_and_the_executors(
    workspace: Workspace, cluster: str, docker_client: docker.DockerClient
) -> None:
    nodes = {
        n.labels["emustudio.ec2-instance-id"]: n for n in node_containers(docker_client, cluster)
    }
    master = next(i for i, n in nodes.items() if n.labels["emustudio.instance-role"] == "MASTER")
    cores = sorted(set(nodes) - {master})
    cells = run_cells(
        workspace, "hdfs-shared.ipynb", DRIVER_WRITES, EXECUTORS_READ, EXECUTORS_WRITE,
        DRIVER_READS, "%%configure\n{}",
    )  # fmt: skip
    # The executors, on the core nodes, read the file the driver wrote on the master.
    read = notebooks.result_of(cells[1])
    hosts = set(re.findall(r"\('(i-[0-9a-f]+)'", read))
    assert hosts and hosts <= set(cores), read
    assert f"written by the driver on {master}" in read
    # The driver reads every part the executors wrote, from both core nodes.
    numbers, writers = ast.literal_eval(notebooks.result_of(cells[3]))
    assert numbers == list(range(8)) and set(writers) <= set(cores) and writers
    # The session was used: %%configure without -f leaves it alone and says so.
    assert notebooks.stdout_of(cells[4]).startswith("A session has already been started.")
    # One volume, the same files on every node.
    for node in nodes.values():
        listing = node.exec_run(["ls", "/mnt/hdfs/user/hadoop/shared"], user="hadoop")
        assert listing.output.split() == [b"from-driver.txt", b"from-executors"], node.name
    mounts = {m["Name"] for n in nodes.values() for m in n.attrs["Mounts"] if m["Type"] == "volume"}
    assert len(mounts) == 1


def test_kernelspecs_are_emrs(workspace: Workspace) -> None:
    specs = workspace.request("GET", "api/kernelspecs")["kernelspecs"]
    assert {"pysparkkernel", "python3"} <= set(specs)
    assert specs["pysparkkernel"]["spec"]["display_name"] == "PySpark"


def test_terminating_the_cluster_removes_its_hdfs(
    emr: Any, cluster: str, docker_client: docker.DockerClient
) -> None:
    volumes = docker_client.volumes.list(filters={"label": [f"emustudio.cluster-id={cluster}"]})
    assert [v.attrs["Labels"]["emustudio.kind"] for v in volumes] == ["emr-hdfs"]
    emr.terminate_job_flows(JobFlowIds=[cluster])
    emr.get_waiter("cluster_terminated").wait(ClusterId=cluster, WaiterConfig=FAST)
    assert not docker_client.volumes.list(filters={"label": [f"emustudio.cluster-id={cluster}"]})
