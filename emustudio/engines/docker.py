"""The Docker engine: one container per EC2 instance, on the cluster's subnet network.

Containers are named ``emustudio-<gateway instance>-<cluster id>-<instance id>`` and labelled
``emustudio.instance``, ``emustudio.kind`` (``emr-node``), ``emustudio.cluster-id``,
``emustudio.ec2-instance-id``, ``emustudio.instance-role`` and ``emustudio.subnet-id``. The
hostname is the EC2 instance id (Spark's workers and executors reach the master by it through the
network's DNS). Like a Workspace a node publishes no port, drops every capability, gets no new
privileges and runs under Docker's init. Its CPU and memory limits are its instance type's, capped
by the settings (the machine is not a rack); Spark's worker still advertises the instance type's
vCPUs and memory, as YARN does on EMR.

Every node reaches the gateway at its subnet's address (``runtime/reach.py``): S3 for EMRFS and
the instance metadata service for the ``JobFlowRole``'s credentials (``emrfs.py`` says what the
node is told; no key is among it).

HDFS: every node mounts the cluster's own Docker volume (``emustudio-<gateway instance>-<cluster
id>-hdfs``, labelled like its nodes with the kind ``emr-hdfs``) at ``/mnt/hdfs``, and the image's
Hadoop settings map ``hdfs:///`` there (``compose/cluster/node.py``), so the driver and every
executor see one file system. The volume goes with the cluster.

Readiness is the image's health check (``compose/cluster/healthcheck.py``): the master's Spark
master, history server and gateway listen; a worker has registered. Steps run with ``docker
exec`` on the master, on a pool of their own so that a long step never holds the gateway's
Docker calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import tarfile
import time
from collections.abc import Mapping
from typing import Any

import docker
from docker.errors import APIError, NotFound

from emustudio.engines import decommission, emrfs
from emustudio.engines.base import (
    ClusterEngine,
    ClusterSpec,
    ClusterStartError,
    NodeInfo,
    NodeSpec,
    StepOutcome,
)
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images
from emustudio.runtime.networks import L_INSTANCE, L_KIND, L_SUBNET_ID, LABEL, SubnetNetworks
from emustudio.runtime.reach import API, METADATA, GatewayReach, ReachError

log = logging.getLogger(__name__)

KIND_NODE = "emr-node"
KIND_HDFS = "emr-hdfs"
HDFS_MOUNT = "/mnt/hdfs"
L_CLUSTER_ID = f"{LABEL}.cluster-id"
L_EC2_INSTANCE = f"{LABEL}.ec2-instance-id"
L_ROLE = f"{LABEL}.instance-role"
GATEWAY_PORT = 18888
# Bytes of a step's output kept for FailureDetails (a JVM's stack trace is long; the exception
# it starts with is the reason).
_TAIL = 16000
STEP_LOGS = "/mnt/var/log/hadoop/steps"  # where EMR keeps a step's stdout and stderr
MAX_LOG_BYTES = 64 << 20  # of each log file, copied to LogUri
_PIDS_LIMIT = 2048


class DockerClusterEngine(ClusterEngine):
    def __init__(
        self,
        docker_executor: DockerExecutor,
        step_executor: DockerExecutor,
        networks: SubnetNetworks,
        images: Images,
        instance_id: str,
        reach: GatewayReach,
        *,
        region: str,
        max_node_memory_mib: int = 1536,
        max_node_cpus: float = 1.0,
        start_timeout: float = 180.0,
    ) -> None:
        self._docker = docker_executor
        self._steps = step_executor
        self._networks = networks
        self._images = images
        self._instance_id = instance_id
        self._reach = reach
        self._region = region
        self.max_node_memory_mib = max_node_memory_mib
        self.max_node_cpus = max_node_cpus
        self.start_timeout = start_timeout

    def container_name(self, cluster_id: str, instance_id: str) -> str:
        return f"emustudio-{self._instance_id}-{cluster_id}-{instance_id}"

    def hdfs_volume(self, cluster_id: str) -> str:
        return f"emustudio-{self._instance_id}-{cluster_id}-hdfs"

    def _filters(self, cluster_id: str, kind: str = KIND_NODE) -> dict[str, list[str]]:
        return {
            "label": [
                f"{L_INSTANCE}={self._instance_id}",
                f"{L_KIND}={kind}",
                f"{L_CLUSTER_ID}={cluster_id}",
            ]
        }

    # -- start -------------------------------------------------------------------------------

    async def start(self, spec: ClusterSpec) -> list[NodeInfo]:
        image = await self._images.build_cluster(spec.spark_version)
        network = self._networks.network_name(spec.subnet_id)
        master = next(n for n in spec.nodes if n.role == "MASTER")
        env = await self._common_env(spec)
        try:
            for node in spec.nodes:
                await self._create(spec, node, image, network, master.instance_id, env)
            return await self._wait_healthy(spec, network)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop(spec.cluster_id)
            raise

    async def _common_env(self, spec: ClusterSpec) -> dict[str, str]:
        """What every node's environment holds: EMRFS's endpoints and the Spark defaults."""
        try:
            address = await self._reach.address(spec.subnet_id)
        except ReachError as exc:
            raise ClusterStartError(str(exc)) from exc
        endpoint = f"http://{address}:{self._reach.port(API)}"
        env = emrfs.environment(
            endpoint, f"http://{address}:{self._reach.port(METADATA)}", self._region
        )
        env["EMR_SPARK_DEFAULTS"] = json.dumps(
            emrfs.spark_defaults(endpoint) | decommission.SPARK_DEFAULTS | spec.spark_defaults
        )
        return env

    async def add_nodes(self, spec: ClusterSpec, nodes: list[NodeSpec]) -> list[NodeInfo]:
        image = await self._images.build_cluster(spec.spark_version)
        network = self._networks.network_name(spec.subnet_id)
        master = next(n for n in spec.nodes if n.role == "MASTER")
        env = await self._common_env(spec)
        try:
            for node in nodes:
                await self._create(spec, node, image, network, master.instance_id, env)
            return await self._wait_healthy(dataclasses.replace(spec, nodes=tuple(nodes)), network)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.remove_nodes(spec.cluster_id, [n.instance_id for n in nodes])
            raise

    async def decommission_nodes(
        self, cluster_id: str, instance_ids: list[str], timeout: float
    ) -> None:
        names = [self.container_name(cluster_id, i) for i in instance_ids]
        await decommission.drain(self._docker, names, timeout)

    async def remove_nodes(self, cluster_id: str, instance_ids: list[str]) -> None:
        names = [self.container_name(cluster_id, i) for i in instance_ids]

        def _remove(client: docker.DockerClient) -> None:
            for name in names:
                with contextlib.suppress(NotFound):
                    client.containers.get(name).remove(force=True)

        await self._docker.run(_remove)
        log.info("cluster %s: removed %s", cluster_id, ", ".join(instance_ids))

    async def _create(
        self,
        spec: ClusterSpec,
        node: NodeSpec,
        image: str,
        network: str,
        master_host: str,
        common_env: dict[str, str],
    ) -> None:
        role = "master" if node.role == "MASTER" else node.role.lower()
        memory_mib = min(node.instance_type.memory_mib, self.max_node_memory_mib)
        env = {
            **common_env,
            "EMR_NODE_ROLE": role,
            "EMR_MASTER_HOST": master_host,
            "EMR_WORKER_CORES": str(node.instance_type.vcpu),
            "EMR_WORKER_MEMORY": f"{max(node.instance_type.memory_mib - 1024, 512)}m",
        }
        if role == "master":
            env["EMR_JEG_TOKEN"] = spec.gateway_token
        labels = {
            L_INSTANCE: self._instance_id,
            L_KIND: KIND_NODE,
            L_CLUSTER_ID: spec.cluster_id,
            L_EC2_INSTANCE: node.instance_id,
            L_ROLE: node.role,
            L_SUBNET_ID: spec.subnet_id,
        }
        name = self.container_name(spec.cluster_id, node.instance_id)
        extra = self.extra_networks(node)

        volume = self.hdfs_volume(spec.cluster_id)
        volume_labels = {**labels, L_KIND: KIND_HDFS}
        del volume_labels[L_EC2_INSTANCE], volume_labels[L_ROLE]

        def _run(client: docker.DockerClient) -> None:
            try:
                client.networks.get(network)
            except NotFound as exc:
                raise ClusterStartError(
                    f"The subnet {spec.subnet_id} has no network (docker network {network})."
                ) from exc
            try:
                client.volumes.get(volume)
            except NotFound:
                # The first node's start makes it; the image's /mnt/hdfs (owned by hadoop, with
                # /user/hadoop and /tmp) is copied into it on that first mount.
                client.volumes.create(volume, labels=volume_labels)
            container = client.containers.create(
                image,
                name=name,
                hostname=node.instance_id,
                labels=labels,
                environment=env,
                network=network,
                volumes={volume: {"bind": HDFS_MOUNT, "mode": "rw"}},
                mem_limit=f"{memory_mib}m",
                memswap_limit=f"{memory_mib}m",
                nano_cpus=round(min(node.instance_type.vcpu, self.max_node_cpus) * 1e9),
                pids_limit=_PIDS_LIMIT,
                restart_policy={"Name": "no"},
                init=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                detach=True,
            )
            for other in extra:  # joined before it starts: nothing listens there unguarded
                try:
                    client.networks.get(other).connect(container)
                except NotFound as exc:
                    container.remove(force=True)
                    raise ClusterStartError(f"The network {other} does not exist.") from exc
            container.start()

        await self._docker.run(_run)
        log.info("cluster %s: started %s (%s) on %s", spec.cluster_id, name, node.role, network)

    async def _wait_healthy(self, spec: ClusterSpec, network: str) -> list[NodeInfo]:
        deadline = time.monotonic() + self.start_timeout
        names = {
            n.instance_id: self.container_name(spec.cluster_id, n.instance_id) for n in spec.nodes
        }
        while True:
            states = await self._docker.run(lambda c: [_inspect(c, n) for n in names.values()])
            for (instance_id, name), attrs in zip(names.items(), states, strict=True):
                if attrs is None:
                    raise ClusterStartError(f"The instance {instance_id} is gone.")
                state = attrs["State"]
                # "unhealthy" alone is not the end: on a loaded machine the daemons may take
                # longer than the check's start period, and health comes back when they answer.
                if not state.get("Running"):
                    tail = await self._logs_tail(name)
                    raise ClusterStartError(
                        f"The instance {instance_id} failed to start: {tail or state.get('Error')}"
                    )
            if all((a or {})["State"].get("Health", {}).get("Status") == "healthy" for a in states):
                return [
                    NodeInfo(
                        instance_id=iid,
                        private_ip=(a or {})["NetworkSettings"]["Networks"]
                        .get(network, {})
                        .get("IPAddress")
                        or None,
                        hostname=iid,
                    )
                    for iid, a in zip(names, states, strict=True)
                ]
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"The cluster's instances did not become ready within {self.start_timeout:.0f}"
                    " seconds."
                )
            await asyncio.sleep(0.5)

    async def _logs_tail(self, name: str) -> str:
        def _logs(client: docker.DockerClient) -> str:
            try:
                raw = client.containers.get(name).logs(tail=15)
            except (NotFound, APIError):
                return ""
            return bytes(raw).decode(errors="replace").strip()

        return (await self._docker.run(_logs))[-1000:]

    # -- stop --------------------------------------------------------------------------------

    async def stop(self, cluster_id: str) -> None:
        filters = self._filters(cluster_id)
        volumes = self._filters(cluster_id, KIND_HDFS)

        def _remove(client: docker.DockerClient) -> None:
            for container in client.containers.list(all=True, filters=filters):
                with contextlib.suppress(NotFound):
                    container.remove(force=True)
            # HDFS goes with the cluster, as an EMR cluster's core nodes' disks do.
            for volume in client.volumes.list(filters=volumes):
                with contextlib.suppress(NotFound):
                    volume.remove(force=True)

        await self._docker.run(_remove)
        log.info("cluster %s: nodes removed", cluster_id)

    # -- steps -------------------------------------------------------------------------------

    async def _master(self, cluster_id: str) -> str | None:
        filters = self._filters(cluster_id)
        filters["label"].append(f"{L_ROLE}=MASTER")

        def _find(client: docker.DockerClient) -> str | None:
            found = client.containers.list(filters=filters)
            return str(found[0].id) if found else None

        return await self._docker.run(_find)

    async def run_step(
        self,
        cluster_id: str,
        step_id: str,
        argv: list[str],
        files: Mapping[str, bytes] | None = None,
    ) -> StepOutcome:
        master = await self._master(cluster_id)
        if master is None:
            return StepOutcome(255, "", "The master instance is not running.")
        pid_file = f"/tmp/step-{step_id}.pid"
        logs = f"{STEP_LOGS}/{step_id}"
        # The log folder (hadoop's; /mnt is root's) and any files the step brings.
        archive = _tar(files or {}, folders=(logs,))
        await self._docker.run(lambda c: c.containers.get(master).put_archive("/", archive))
        # The shell records its pid, then becomes the command (cancel_step signals that pid),
        # its output in the step's log files, where EMR keeps them on the master.
        # A cancel that came before the pid file is seen here (it marks first, then reads).
        marked = f"/tmp/step-{step_id}.cancelled"
        script = (
            f"echo $$ > {pid_file}; [ -e {marked} ] && exit 143;"
            f' exec "$@" >{logs}/stdout 2>{logs}/stderr'
        )
        command = ["/bin/sh", "-c", script, "step", *argv]

        def _exec(client: docker.DockerClient) -> tuple[int, dict[str, bytes]]:
            exec_id = client.api.exec_create(master, command, user="hadoop", workdir="/home/hadoop")
            client.api.exec_start(exec_id)
            code = client.api.exec_inspect(exec_id).get("ExitCode")
            return (255 if code is None else int(code)), _read_files(client, master, logs)

        code, out = await self._steps.run(_exec)
        cancelled = code in (143, 137) and await self._was_cancelled(master, step_id)
        return StepOutcome(
            code,
            out.get("stdout", b"")[-_TAIL:].decode(errors="replace"),
            out.get("stderr", b"")[-_TAIL:].decode(errors="replace"),
            cancelled,
            out,
        )

    async def run_on_node(
        self, cluster_id: str, instance_id: str, argv: list[str], files: Mapping[str, bytes]
    ) -> StepOutcome:
        filters = self._filters(cluster_id)
        filters["label"].append(f"{L_EC2_INSTANCE}={instance_id}")
        archive = _tar(files)

        def _put(client: docker.DockerClient) -> str | None:
            found = client.containers.list(filters=filters)
            if not found:
                return None
            # Docker extracts as root, keeping the archive's owner: the files are hadoop's.
            found[0].put_archive("/", archive)
            return str(found[0].id)

        container = await self._docker.run(_put)
        if container is None:
            return StepOutcome(255, "", f"The instance {instance_id} is not running.")

        def _exec(client: docker.DockerClient) -> tuple[int, bytes, bytes]:
            exec_id = client.api.exec_create(container, argv, user="hadoop", workdir="/home/hadoop")
            out, err = client.api.exec_start(exec_id, demux=True)
            code = client.api.exec_inspect(exec_id).get("ExitCode")
            return (255 if code is None else int(code)), out or b"", err or b""

        code, out, err = await self._steps.run(_exec)
        return StepOutcome(
            code, out.decode(errors="replace")[-_TAIL:], err.decode(errors="replace")[-_TAIL:],
            logs={"stdout": out[-MAX_LOG_BYTES:], "stderr": err[-MAX_LOG_BYTES:]},
        )  # fmt: skip

    async def _was_cancelled(self, master: str, step_id: str) -> bool:
        def _check(client: docker.DockerClient) -> bool:
            result = client.containers.get(master).exec_run(
                ["test", "-e", f"/tmp/step-{step_id}.cancelled"], user="hadoop"
            )
            return int(result.exit_code) == 0

        with contextlib.suppress(NotFound, APIError):
            return await self._docker.run(_check)
        return False

    async def cancel_step(self, cluster_id: str, step_id: str) -> None:
        master = await self._master(cluster_id)
        if master is None:
            return
        script = (
            f"touch /tmp/step-{step_id}.cancelled; "
            f'pid=$(cat /tmp/step-{step_id}.pid 2>/dev/null) && kill -TERM "$pid"'
        )

        def _kill(client: docker.DockerClient) -> None:
            client.containers.get(master).exec_run(["/bin/sh", "-c", script], user="hadoop")

        with contextlib.suppress(NotFound, APIError):
            await self._docker.run(_kill)

    # -- activity ----------------------------------------------------------------------------

    async def running_instances(self, cluster_id: str) -> set[str]:
        filters = self._filters(cluster_id)
        filters["status"] = ["running"]

        def _list(client: docker.DockerClient) -> set[str]:
            return {str(c.labels[L_EC2_INSTANCE]) for c in client.containers.list(filters=filters)}

        return await self._docker.run(_list)

    def extra_networks(self, node: NodeSpec) -> list[str]:
        """Networks the node joins besides its subnet's (none here)."""
        return []

    def busy_script(self) -> str:
        """Python run on the master (argument: ``within``) that exits 0 when it is busy."""
        return _BUSY

    async def busy(self, cluster_id: str, within: float) -> bool:
        master = await self._master(cluster_id)
        if master is None:
            return False
        command = ["python3", "-I", "-S", "-c", self.busy_script(), str(within)]

        def _check(client: docker.DockerClient) -> bool:
            result = client.containers.get(master).exec_run(command, user="hadoop")
            return int(result.exit_code) == 0

        try:
            return await self._docker.run(_check)
        except (NotFound, APIError):
            return False

    # -- the notebook gateway ----------------------------------------------------------------

    async def gateway_endpoint(self, cluster_id: str) -> str | None:
        filters = self._filters(cluster_id)
        filters["label"].append(f"{L_ROLE}=MASTER")

        def _find(client: docker.DockerClient) -> str | None:
            for container in client.containers.list(filters=filters):
                networks = container.attrs["NetworkSettings"]["Networks"] or {}
                # The subnet's network: a master may be on another too (engines/standalone.py).
                subnet = self._networks.network_name(container.labels[L_SUBNET_ID])
                for _name, net in sorted(networks.items(), key=lambda item: item[0] != subnet):
                    if net.get("IPAddress"):
                        return f"{net['IPAddress']}:{GATEWAY_PORT}"
            return None

        return await self._docker.run(_find)

    async def close(self) -> None:
        self._steps.close()


