"""One EMR instance's processes: the node's role decides which daemons run.

master: the Spark standalone master (7077, UI 8080), the Spark history server (18080) and
Jupyter Enterprise Gateway (18888, token-protected: only the emustudio gateway has the token).
core/task: a Spark worker (UI 8081) registered with the master.

HDFS: there is no HDFS server to install here, so every node mounts the cluster's own volume at
/mnt/hdfs (the engine makes it) and Hadoop's ViewFileSystemOverloadScheme answers ``hdfs://``
with that directory as its mount table's fallback: ``hdfs:///user/hadoop/x`` is
/mnt/hdfs/user/hadoop/x on every node, and fs.defaultFS is ``hdfs://<master>:8020`` as on EMR, so
relative paths land there too.

Settings come from the environment (emustudio/engines/docker.py sets them). Daemon output goes to
this process's stdout (the container log). SIGTERM stops the daemons and exits.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

SPARK_HOME = os.environ.get("SPARK_HOME", "/usr/lib/spark")
SPARK_CLASS = os.path.join(SPARK_HOME, "bin", "spark-class")
JEG = "/emr/notebook-env/bin/jupyter"
HDFS_ROOT = "/mnt/hdfs"
REGISTERED_MARK = "/tmp/.emr-worker-registered"
procs: list[subprocess.Popen[bytes]] = []
# What kernels inherit from the node (Enterprise Gateway passes a kernel only PATH, the KERNEL_*
# variables and these): EMRFS's endpoints and region (engines/emrfs.py), so that a kernel's
# Spark driver and boto3 find the instance profile's credentials as steps do, and Spark's homes.
KERNEL_ENV = [
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
    "JAVA_HOME", "SPARK_HOME", "PYSPARK_PYTHON", "LANG",
]  # fmt: skip


def spark_defaults(role: str, host: str, master: str) -> str:
    conf = {
        "spark.master": f"spark://{master}:7077",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "file:///var/log/spark/apps",
        "spark.history.fs.logDirectory": "file:///var/log/spark/apps",
        "spark.history.fs.update.interval": "2s",
        "spark.driver.memory": "512m",
        "spark.executor.memory": "512m",
        "spark.ui.showConsoleProgress": "false",
        # hdfs:/// on the volume every node shares (above); the mount table is named after
        # the default file system's host.
        "spark.hadoop.fs.defaultFS": f"hdfs://{master}:8020",
        "spark.hadoop.fs.hdfs.impl": "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme",
        f"spark.hadoop.fs.viewfs.mounttable.{master}.linkFallback": f"file://{HDFS_ROOT}",
        # EMR's warehouse, and CREATE TABLE without USING makes a Spark table (no Hive here).
        "spark.sql.warehouse.dir": "hdfs:///user/spark/warehouse",
        "spark.sql.legacy.createHiveTableByDefault": "false",
    }
    if role == "master":
        # Drivers run on the master (client mode); executors on the workers call back here.
        conf["spark.driver.host"] = host
        conf["spark.driver.bindAddress"] = "0.0.0.0"
    conf.update(json.loads(os.environ.get("EMR_SPARK_DEFAULTS") or "{}"))
    return "".join(f"{k} {v}\n" for k, v in conf.items())


def pipe(proc: subprocess.Popen[bytes], name: str) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        print(f"[{name}] {line}", flush=True)
        if name == "worker" and "Successfully registered with master" in line:
            with open(REGISTERED_MARK, "w"):
                pass


def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    procs.append(proc)
    threading.Thread(target=pipe, args=(proc, name), daemon=True).start()


def stop(*_: object) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 8
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.exit(0)


def main() -> None:
    role = os.environ.get("EMR_NODE_ROLE", "master")
    host = socket.gethostname()
    master = os.environ.get("EMR_MASTER_HOST", host)
    with open(os.path.join(SPARK_HOME, "conf", "spark-defaults.conf"), "w") as f:
        f.write(spark_defaults(role, host, master))
    daemon = {"SPARK_DAEMON_MEMORY": os.environ.get("EMR_DAEMON_MEMORY", "256m")}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if role == "master":
        start(
            "master",
            [SPARK_CLASS, "org.apache.spark.deploy.master.Master",
             "--host", host, "--port", "7077", "--webui-port", "8080"],
            daemon,
        )  # fmt: skip
        start("history", [SPARK_CLASS, "org.apache.spark.deploy.history.HistoryServer"], daemon)
        start(
            "jeg",
            [JEG, "enterprisegateway", "--ip=0.0.0.0", "--port=18888", "--port_retries=0",
             "--EnterpriseGatewayApp.unauthorized_users=['root']",
             f"--EnterpriseGatewayApp.env_process_whitelist={KERNEL_ENV!r}"],
            {"EG_AUTH_TOKEN": os.environ.get("EMR_JEG_TOKEN", ""),
             "EG_KERNEL_LAUNCH_TIMEOUT": "120"},
        )  # fmt: skip
    else:
        start(
            "worker",
            [SPARK_CLASS, "org.apache.spark.deploy.worker.Worker",
             "--host", host, "--webui-port", "8081",
             "--cores", os.environ.get("EMR_WORKER_CORES", "1"),
             "--memory", os.environ.get("EMR_WORKER_MEMORY", "1g"),
             "--work-dir", "/var/lib/spark/work", f"spark://{master}:7077"],
            daemon,
        )  # fmt: skip
    while True:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a daemon exited with {proc.returncode}; stopping the node", flush=True)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
