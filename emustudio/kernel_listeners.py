"""Where a Workspace's server reaches the kernel route: the gateway's address on its subnet.

Until the kernel route, the gateway opened every connection to containers; the route is the
first the other way. A Workspace sits on its subnet's bridge network only, so:

* **gateway on the host** (the default): the host's address on that bridge (Docker's gateway
  of the network, the subnet's first address). If the gateway listens on a wildcard address it
  answers there already; otherwise (``127.0.0.1``, the default) it opens one more listener on
  that address, same port, serving the kernel route alone: the AWS API and the Studio pages
  stay on loopback, out of the Workspaces' reach.
* **gateway in a container** (compose, ``gateway_container``): its own address on the subnet
  network, which it joined (``runtime/networks.py``); it listens on all its addresses.

Listeners open lazily, when the first Workspace of a subnet starts, and close with the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import docker
from tornado import httpserver, netutil, web

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import SubnetNetworks

log = logging.getLogger(__name__)

_WILDCARDS = ("", "0.0.0.0", "::")


class KernelRouteListeners:
    def __init__(
        self,
        networks: SubnetNetworks,
        docker_executor: DockerExecutor,
        *,
        host: str,
        port: int,
        make_app: Callable[[], web.Application],
    ) -> None:
        self.networks = networks
        self.docker = docker_executor
        self.host = host
        self.port = port
        self.make_app = make_app
        self._servers: dict[str, httpserver.HTTPServer] = {}

    async def address(self, subnet_id: str) -> str | None:
        """``host:port`` of the kernel route as seen from a container on ``subnet_id``."""
        network = await self.networks.get(subnet_id)
        if network is None:
            return None
        container = self.networks.gateway_container
        if container is not None:

            def _ip(client: docker.DockerClient) -> str | None:
                attrs: dict[str, Any] = client.containers.get(container).attrs
                joined = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
                for endpoint in joined.values():
                    if endpoint.get("NetworkID") == network.network_id:
                        return str(endpoint.get("IPAddress") or "") or None
                return None

            ip = await self.docker.run(_ip)
            return None if ip is None else f"{ip}:{self.port}"
        ip = network.gateway
        if self.host not in _WILDCARDS and ip not in self._servers:
            try:
                sockets = netutil.bind_sockets(self.port, address=ip)
            except OSError as e:
                log.warning("kernel route: cannot listen on %s:%s: %s", ip, self.port, e)
                return None
            server = httpserver.HTTPServer(self.make_app())
            server.add_sockets(sockets)
            self._servers[ip] = server
            log.info("kernel route: listening on %s:%s for subnet %s", ip, self.port, subnet_id)
        return f"{ip}:{self.port}"

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
