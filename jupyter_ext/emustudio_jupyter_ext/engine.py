"""Where this Workspace's kernels run: here, or on its attached EMR cluster (the engine switch).

The gateway hands the server ``EMUSTUDIO_ENGINE_URL`` at start, in the environment (taken out
of it when the extension loads): the gateway's kernel route for this Workspace. The secret for
that route comes only with each attach, in the switch call, and lives in this (non-dumpable)
server's memory: a kernel cannot read it from any environment or file. The server starts with
its own, local kernels.

``POST <base_url>emustudio/engine`` (token-authenticated: only the gateway has the server's
token) switches without a restart:

* ``{"cluster_id": "j-...", "kernel_username": "...", "engine_token": "..."}`` (AttachEditor):
  the local kernels end,
  and jupyter_server's gateway client managers (kernels, kernel specs, sessions, kernel
  WebSockets) pointed at the route take the local ones' place in the web application's
  settings, where every handler looks them up per request. Kernels then start on the cluster
  as ``KERNEL_USERNAME``; the route adds the cluster's own token, which the Workspace never
  learns.
* ``{"cluster_id": null}`` (DetachEditor, or the cluster ended): the remote kernels are shut
  down through the route, and the local managers come back.

``GET`` reports the attached cluster (`attached_cluster`). JupyterLab's page sees the new kernel
specs at its next refresh of them (or a reload); its open sessions end with their kernels.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from jupyter_server.gateway.connections import GatewayWebSocketConnection
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import (
    GatewayKernelSpecManager,
    GatewayMappingKernelManager,
    GatewaySessionManager,
)
from jupyter_server.utils import ensure_async

log = logging.getLogger("emustudio_jupyter_ext")

ENV_URL = "EMUSTUDIO_ENGINE_URL"
REQUEST_TIMEOUT = 300.0
_MANAGERS = (
    "kernel_manager",
    "kernel_spec_manager",
    "session_manager",
    "kernel_websocket_connection_class",
)


class EngineSwitch:
    def __init__(self, serverapp: Any) -> None:
        self.serverapp = serverapp
        self.settings: dict[str, Any] = serverapp.web_app.settings
        self.url = os.environ.pop(ENV_URL, "").rstrip("/")
        self.token = ""
        self.local = {name: self.settings.get(name) for name in _MANAGERS}
        self.cluster_id: str | None = None
        self._lock = asyncio.Lock()

    @property
    def available(self) -> bool:
        return bool(self.url)

    def attached_cluster(self) -> dict[str, str] | None:
        if self.cluster_id is None:
            return None
        return {"cluster_id": self.cluster_id, "gateway_url": self.url}

    async def attach(self, cluster_id: str, kernel_username: str, engine_token: str) -> None:
        async with self._lock:
            if self.cluster_id == cluster_id and self.token == engine_token:
                return
            self.token = engine_token
            await self._end_kernels()
            os.environ["KERNEL_USERNAME"] = kernel_username
            client = GatewayClient.instance()
            client.url = self.url
            client.ws_url = "ws" + self.url[len("http") :]
            client.auth_scheme = "token"
            client.auth_token = self.token
            # The kernel's WebSocket opens only once the kernel has answered kernel_info
            # (Enterprise Gateway waits for it), and a PySpark kernel answers after Python and
            # pyspark have loaded: tens of seconds on a busy machine, past the client's
            # default 42 s, after which it drops the socket and Enterprise Gateway's reconnect
            # path fails. Give both the same margin as a kernel launch.
            client.request_timeout = max(client.request_timeout, REQUEST_TIMEOUT)
            client.connect_timeout = max(client.connect_timeout, REQUEST_TIMEOUT)
            app = self.serverapp
            specs = GatewayKernelSpecManager(parent=app)
            kernels = GatewayMappingKernelManager(
                parent=app, log=app.log, connection_dir=app.runtime_dir, kernel_spec_manager=specs
            )
            sessions = GatewaySessionManager(
                parent=app, log=app.log, kernel_manager=kernels,
                contents_manager=app.contents_manager,
            )  # fmt: skip
            self.settings.update(
                kernel_manager=kernels,
                kernel_spec_manager=specs,
                session_manager=sessions,
                kernel_websocket_connection_class=GatewayWebSocketConnection,
            )
            self.cluster_id = cluster_id
            log.info("kernels now run on cluster %s as %s", cluster_id, kernel_username)

    async def detach(self) -> None:
        async with self._lock:
            if self.cluster_id is None:
                return
            await self._end_kernels()
            self.settings.update(self.local)
            os.environ.pop("KERNEL_USERNAME", None)
            self.token = ""
            log.info("kernels now run here again (detached from %s)", self.cluster_id)
            self.cluster_id = None

    async def _end_kernels(self) -> None:
        """End the kernels of the current engine (their sessions end with them)."""
        manager = self.settings.get("kernel_manager")
        if manager is None:
            return
        try:
            await ensure_async(manager.shutdown_all(now=True))
        except Exception:  # a cluster gone already: the gateway ends what is left
            log.warning("ending the kernels before switching failed", exc_info=True)
