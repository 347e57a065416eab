"""EMRFS: a real cluster's Spark reads and writes ``s3://`` in the gateway's S3 with its
instance profile's credentials, and the role's policy decides what a job may touch.

One cluster (a master and a core node) serves the module. Its ``JobFlowRole`` may use one
bucket and is denied another; nothing on a node holds a long-term key.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from botocore.exceptions import WaiterError

from emustudio.testing.gateway import ROOT_SECRET, GatewayProcess
from emustudio.testing.vpc import StudioNetwork
from tests.services.emr.test_clusters import TRUST, node_containers

pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(2400)]

ROLE = "EMRFS_EC2_Role"
SLOW = {"Delay": 3, "MaxAttempts": 400}

WORDS = """\
from pyspark.sql import SparkSession, functions as F
import sys

source, target, parquet = sys.argv[1:4]
spark = SparkSession.builder.appName("emrfs-words").getOrCreate()
lines = spark.read.text(source)
words = lines.select(F.explode(F.split("value", " ")).alias("word")).where("word != ''")
counts = words.groupBy("word").count().coalesce(1).cache()
counts.write.mode("overwrite").csv(target)
counts.write.mode("overwrite").parquet(parquet)
"""

READ = """\
from pyspark.sql import SparkSession
import sys

spark = SparkSession.builder.appName("emrfs-denied").getOrCreate()
print(spark.read.text(sys.argv[1]).count())
"""

WHOAMI = """\
import json, boto3
session = boto3.Session()
creds = session.get_credentials()
print(json.dumps({
    "method": creds.method,
    "key": creds.get_frozen_credentials().access_key,
    "arn": session.client("sts").get_caller_identity()["Arn"],
}))
"""


@pytest.fixture(scope="module")
def buckets(gateway: GatewayProcess) -> tuple[str, str]:
    s3 = gateway.client("s3")
    data, secret = f"emrfs-data-{secrets.token_hex(3)}", f"emrfs-secret-{secrets.token_hex(3)}"
    for bucket in (data, secret):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=data, Key="input/a.txt", Body=b"to be or not to be\n")
    s3.put_object(Bucket=data, Key="input/b.txt", Body=b"that is the question\n")
    s3.put_object(Bucket=data, Key="jobs/words.py", Body=WORDS.encode())
    s3.put_object(Bucket=data, Key="jobs/read.py", Body=READ.encode())
    s3.put_object(Bucket=secret, Key="salaries.txt", Body=b"classified\n")
    return data, secret


@pytest.fixture(scope="module")
def job_flow_role(gateway: GatewayProcess, buckets: tuple[str, str]) -> str:
    data, secret = buckets
    iam = gateway.client("iam")
    iam.create_role(RoleName="EMRFS_ServiceRole", AssumeRolePolicyDocument=TRUST)
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{data}", f"arn:aws:s3:::{data}/*"]},
            {"Effect": "Deny", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{secret}", f"arn:aws:s3:::{secret}/*"]},
        ],
    }  # fmt: skip
    iam.put_role_policy(RoleName=ROLE, PolicyName="buckets", PolicyDocument=json.dumps(policy))
    iam.create_instance_profile(InstanceProfileName=ROLE)
    iam.add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    return ROLE


@pytest.fixture(scope="module")
def cluster(emr: Any, job_flow_role: str, network: StudioNetwork) -> Iterator[str]:
    created = emr.run_job_flow(
        Name="emrfs",
        ReleaseLabel="emr-7.12.0",
        Applications=[{"Name": "Spark"}],
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 1},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
            "Ec2SubnetId": network.subnet_ids[0],
        },
        JobFlowRole=job_flow_role,
        ServiceRole="EMRFS_ServiceRole",
    )
    cluster_id = created["JobFlowId"]
    try:
        try:
            emr.get_waiter("cluster_running").wait(
                ClusterId=cluster_id, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
            )
        except WaiterError:
            status = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
            pytest.fail(f"the cluster did not start: {status}")
        yield cluster_id
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=SLOW)


def run_step(emr: Any, cluster: str, name: str, args: list[str]) -> dict[str, Any]:
    step = {"Name": name, "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args}}  # fmt: skip
    step_id = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[step])["StepIds"][0]
    waiter = emr.get_waiter("step_complete")
    # The waiter gives up on FAILED (WaiterError): the caller reads the step either way. A
    # JVM or two on a loaded shared machine take minutes.
    with contextlib.suppress(WaiterError):
        waiter.wait(ClusterId=cluster, StepId=step_id, WaiterConfig=SLOW)
    result: dict[str, Any] = emr.describe_step(ClusterId=cluster, StepId=step_id)["Step"]
    return result


def test_spark_submit_reads_and_writes_s3(
    gateway: GatewayProcess, emr: Any, cluster: str, buckets: tuple[str, str]
) -> None:
    data, _ = buckets
    step = run_step(
        emr, cluster, "words",
        # The script from s3://, its input through s3n://, its outputs to s3:// and s3a://.
        ["spark-submit", f"s3://{data}/jobs/words.py", f"s3n://{data}/input/",
         f"s3://{data}/output/words/", f"s3a://{data}/output/parquet/"],
    )  # fmt: skip
    assert step["Status"]["State"] == "COMPLETED", step["Status"]

    s3 = gateway.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=data, Prefix="output/")["Contents"]]
    # The committer's directory markers and _temporary/ trees are gone; the job's marks stay.
    assert not [k for k in keys if k.endswith("/") or "_temporary" in k], keys
    assert "output/words/_SUCCESS" in keys and "output/parquet/_SUCCESS" in keys
    parts = [k for k in keys if k.startswith("output/words/part-")]
    assert len(parts) == 1
    body = s3.get_object(Bucket=data, Key=parts[0])["Body"].read().decode()
    counts = dict(sorted((word, int(n)) for word, n in csv.reader(io.StringIO(body))))
    assert counts == {"be": 2, "is": 1, "not": 1, "or": 1, "question": 1, "that": 1,
                      "the": 1, "to": 2}  # fmt: skip
    assert any(k.startswith("output/parquet/part-") and k.endswith(".parquet") for k in keys)


def test_the_role_policy_denies_a_bucket(
    gateway: GatewayProcess, emr: Any, cluster: str, buckets: tuple[str, str]
) -> None:
    data, secret = buckets
    step = run_step(
        emr, cluster, "denied",
        ["spark-submit", f"s3://{data}/jobs/read.py", f"s3://{secret}/salaries.txt"],
    )  # fmt: skip
    assert step["Status"]["State"] == "FAILED"
    failure = step["Status"]["FailureDetails"]
    # S3A's exception, with S3's error code, is the reason the step failed.
    assert "AccessDenied" in failure["Reason"] and secret in failure["Reason"], failure


def test_nodes_hold_no_long_term_keys(
    gateway: GatewayProcess, cluster: str, docker_client: docker.DockerClient
) -> None:
    nodes = node_containers(docker_client, cluster)
    assert len(nodes) == 2
    for node in nodes:
        env = dict(e.split("=", 1) for e in node.attrs["Config"]["Env"])
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
        assert ROOT_SECRET not in env.values()
        # No shared credentials file for anyone, no key in Spark's configuration.
        aws_dirs = node.exec_run(["ls", "-d", "/home/hadoop/.aws", "/root/.aws"], user="root")
        assert aws_dirs.exit_code != 0 and b"/.aws\n" not in aws_dirs.output
        conf = node.exec_run(["sh", "-c", "cat /usr/lib/spark/conf/*"], user="root")
        assert b"fs.s3a.endpoint" in conf.output  # the file read is Spark's real one
        assert b"access.key" not in conf.output and b"secret.key" not in conf.output
        # What an SDK on the node finds: the instance profile's session, named for the node.
        found = node.exec_run(["/opt/spark-venv/bin/python", "-c", WHOAMI], user="hadoop")
        assert found.exit_code == 0, found.output.decode()[-2000:]
        who = json.loads(found.output.decode().strip().splitlines()[-1])
        instance = node.labels["emustudio.ec2-instance-id"]
        assert who["method"] == "iam-role"
        assert who["key"].startswith("ASIA")
        assert who["arn"] == f"arn:aws:sts::000000000000:assumed-role/{ROLE}/{instance}"


def test_the_metadata_service_answers_only_nodes(
    cluster: str, docker_client: docker.DockerClient
) -> None:
    node = node_containers(docker_client, cluster)[0]
    endpoint = dict(e.split("=", 1) for e in node.attrs["Config"]["Env"])[
        "AWS_EC2_METADATA_SERVICE_ENDPOINT"
    ]
    # The host asks from the bridge's own address: it is no instance.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{endpoint}/latest/meta-data/iam/security-credentials/", timeout=5)
    assert refused.value.code == 404
