"""EMR clusters through boto3: RunJobFlow's checks, and one real cluster (Spark in containers)
shared by the module's life tests: the waiters, steps that complete, fail and are cancelled,
and termination that removes the nodes."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status
from emustudio.testing.service_role import ensure_emr_default_roles, ensure_studio_service_role
from emustudio.testing.vpc import StudioNetwork, studio_args
from tests.services.emr.test_editors import studio_client

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
             "Action": "sts:AssumeRole"}
        ],
    }
)  # fmt: skip
FAST = {"Delay": 2, "MaxAttempts": 200}
# Real clusters: minutes each on a loaded 2-core machine (a start, a spark-submit).
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1800)]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


@pytest.fixture(scope="module")
def roles(gateway: GatewayProcess) -> None:
    ensure_emr_default_roles(gateway.client("iam"))


BUCKET = "cluster-scripts"
# A bootstrap action leaves a mark on each node (its arguments, as hadoop), in EMR's place.
MARK = (
    b'#!/bin/bash\nset -e\necho "$@" > /home/hadoop/bootstrapped-$(hostname)\n'
    b'echo "marked $(hostname) with $*"\necho "a note on stderr" >&2\n'
)


@pytest.fixture(scope="module")
def scripts(gateway: GatewayProcess, roles: None) -> str:
    """A bucket of bootstrap scripts and JARs the nodes' role (EMR_EC2_DefaultRole) may read,
    and where it may write the steps' logs (``logs/``)."""
    s3 = gateway.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="bootstrap/mark.sh", Body=MARK)
    s3.put_object(Bucket=BUCKET, Key="bootstrap/fails.sh", Body=b"echo broken >&2\nexit 3\n")
    gateway.client("iam").put_role_policy(
        RoleName="EMR_EC2_DefaultRole",
        PolicyName="ReadScripts",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
            {"Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"arn:aws:s3:::{BUCKET}/logs/*"}]}),
    )  # fmt: skip
    return f"s3://{BUCKET}/bootstrap"


def job_flow(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "Name": "analytics",
        "ReleaseLabel": "emr-7.12.0",
        "Applications": [{"Name": "Spark"}, {"Name": "Livy"}, {"Name": "JupyterEnterpriseGateway"}],
        "Instances": {
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 1},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "VisibleToAllUsers": True,
    }
    args.update(overrides)
    return args


def bash_step(name: str, script: str, on_failure: str = "CONTINUE") -> dict[str, Any]:
    return {
        "Name": name,
        "ActionOnFailure": on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["bash", "-c", script]},
    }


# --- what RunJobFlow refuses (no container is made) -----------------------------------------------


def test_instance_profile_operations(gateway: GatewayProcess, roles: None) -> None:
    iam = gateway.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")["InstanceProfile"]
    assert profile["Arn"] == "arn:aws:iam::000000000000:instance-profile/EMR_EC2_DefaultRole"
    assert [r["RoleName"] for r in profile["Roles"]] == ["EMR_EC2_DefaultRole"]
    listed = iam.list_instance_profiles_for_role(RoleName="EMR_EC2_DefaultRole")
    assert [p["InstanceProfileName"] for p in listed["InstanceProfiles"]] == ["EMR_EC2_DefaultRole"]
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName="EMR_EC2_DefaultRole")
    assert error_of(exc)[0] == "DeleteConflict"
    with pytest.raises(ClientError) as exc:
        iam.delete_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")
    assert error_of(exc)[0] == "DeleteConflict"
    with pytest.raises(ClientError) as exc:
        iam.get_instance_profile(InstanceProfileName="nope")
    assert error_of(exc)[0] == "NoSuchEntity"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"JobFlowRole": "missing-profile"}, "Invalid InstanceProfile: missing-profile."),
        ({"ServiceRole": "missing-role"}, "Invalid ServiceRole: missing-role."),
        ({"ReleaseLabel": "emr-9.9.9"}, "The requested release label 'emr-9.9.9' is invalid"),
        ({"Applications": [{"Name": "Hive"}]}, "Specified application: Hive is invalid"),
        (
            {"Instances": {"MasterInstanceType": "x9.huge", "InstanceCount": 1}},
            "The requested instance type x9.huge is not supported",
        ),
        (
            {"Instances": {"InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 3}]}},
            "exactly one master node",
        ),
        (
            {"Instances": {"MasterInstanceType": "m5.xlarge", "InstanceCount": 1,
                           "Ec2SubnetId": "subnet-00000000000000000"}},
            "The subnet ID 'subnet-00000000000000000' does not exist",
        ),
    ],
)  # fmt: skip
def test_run_job_flow_refuses(
    emr: Any, roles: None, overrides: dict[str, Any], message: str
) -> None:
    before = emr.list_clusters()["Clusters"]
    with pytest.raises(ClientError) as exc:
        emr.run_job_flow(**job_flow(**overrides))
    code, text = error_of(exc)
    assert code == "ValidationException"
    assert message in text
    assert emr.list_clusters()["Clusters"] == before


def test_unknown_cluster(emr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        emr.describe_cluster(ClusterId="j-AAAAAAAAAAAAA")
    assert error_of(exc) == (
        "InvalidRequestException",
        "Cluster id 'j-AAAAAAAAAAAAA' is not valid.",
    )


def test_release_labels_come_from_data(emr: Any) -> None:
    labels = emr.list_release_labels(Filters={"Prefix": "emr-7"})["ReleaseLabels"]
    assert "emr-7.12.0" in labels and labels == sorted(
        labels, key=lambda label: [int(p) for p in label[4:].split(".")], reverse=True
    )
    apps = emr.describe_release_label(ReleaseLabel="emr-7.12.0")["Applications"]
    assert {"Name": "Spark", "Version": "3.5.9"} in apps
    types = emr.list_supported_instance_types(ReleaseLabel="emr-7.12.0")["SupportedInstanceTypes"]
    assert {"Type": "m5.xlarge", "VCPU": 4}.items() <= types[
        [t["Type"] for t in types].index("m5.xlarge")
    ].items()


# --- one real cluster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(
    emr: Any, roles: None, gateway: GatewayProcess, network: StudioNetwork, scripts: str
) -> Iterator[str]:
    instances = job_flow()["Instances"] | {"Ec2SubnetId": network.subnet_ids[0]}
    created = emr.run_job_flow(
        **job_flow(
            Instances=instances,
            BootstrapActions=[{"Name": "mark",
                               "ScriptBootstrapAction": {"Path": f"{scripts}/mark.sh",
                                                         "Args": ["from", "s3"]}}],
            Tags=[{"Key": "team", "Value": "data"}],
            LogUri=f"s3://{BUCKET}/logs/",
            Steps=[bash_step("hello", "echo hello from $(hostname)")],
            Configurations=[
                {"Classification": "spark-defaults",
                 "Properties": {"spark.executor.memory": "512m"}}
            ],
        )
    )  # fmt: skip
    cluster_id = created["JobFlowId"]
    try:
        yield cluster_id
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=FAST)


def node_containers(docker_client: docker.DockerClient, cluster_id: str) -> list[Any]:
    return docker_client.containers.list(
        all=True, filters={"label": [f"emustudio.cluster-id={cluster_id}"]}
    )


def test_cluster_runs_spark_on_its_nodes(
    emr: Any, cluster: str, docker_client: docker.DockerClient
) -> None:
    assert re.fullmatch(r"j-[A-Z0-9]{13}", cluster)
    # On a fresh machine the first cluster builds its image first (pyspark's sdist: minutes).
    emr.get_waiter("cluster_running").wait(
        ClusterId=cluster, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
    )
    described = emr.describe_cluster(ClusterId=cluster)["Cluster"]
    assert described["Status"]["State"] in ("RUNNING", "WAITING")
    assert described["ReleaseLabel"] == "emr-7.12.0"
    assert {"Name": "Spark", "Version": "3.5.9"} in described["Applications"]
    assert described["Ec2InstanceAttributes"]["IamInstanceProfile"] == "EMR_EC2_DefaultRole"
    assert described["Tags"] == [{"Key": "team", "Value": "data"}]
    assert described["AutoTerminate"] is False
    assert "ReadyDateTime" in described["Status"]["Timeline"]

    instances = emr.list_instances(ClusterId=cluster)["Instances"]
    assert len(instances) == 2
    assert all(re.fullmatch(r"i-[0-9a-f]{17}", i["Ec2InstanceId"]) for i in instances)
    assert all(i["PrivateIpAddress"] for i in instances)
    assert emr.list_bootstrap_actions(ClusterId=cluster)["BootstrapActions"] == [
        {"Name": "mark", "ScriptPath": f"s3://{BUCKET}/bootstrap/mark.sh", "Args": ["from", "s3"]}
    ]
    groups = emr.list_instance_groups(ClusterId=cluster)["InstanceGroups"]
    assert sorted(g["InstanceGroupType"] for g in groups) == ["CORE", "MASTER"]

    containers = node_containers(docker_client, cluster)
    roles = sorted(c.labels["emustudio.instance-role"] for c in containers)
    assert roles == ["CORE", "MASTER"]
    # The bootstrap action ran on every node, as hadoop, with its arguments.
    for container in containers:
        mark = container.exec_run(
            ["bash", "-c", "cat ~/bootstrapped-$(hostname); stat -c %U ~/bootstrapped-*"]
        )
        assert mark.output.decode().split() == ["from", "s3", "hadoop"]

    # The first step ran on the master and completed; the cluster then waits.
    steps = emr.list_steps(ClusterId=cluster)["Steps"]
    emr.get_waiter("step_complete").wait(
        ClusterId=cluster, StepId=steps[-1]["Id"], WaiterConfig=FAST
    )
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)

    # A spark-submit step runs a job on the workers.
    script = (
        "cat > /tmp/count.py <<'EOF'\n"
        "from pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.appName('count').getOrCreate()\n"
        "assert s.range(10**5).count() == 10**5\n"
        "EOF\n"
        "spark-submit /tmp/count.py"
    )
    step_id = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[bash_step("count", script)])[
        "StepIds"
    ][0]
    assert re.fullmatch(r"s-[A-Z0-9]{13}", step_id)
    emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=step_id, WaiterConfig=FAST)
    step = emr.describe_step(ClusterId=cluster, StepId=step_id)["Step"]
    assert step["Status"]["State"] == "COMPLETED"
    assert "FailureDetails" not in step["Status"]


def bootstrap_log(
    gateway: GatewayProcess, cluster: str, instance: str, action: int, name: str
) -> str:
    """A bootstrap action's log on a node, as EMR lays it out in LogUri, read back with boto3."""
    key = f"logs/{cluster}/node/{instance}/bootstrap-actions/{action}/{name}.gz"
    body = gateway.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return gzip.decompress(body).decode()


def test_bootstrap_action_output_goes_to_log_uri(
    gateway: GatewayProcess, emr: Any, cluster: str
) -> None:
    """Each node's output of each action: stdout, stderr and the controller's account, under
    the node's instance id (its hostname, which the script prints)."""
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    instances = [i["Ec2InstanceId"] for i in emr.list_instances(ClusterId=cluster)["Instances"]]
    assert len(instances) == 2
    for instance in instances:
        assert bootstrap_log(gateway, cluster, instance, 1, "stdout") == (
            f"marked {instance} with from s3\n"
        )
        assert bootstrap_log(gateway, cluster, instance, 1, "stderr") == "a note on stderr\n"
        controller = bootstrap_log(gateway, cluster, instance, 1, "controller")
        assert f"INFO Fetching file 's3://{BUCKET}/bootstrap/mark.sh'" in controller
        assert (
            "INFO startExec '/emr/instance-controller/lib/bootstrap-actions/1/mark.sh from s3'"
            in controller
        )
        assert controller.rstrip().endswith("INFO Execution succeeded")
    listed = gateway.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"logs/{cluster}/node/")
    assert len(listed["Contents"]) == 2 * 3


def test_failed_and_cancelled_steps(emr: Any, cluster: str) -> None:
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    failing, blocked, cancelled = emr.add_job_flow_steps(
        JobFlowId=cluster,
        Steps=[
            bash_step("fails", "echo 'java.lang.IllegalStateException: boom' >&2; exit 3"),
            bash_step("sleeps", "sleep 600"),
            bash_step("never", "echo never"),
        ],
    )["StepIds"]
    info = emr.cancel_steps(ClusterId=cluster, StepIds=[cancelled])["CancelStepsInfoList"]
    assert info == [{"StepId": cancelled, "Status": "SUBMITTED"}]
    with pytest.raises(Exception, match="Waiter StepComplete failed"):
        emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=failing, WaiterConfig=FAST)
    failed = emr.describe_step(ClusterId=cluster, StepId=failing)["Step"]["Status"]
    assert failed["State"] == "FAILED"
    assert failed["FailureDetails"]["Reason"] == "java.lang.IllegalStateException: boom"
    assert "3" in failed["FailureDetails"]["Message"]
    log_file = f"s3://{BUCKET}/logs/{cluster}/steps/{failing}/stderr.gz"
    assert failed["FailureDetails"]["LogFile"] == log_file
    assert emr.describe_step(ClusterId=cluster, StepId=cancelled)["Step"]["Status"]["State"] == (
        "CANCELLED"
    )
    # A running step is cancelled too.
    for _ in range(100):
        if emr.describe_step(ClusterId=cluster, StepId=blocked)["Step"]["Status"]["State"] == (
            "RUNNING"
        ):
            break
        time.sleep(0.5)
    emr.cancel_steps(ClusterId=cluster, StepIds=[blocked])
    with pytest.raises(Exception, match="Waiter StepComplete failed"):
        emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=blocked, WaiterConfig=FAST)
    assert emr.describe_step(ClusterId=cluster, StepId=blocked)["Step"]["Status"]["State"] == (
        "CANCELLED"
    )
    listed = emr.list_steps(ClusterId=cluster, StepStates=["FAILED"])["Steps"]
    assert [s["Id"] for s in listed] == [failing]


def log_of(gateway: GatewayProcess, cluster: str, step_id: str, name: str) -> str:
    """A step's log as EMR lays it out in LogUri, gunzipped."""
    key = f"logs/{cluster}/steps/{step_id}/{name}.gz"
    body = gateway.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return gzip.decompress(body).decode()


HELLO = """
public class Hello {
    public static void main(String[] args) throws Exception {
        Class.forName("org.apache.hadoop.conf.Configuration");  // the cluster's class path
        System.out.println("jar says " + String.join(" ", args) + " "
            + System.getProperty("greeting"));
        if (args.length > 0 && args[0].equals("fail")) {
            throw new IllegalStateException("asked to fail");
        }
    }
}
"""


@pytest.fixture(scope="module")
def hello_jar(gateway: GatewayProcess, scripts: str, tmp_path_factory: Any) -> str:
    """A JAR of our own (Main-Class in its manifest) in S3; javac and jar build it."""
    folder = tmp_path_factory.mktemp("jar")
    (folder / "Hello.java").write_text(HELLO)
    subprocess.run(["javac", "--release", "17", "Hello.java"], cwd=folder, check=True)
    subprocess.run(["jar", "cfe", "hello.jar", "Hello", "Hello.class"], cwd=folder, check=True)
    gateway.client("s3").upload_file(str(folder / "hello.jar"), BUCKET, "jars/hello.jar")
    return f"s3://{BUCKET}/jars/hello.jar"


def test_step_logs_and_custom_jar_steps(
    gateway: GatewayProcess, emr: Any, cluster: str, hello_jar: str
) -> None:
    """Each step's stdout, stderr and controller logs land in LogUri as EMR lays them out; a
    JAR from S3 runs with its MainClass (or its manifest's), arguments and properties."""
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    first = emr.list_steps(ClusterId=cluster)["Steps"][-1]["Id"]  # "hello", the first step
    assert log_of(gateway, cluster, first, "stdout").startswith("hello from i-")
    controller = log_of(gateway, cluster, first, "controller")
    assert "INFO Step created jar: command-runner.jar" in controller
    assert "Step succeeded with exitCode 0" in controller

    with_main, by_manifest, failing = emr.add_job_flow_steps(
        JobFlowId=cluster,
        Steps=[
            {"Name": "jar", "ActionOnFailure": "CONTINUE",
             "HadoopJarStep": {"Jar": hello_jar, "MainClass": "Hello", "Args": ["a", "b"],
                               "Properties": [{"Key": "greeting", "Value": "hi"}]}},
            {"Name": "manifest", "ActionOnFailure": "CONTINUE",
             "HadoopJarStep": {"Jar": hello_jar, "Args": ["c"]}},
            {"Name": "jar fails", "ActionOnFailure": "CONTINUE",
             "HadoopJarStep": {"Jar": hello_jar, "Args": ["fail"]}},
        ],
    )["StepIds"]  # fmt: skip
    for step_id in (with_main, by_manifest):
        emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=step_id, WaiterConfig=FAST)
    assert log_of(gateway, cluster, with_main, "stdout") == "jar says a b hi\n"
    assert log_of(gateway, cluster, by_manifest, "stdout") == "jar says c null\n"
    described = emr.describe_step(ClusterId=cluster, StepId=with_main)["Step"]
    assert described["Config"]["MainClass"] == "Hello"
    assert described["Config"]["Properties"] == {"greeting": "hi"}

    with pytest.raises(Exception, match="Waiter StepComplete failed"):
        emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=failing, WaiterConfig=FAST)
    details = emr.describe_step(ClusterId=cluster, StepId=failing)["Step"]["Status"][
        "FailureDetails"
    ]
    assert details["Reason"] == (
        'Exception in thread "main" java.lang.IllegalStateException: asked to fail'
    )
    assert details["LogFile"] == f"s3://{BUCKET}/logs/{cluster}/steps/{failing}/stderr.gz"
    assert "asked to fail" in log_of(gateway, cluster, failing, "stderr")
    assert "WARN Step failed with exitCode 1" in log_of(gateway, cluster, failing, "controller")


def test_modify_cluster_runs_steps_side_by_side(emr: Any, cluster: str) -> None:
    """ModifyCluster's StepConcurrencyLevel: two steps run at once, then one again."""
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    with pytest.raises(ClientError) as exc:
        emr.modify_cluster(ClusterId=cluster, StepConcurrencyLevel=300)
    assert error_of(exc)[0] == "ValidationException"
    assert emr.modify_cluster(ClusterId=cluster, StepConcurrencyLevel=2)[
        "StepConcurrencyLevel"
    ] == 2  # fmt: skip
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["StepConcurrencyLevel"] == 2
    pair = emr.add_job_flow_steps(
        JobFlowId=cluster, Steps=[bash_step("one", "sleep 300"), bash_step("two", "sleep 300")]
    )["StepIds"]
    together = []
    for _ in range(120):
        together = emr.list_steps(ClusterId=cluster, StepStates=["RUNNING"])["Steps"]
        if len(together) == 2:
            break
        time.sleep(0.5)
    assert sorted(s["Id"] for s in together) == sorted(pair)
    emr.cancel_steps(ClusterId=cluster, StepIds=pair)
    for step_id in pair:
        with pytest.raises(Exception, match="Waiter StepComplete failed"):
            emr.get_waiter("step_complete").wait(
                ClusterId=cluster, StepId=step_id, WaiterConfig=FAST
            )
    assert emr.modify_cluster(ClusterId=cluster, StepConcurrencyLevel=1)[
        "StepConcurrencyLevel"
    ] == 1  # fmt: skip


def spark_workers(docker_client: docker.DockerClient, cluster: str) -> int:
    """How many workers the cluster's Spark master counts alive (its JSON view)."""
    master = next(
        c for c in node_containers(docker_client, cluster)
        if c.labels["emustudio.instance-role"] == "MASTER"
    )  # fmt: skip
    script = (
        "import json, urllib.request;"
        "print(json.load(urllib.request.urlopen('http://localhost:8080/json/'))['aliveworkers'])"
    )
    return int(master.exec_run(["python3", "-c", script]).output.decode().strip())


# Eight tasks of 40 s, four at a time on each worker (m5.xlarge: four cores): each reports the
# attempt it ran in, 0 unless a lost executor made it run again.
DRAIN = """cat > /tmp/drain.py <<'EOF'
import time
from pyspark import TaskContext
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("drain").getOrCreate()
def slow(x):
    time.sleep(40)
    return (x, TaskContext.get().attemptNumber())
print(spark.sparkContext.parallelize(range(8), 8).map(slow).collect())
EOF
spark-submit /tmp/drain.py"""
_ACTIVE = """
import json, sys, urllib.request
for port in range(4040, 4045):
    try:
        apps = json.load(urllib.request.urlopen(f"http://localhost:{port}/api/v1/applications"))
    except (OSError, ValueError):  # not up yet, or another UI
        continue
    if apps and apps[0]["name"] == "drain":
        url = f"http://localhost:{port}/api/v1/applications/{apps[0]['id']}/executors"
        try:
            found = json.load(urllib.request.urlopen(url))
        except (OSError, ValueError):
            break
        print(sum(1 for e in found if e["id"] != "driver" and e["activeTasks"] > 0))
        sys.exit()
print(0)
"""


def busy_executors(master: Any) -> int:
    """How many executors of the "drain" job run tasks now (its driver's REST API)."""
    return int(master.exec_run(["python3", "-c", _ACTIVE]).output.decode().strip() or 0)


def core_group(emr: Any, cluster: str) -> dict[str, Any]:
    groups = emr.list_instance_groups(ClusterId=cluster)["InstanceGroups"]
    return next(g for g in groups if g["InstanceGroupType"] == "CORE")


def wait_until(check: Any, seconds: float = 400) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(2)


@pytest.mark.timeout(1200)  # a node starts in a minute or three on a loaded machine; a job
def test_a_resize_adds_and_removes_worker_containers(
    gateway: GatewayProcess, emr: Any, cluster: str, docker_client: docker.DockerClient
) -> None:
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    core = core_group(emr, cluster)["Id"]
    with pytest.raises(ClientError) as exc:
        master = next(g for g in emr.list_instance_groups(ClusterId=cluster)["InstanceGroups"]
                      if g["InstanceGroupType"] == "MASTER")  # fmt: skip
        emr.modify_instance_groups(
            ClusterId=cluster,
            InstanceGroups=[{"InstanceGroupId": master["Id"], "InstanceCount": 2}],
        )
    assert error_of(exc) == ("ValidationException", "The master instance group cannot be resized.")

    emr.modify_instance_groups(
        ClusterId=cluster, InstanceGroups=[{"InstanceGroupId": core, "InstanceCount": 2}]
    )
    wait_until(lambda: (g := core_group(emr, cluster))["RunningInstanceCount"] == 2
               and g["Status"]["State"] == "RUNNING")  # fmt: skip
    assert core_group(emr, cluster)["RequestedInstanceCount"] == 2
    containers = node_containers(docker_client, cluster)
    assert sorted(c.labels["emustudio.instance-role"] for c in containers) == [
        "CORE", "CORE", "MASTER"]  # fmt: skip
    wait_until(lambda: spark_workers(docker_client, cluster) == 2, 120)
    running = emr.list_instances(ClusterId=cluster, InstanceStates=["RUNNING"])["Instances"]
    assert len(running) == 3 and all(i["PrivateIpAddress"] for i in running)
    for container in containers:  # the new node ran the bootstrap action too
        assert container.exec_run(["bash", "-c", "ls ~/bootstrapped-*"]).exit_code == 0

    newest = [i["Ec2InstanceId"] for i in running if i["InstanceGroupId"] == core][-1]
    assert bootstrap_log(gateway, cluster, newest, 1, "stdout") == f"marked {newest} with from s3\n"

    # A shrink while a job's tasks run on both workers: the node goes gracefully. It is
    # decommissioned (no new tasks), stays RUNNING while its tasks finish, then is removed;
    # no task had to run again.
    step = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[bash_step("drain", DRAIN)])["StepIds"][
        0
    ]
    master = next(c for c in containers if c.labels["emustudio.instance-role"] == "MASTER")
    wait_until(lambda: busy_executors(master) == 2, 300)
    emr.modify_instance_groups(
        ClusterId=cluster, InstanceGroups=[{"InstanceGroupId": core, "InstanceCount": 1,
                                            "EC2InstanceIdsToTerminate": [newest],
                                            "ShrinkPolicy": {"DecommissionTimeout": 600}}]
    )  # fmt: skip
    draining = emr.list_instances(ClusterId=cluster, InstanceGroupId=core)["Instances"]
    assert {i["Ec2InstanceId"]: i["Status"]["State"] for i in draining}[newest] == "RUNNING"
    assert core_group(emr, cluster)["Status"]["State"] == "RESIZING"
    emr.get_waiter("step_complete").wait(ClusterId=cluster, StepId=step, WaiterConfig=FAST)
    results = log_of(gateway, cluster, step, "stdout").strip().splitlines()[-1]
    assert results == str([(i, 0) for i in range(8)])  # every task's first attempt succeeded
    wait_until(lambda: core_group(emr, cluster)["Status"]["State"] == "RUNNING", 400)
    assert core_group(emr, cluster)["RunningInstanceCount"] == 1
    ended = emr.list_instances(ClusterId=cluster, InstanceStates=["TERMINATED"])["Instances"]
    assert [i["Ec2InstanceId"] for i in ended] == [newest]
    assert len(node_containers(docker_client, cluster)) == 2
    wait_until(lambda: spark_workers(docker_client, cluster) == 1, 120)
    lines = master.logs().decode(errors="replace").splitlines()
    assert any("Decommissioning worker" in line and newest in line for line in lines)


@pytest.fixture(scope="module")
def workspace(gateway: GatewayProcess, network: StudioNetwork) -> tuple[str, Any]:
    ensure_studio_service_role(gateway.client("iam"))
    studio_id = gateway.client("emr").create_studio(**studio_args(network))["StudioId"]
    editors = studio_client(gateway)
    editor_id = editors.create_editor(StudioId=studio_id, Name="spark work")["EditorId"]
    return editor_id, editors


def test_attach_checks_the_security_groups_then_attaches(
    gateway: GatewayProcess, cluster: str, network: StudioNetwork, workspace: tuple[str, Any]
) -> None:
    editor_id, editors = workspace
    ec2 = gateway.client("ec2")
    wait_for_status(editors, editor_id, "Ready")
    engine = {"Id": cluster, "Type": "EMR"}
    # The Workspace group keeps only what AWS asks of it: no egress to anywhere.
    ec2.revoke_security_group_egress(
        GroupId=network.workspace_sg,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    with pytest.raises(ClientError) as exc:
        editors.attach_editor(EditorId=editor_id, ExecutionEngine=engine)
    assert error_of(exc) == (
        "InvalidRequestException",
        f"The Workspace security group {network.workspace_sg} must allow outbound TCP traffic"
        f" on port 18888 to the engine security group {network.engine_sg}.",
    )
    ec2.authorize_security_group_egress(
        GroupId=network.workspace_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 18888, "ToPort": 18888,
                        "UserIdGroupPairs": [{"GroupId": network.engine_sg}]}],
    )  # fmt: skip
    with pytest.raises(ClientError) as exc:
        editors.attach_editor(EditorId=editor_id, ExecutionEngine=engine)
    assert "must allow inbound TCP traffic on port 18888" in error_of(exc)[1]
    described = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert described["Status"] == "Ready"
    assert "AttachedClusterId" not in described and "ExecutionEngine" not in described

    ec2.authorize_security_group_ingress(
        GroupId=network.engine_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 18888, "ToPort": 18888,
                        "UserIdGroupPairs": [{"GroupId": network.workspace_sg}]}],
    )  # fmt: skip
    emr = gateway.client("emr")
    emr.get_waiter("cluster_running").wait(ClusterId=cluster, WaiterConfig=FAST)
    refused_by_the_service_role(gateway, cluster, editor_id, editors)
    answer = editors.attach_editor(EditorId=editor_id, ExecutionEngine=engine)
    assert answer == {"EditorId": editor_id, "Status": "Attaching", **_meta(answer)}
    attached = wait_for_status(editors, editor_id, "Attached")
    assert attached["AttachedClusterId"] == cluster
    assert attached["ExecutionEngine"] == {"Id": cluster, "Type": "EMR"}

    assert editors.detach_editor(EditorId=editor_id)["Status"] == "Ready"
    detached = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert detached["Status"] == "Ready"
    assert "AttachedClusterId" not in detached and "ExecutionEngine" not in detached
    # Attached again: the cluster's termination (below) detaches it.
    editors.attach_editor(EditorId=editor_id, ExecutionEngine=engine)
    wait_for_status(editors, editor_id, "Attached")


def refused_by_the_service_role(
    gateway: GatewayProcess, cluster: str, editor_id: str, editors: Any
) -> None:
    """The attach runs as the Studio's service role: a role that may not make the Workspace's
    network interface in the cluster's subnet fails it in AWS's words, CloudTrail records the
    refusal under the role's session, and nothing is attached. The full policy lets it on."""
    iam = gateway.client("iam")
    subnet = gateway.client("emr").describe_cluster(ClusterId=cluster)["Cluster"][
        "Ec2InstanceAttributes"
    ]["Ec2SubnetId"]
    ensure_studio_service_role(
        iam, without=("AllowEC2ENICreationInSubnetAndSecurityGroupWithEMRTags",)
    )
    try:
        with pytest.raises(ClientError) as exc:
            editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster})
        code, message = error_of(exc)
        assert code == "InvalidRequestException"
        assert message.startswith(
            "Cluster failed to attach to the Workspace. Reason: Attaching the workspace(notebook)"
            " failed. Service Role does not have the required permissions."
        )
        session = (
            "arn:aws:sts::000000000000:assumed-role/EMRStudio_Service_Role/"
            "ElasticMapReduceEditorsSession"
        )
        assert (
            f"User: {session} is not authorized to perform: ec2:CreateNetworkInterface on"
            f" resource: arn:aws:ec2:us-east-1:000000000000:subnet/{subnet}"
        ) in message
        described = editors.describe_editor(EditorId=editor_id)["Editor"]
        assert described["Status"] == "Ready" and "AttachedClusterId" not in described

        trail = gateway.client("cloudtrail")
        events = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "Username",
                               "AttributeValue": "ElasticMapReduceEditorsSession"}]
        )["Events"]  # fmt: skip
        record = json.loads(events[0]["CloudTrailEvent"])
        assert record["eventName"] == "CreateNetworkInterface"
        assert record["eventSource"] == "ec2.amazonaws.com"
        assert record["errorCode"] == "UnauthorizedOperation"
        assert record["userIdentity"]["arn"] == session
        assert record["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] == (
            "EMRStudio_Service_Role"
        )
        assert record["requestParameters"]["subnetId"] == subnet
    finally:
        ensure_studio_service_role(iam)


def _meta(answer: dict[str, Any]) -> dict[str, Any]:
    return {"ResponseMetadata": answer["ResponseMetadata"]}


def _connects(container: Any, user: str, ip: str, port: int) -> bool:
    """Whether a TCP connection from inside ``container`` (as ``user``) to ip:port opens."""
    code = (
        "import socket,sys\n"
        f"try: socket.create_connection(({ip!r},{port}),1.5).close()\n"
        "except OSError: sys.exit(1)"
    )
    return int(container.exec_run(["python3", "-c", code], user=user).exit_code) == 0


def test_a_workspace_reaches_no_node_directly_while_the_nodes_reach_each_other(
    cluster: str, workspace: tuple[str, Any], docker_client: docker.DockerClient
) -> None:
    """Security groups on the network: the Workspace (attached, the engine group's rule in
    place) opens nothing on the cluster's nodes, its kernels go through the gateway; the nodes
    talk as EMR's managed groups allow; the gateway on the host reaches the master's 18888."""
    editor_id, _ = workspace
    (ws,) = docker_client.containers.list(filters={"label": f"emustudio.workspace-id={editor_id}"})
    nodes = {
        c.labels["emustudio.instance-role"]: c for c in node_containers(docker_client, cluster)
    }
    ip = {
        role: next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        for role, c in nodes.items()
    }
    for port in (18888, 7077, 8080, 18080):
        assert not _connects(ws, "emr-notebook", ip["MASTER"], port), port
    assert not _connects(ws, "emr-notebook", ip["CORE"], 8081)
    assert _connects(nodes["CORE"], "hadoop", ip["MASTER"], 7077)
    assert _connects(nodes["MASTER"], "hadoop", ip["CORE"], 8081)
    probe = f"import socket; socket.create_connection(({ip['MASTER']!r},18888),2).close()"
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def test_terminate_removes_the_nodes(
    emr: Any, cluster: str, docker_client: docker.DockerClient
) -> None:
    emr.terminate_job_flows(JobFlowIds=[cluster])
    emr.get_waiter("cluster_terminated").wait(ClusterId=cluster, WaiterConfig=FAST)
    status = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert status["State"] == "TERMINATED"
    assert status["StateChangeReason"] == {
        "Code": "USER_REQUEST",
        "Message": "Terminated by user request",
    }
    assert "EndDateTime" in status["Timeline"]
    assert node_containers(docker_client, cluster) == []
    with pytest.raises(ClientError) as exc:
        emr.add_job_flow_steps(JobFlowId=cluster, Steps=[bash_step("late", "true")])
    assert error_of(exc)[0] == "ValidationException"
    assert [c["Id"] for c in emr.list_clusters(ClusterStates=["TERMINATED"])["Clusters"]] == [
        cluster
    ]


def test_a_terminated_cluster_is_not_attached(cluster: str, workspace: tuple[str, Any]) -> None:
    editor_id, editors = workspace
    detached = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert detached["Status"] == "Ready"
    assert "AttachedClusterId" not in detached
    assert detached["StatusReason"] == f"Cluster {cluster} terminated; the Workspace is detached."
    with pytest.raises(ClientError) as exc:
        editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster})
    assert error_of(exc) == (
        "InvalidRequestException",
        f"Cluster {cluster} is TERMINATED. A Workspace can be attached only to a cluster that is"
        " RUNNING or WAITING.",
    )
    assert editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] == "Ready"


@pytest.mark.timeout(900)  # a second cluster: minutes on a loaded 2-core machine
def test_a_failing_bootstrap_action_ends_the_cluster(
    gateway: GatewayProcess, emr: Any, network: StudioNetwork, scripts: str,
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    """The second action fails on the (only) node: the cluster ends TERMINATED_WITH_ERRORS with
    EMR's BOOTSTRAP_FAILURE, its nodes removed; the first action ran before it."""
    instances = {
        "MasterInstanceType": "m5.xlarge",
        "InstanceCount": 1,
        "KeepJobFlowAliveWhenNoSteps": True,
        "Ec2SubnetId": network.subnet_ids[0],
    }
    actions = [
        {"Name": "mark", "ScriptBootstrapAction": {"Path": f"{scripts}/mark.sh"}},
        {"Name": "fails", "ScriptBootstrapAction": {"Path": f"{scripts}/fails.sh"}},
    ]  # fmt: skip
    cluster_id = emr.run_job_flow(
        **job_flow(Name="broken", Instances=instances, BootstrapActions=actions,
                   LogUri=f"s3://{BUCKET}/logs")
    )["JobFlowId"]  # fmt: skip
    with pytest.raises(Exception, match="Waiter ClusterRunning failed"):
        emr.get_waiter("cluster_running").wait(ClusterId=cluster_id, WaiterConfig=FAST)
    # ClusterTerminated's failure state is the one this cluster is meant to end in.
    with pytest.raises(Exception, match='matched expected path: "TERMINATED_WITH_ERRORS"'):
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=FAST)
    described = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    master = emr.list_instances(ClusterId=cluster_id)["Instances"][0]["Ec2InstanceId"]
    assert described["Status"]["State"] == "TERMINATED_WITH_ERRORS"
    assert described["Status"]["StateChangeReason"] == {
        "Code": "BOOTSTRAP_FAILURE",
        "Message": f"On the master instance ({master}), bootstrap action 2 returned a non-zero"
        " return code",
    }
    assert node_containers(docker_client, cluster_id) == []
    assert [a["Name"] for a in emr.list_bootstrap_actions(ClusterId=cluster_id)[
        "BootstrapActions"]] == ["mark", "fails"]  # fmt: skip
    # Both actions' output reached LogUri before the node went.
    assert bootstrap_log(gateway, cluster_id, master, 1, "stdout") == f"marked {master} with \n"
    assert bootstrap_log(gateway, cluster_id, master, 2, "stderr") == "broken\n"
    assert bootstrap_log(gateway, cluster_id, master, 2, "stdout") == ""
    controller = bootstrap_log(gateway, cluster_id, master, 2, "controller")
    assert controller.rstrip().endswith("WARN Execution failed with code '3'")


def test_bootstrap_actions_need_s3_paths(emr: Any, roles: None) -> None:
    with pytest.raises(ClientError) as exc:
        emr.run_job_flow(**job_flow(BootstrapActions=[
            {"Name": "local", "ScriptBootstrapAction": {"Path": "/tmp/x.sh"}}]))  # fmt: skip
    assert error_of(exc) == (
        "ValidationException",
        "The bootstrap action local has an invalid path: /tmp/x.sh (an s3:// location is"
        " expected).",
    )
