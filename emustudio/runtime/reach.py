"""Where a container on a subnet network reaches the gateway.

An EC2 instance reaches AWS's endpoints and its instance metadata service from its subnet. Here
a cluster node (and, for the kernel route, a Workspace) reaches the gateway at one address of
its subnet network, chosen so that nothing outside emustudio's own networks changes
(docs/decisions.md, "How containers reach the gateway"):

* **gateway on the host** (the default): the network's bridge address, ``x.x.x.1``, which the
  host holds and which AWS reserves for the VPC router. The gateway's servers listen there as
  well as on ``host`` (a loopback-only gateway stays closed to the rest of the machine's
  networks); each address is bound the first time a container on that network needs it.
* **gateway in a container** (``gateway_container``): that container's own address on the
  network (it joins every subnet network, ``x.x.x.2``); its servers listen on ``host``
  (``0.0.0.0`` in compose), which covers every network it joins.

Two servers are reachable this way: ``api``, the AWS endpoint (S3 for EMRFS), on the gateway's
port, and ``metadata``, the instance metadata service (a node's instance-profile credentials),
on ``metadata_port``. The metadata service is never bound to ``host`` on the host: only the
subnets' own addresses expose it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field

import docker
from docker.errors import NotFound
from tornado import httpserver, netutil

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import SubnetNetworks

__all__ = ["API", "METADATA", "GatewayReach", "ReachError", "Served"]

log = logging.getLogger(__name__)

API = "api"
METADATA = "metadata"


class ReachError(RuntimeError):
    """The gateway cannot be reached from a subnet network (the message says why)."""


@dataclass
class Served:
    """One of the gateway's servers: its port and the addresses it already listens on."""

    server: httpserver.HTTPServer
    port: int
    bound: set[str] = field(default_factory=set)


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


class GatewayReach:
    def __init__(
        self,
        networks: SubnetNetworks,
        docker_executor: DockerExecutor,
        *,
        host: str,
        metadata_port: int,
    ) -> None:
        self._networks = networks
        self._docker = docker_executor
        self._host = host
        self.metadata_port = metadata_port
        self._served: dict[str, Served] = {}
        self._lock = asyncio.Lock()

    @property
    def in_container(self) -> bool:
        return self._networks.gateway_container is not None

    def listen(self, name: str, server: httpserver.HTTPServer, port: int) -> int:
        """Start ``server`` where it always listens; return its port (``port`` 0: the one the
        system chose). ``api`` listens on ``host``; ``metadata`` on ``host`` only when the
        gateway runs in a container, else only on the subnet addresses :meth:`address` binds."""
        served = Served(server, port)
        if name == API or self.in_container:
            sockets = netutil.bind_sockets(port, self._host or None)
            server.add_sockets(sockets)
            served.port = int(sockets[0].getsockname()[1])
            if _is_wildcard(self._host):
                served.bound.add("*")
        self._served[name] = served
        return served.port

    def port(self, name: str) -> int:
        return self._served[name].port

    async def address(self, subnet_id: str) -> str:
        """The gateway's address on the subnet's network, every server listening there."""
        if self.in_container:
            return await self._container_address(subnet_id)
        found = [n for n in await self._networks.list() if n.subnet_id == subnet_id]
        if not found:
            raise ReachError(f"The subnet {subnet_id} has no network.")
        address = found[0].gateway
        async with self._lock:
            for name, served in self._served.items():
                if "*" in served.bound or address in served.bound:
                    continue
                try:
                    sockets = netutil.bind_sockets(served.port, address)
                except OSError as exc:
                    raise ReachError(
                        f"The gateway cannot listen on {address}:{served.port} ({name}) for the"
                        f" subnet {subnet_id}: {exc}"
                    ) from exc
                served.server.add_sockets(sockets)
                served.bound.add(address)
                log.info("%s listens on %s:%s for subnet %s", name, address, served.port, subnet_id)
        return address

    async def _container_address(self, subnet_id: str) -> str:
        container = self._networks.gateway_container
        name = self._networks.network_name(subnet_id)

        def _find(client: docker.DockerClient) -> str | None:
            try:
                attrs = client.api.inspect_container(container)
            except NotFound:
                return None
            networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
            return (networks.get(name) or {}).get("IPAddress") or None

        address = await self._docker.run(_find)
        if address is None:
            raise ReachError(
                f"The gateway container {container} is not on the network of subnet {subnet_id}."
            )
        ipaddress.ip_address(address)  # Docker's answer is an address, nothing else
        return address