# Exit 0 when the master is busy: an application on the Spark master (its JSON view), or the
# isbusy file touched lately (EMR's way for work that is not a Spark application).
_BUSY = """
import json, os, sys, time, urllib.request
try:
    if time.time() - os.stat("/emr/metricscollector/isbusy").st_mtime < float(sys.argv[1]):
        sys.exit(0)
except OSError:
    pass
try:
    with urllib.request.urlopen("http://localhost:8080/json/", timeout=5) as answer:
        sys.exit(0 if json.load(answer).get("activeapps") else 1)
except OSError:
    sys.exit(1)
"""


def _tar(files: Mapping[str, bytes], folders: tuple[str, ...] = ()) -> bytes:
    """``files`` and ``folders`` as a tar archive for ``put_archive``: mode 0755, owner
    hadoop (uid 1000); the folders on their way too (except the image's own home and /tmp)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dirs: set[str] = set()

        def folder_entries(parts: list[str]) -> None:
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in dirs and folder not in ("home", "home/hadoop", "tmp"):
                    dirs.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 1000, 1000
                    tar.addfile(info)

        for folder in folders:
            folder_entries(folder.strip("/").split("/"))
        for path, data in files.items():
            parts = path.strip("/").split("/")
            folder_entries(parts[:-1])
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode, info.uid, info.gid = len(data), 0o755, 1000, 1000
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _read_files(client: docker.DockerClient, container: str, folder: str) -> dict[str, bytes]:
    """The regular files of ``folder`` in the container (each up to MAX_LOG_BYTES, its end)."""
    try:
        stream, _ = client.api.get_archive(container, folder)
    except (NotFound, APIError):
        return {}
    raw = io.BytesIO()
    for chunk in stream:
        raw.write(chunk)
    raw.seek(0)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=raw, mode="r") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                if member.size > MAX_LOG_BYTES:
                    handle.seek(member.size - MAX_LOG_BYTES)
                out[member.name.rsplit("/", 1)[-1]] = handle.read()
    return out


def _inspect(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.api.inspect_container(name))
    except NotFound:
        return None
