"""The standalone engine: a cluster whose executors come from an existing Spark standalone master.

Where users go when one machine is not enough: the Spark cluster already runs elsewhere (its
master at ``standalone_master_url``, its workers on other machines), and an EMR cluster here is
its master node only. That node is the Docker engine's master container, unchanged (the same
image, labels, limits and hardening, on the cluster's subnet network, in its security groups,
with EMRFS through the metadata service): Jupyter Enterprise Gateway on 18888 for the attached
Workspaces, the drivers of kernels and steps (client mode), the history server. What differs:

* ``spark.master`` in its spark-defaults is the external master's URL, so every application a
  kernel or a step starts asks that master for executors, which its workers start;
* the container also joins ``standalone_network``, the user's network on which the external
  master and workers reach it, and its drivers advertise their address there
  (``spark.driver.host``; they listen on every interface), because executors call the driver
  back. The subnet network stays its first: the gateway and the Workspaces reach it there, as
  before. On the driver network its own security groups' inbound CIDR rules decide what reaches
  it (``services/ec2/enforcement.py``), so the user opens the drivers' ports to their workers;
* no core or task node is started: the external workers are not EC2 instances of this cluster
  (``external_workers`` tells the EMR service, which then records the master node only and
  refuses a resize: docs/decisions.md, "The standalone engine").

Terminating the cluster removes its master container (its drivers end, so the external master
ends their applications and its workers their executors); the external master and workers are
never touched. The image's own Spark master still runs on the master node, idle (the image
starts it on every master; the engine does not rebuild the image for this).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import docker
from docker.errors import APIError, NotFound

from emustudio.engines.base import ClusterSpec, ClusterStartError, NodeInfo, NodeSpec
from emustudio.engines.docker import DockerClusterEngine

log = logging.getLogger(__name__)

SPARK_DEFAULTS = "/usr/lib/spark/conf/spark-defaults.conf"
_CONNECT_SECONDS = 10


class StandaloneClusterEngine(DockerClusterEngine):
    def __init__(self, *args: Any, master_url: str, network: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.external_workers = master_url
        self.driver_network = network

    async def start(self, spec: ClusterSpec) -> list[NodeInfo]:
        master = next(n for n in spec.nodes if n.role == "MASTER")
        # The external master wins over a spark-defaults Configuration's spark.master.
        defaults = spec.spark_defaults | {"spark.master": str(self.external_workers)}
        nodes = await super().start(
            dataclasses.replace(spec, nodes=(master,), spark_defaults=defaults)
        )
        try:
            await self._drive_from_network(spec.cluster_id, master.instance_id)
        except BaseException:
            await self.stop(spec.cluster_id)
            raise
        return nodes

    def extra_networks(self, node: NodeSpec) -> list[str]:
        return [self.driver_network] if node.role == "MASTER" else []

    async def _drive_from_network(self, cluster_id: str, instance_id: str) -> None:
        """Tell the master's drivers their address on the driver network (joined before it
        started), and check that the external master answers from there."""
        name = self.container_name(cluster_id, instance_id)
        network = self.driver_network
        host, _, port = str(self.external_workers).removeprefix("spark://").rpartition(":")

        def _set_up(client: docker.DockerClient) -> tuple[str, int, str]:
            container = client.containers.get(name)
            address = (
                container.attrs["NetworkSettings"]["Networks"].get(network, {}).get("IPAddress")
            )
            if not address:
                raise ClusterStartError(
                    f"The master node got no IPv4 address on the network {network}."
                )
            # The properties file's last value of a key wins: this line outranks the image's
            # spark.driver.host (the node's hostname, which only the subnet network resolves).
            script = f'printf "spark.driver.host %s\\n" "$1" >> {SPARK_DEFAULTS}'
            written = container.exec_run(["/bin/sh", "-c", script, "sh", address], user="hadoop")
            if written.exit_code != 0:
                raise ClusterStartError(
                    "The master node's Spark defaults could not be written:"
                    f" {written.output.decode(errors='replace')[-500:]}"
                )
            probe = container.exec_run(
                ["python3", "-I", "-S", "-c", _PROBE, host, port, str(_CONNECT_SECONDS)],
                user="hadoop",
            )
            return address, int(probe.exit_code), probe.output.decode(errors="replace").strip()

        try:
            address, code, why = await self._docker.run(_set_up)
        except (NotFound, APIError) as exc:
            raise ClusterStartError(
                f"The master node could not be set up on the network {network}: {exc}"
            ) from exc
        if code != 0:
            raise ClusterStartError(
                f"The Spark standalone master {self.external_workers} does not answer from the"
                f" master node on the network {network}: {why[-500:]}"
            )
        log.info(
            "cluster %s: master %s drives executors of %s from %s on %s",
            cluster_id,
            instance_id,
            self.external_workers,
            address,
            network,
        )

    async def add_nodes(self, spec: ClusterSpec, nodes: list[NodeSpec]) -> list[NodeInfo]:
        # The EMR service refuses a resize before it gets here (ResizeOperations).
        raise ClusterStartError(
            f"The workers of {self.external_workers} are not this cluster's to start."
        )

    def busy_script(self) -> str:
        return _BUSY_DRIVER


# Exit 0 when the master answers a TCP connection from here; else print why and exit 1.
_PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except OSError as exc:
    print(exc)
    sys.exit(1)
"""

# Exit 0 when the master node is busy: a Spark driver runs on it (a kernel's session or a step's
# spark-submit; the external master's list of applications is everyone's, not this cluster's),
# or the isbusy file was touched lately (EMR's way for work that is not a Spark application).
_BUSY_DRIVER = """
import os, sys, time
try:
    if time.time() - os.stat("/emr/metricscollector/isbusy").st_mtime < float(sys.argv[1]):
        sys.exit(0)
except OSError:
    pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"org.apache.spark.deploy.SparkSubmit" in cmdline.read():
                sys.exit(0)
    except OSError:
        pass
sys.exit(1)
"""
