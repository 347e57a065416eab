"""HTTP handlers the extension adds to the Jupyter server."""

from __future__ import annotations

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web

from emustudio_jupyter_ext.engine import EngineSwitch
from emustudio_jupyter_ext.nodelay import nodelay_active


class ReadyHandler(JupyterHandler):
    """GET <base_url>emustudio/ready: 200 ``{"ready": true, "tcp_nodelay": ...}``.

    Served only once the server listens, so a 200 means "up".  Unauthenticated (it tells nothing
    but that) and not counted as activity, so probing it never keeps a Workspace from idling.
    ``tcp_nodelay`` reports the flag on this very connection, which shows the transform works.
    """

    _track_activity = False

    @allow_unauthenticated
    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish({"ready": True, "tcp_nodelay": nodelay_active(self.request)})


class EngineHandler(APIHandler):
    """GET/POST <base_url>emustudio/engine: where the kernels run (see :mod:`.engine`).

    Only the gateway calls it, with the server's token; a browser's call through the proxy
    is refused by the gateway's Origin rules before it gets here, and carries no token.
    """

    @property
    def switch(self) -> EngineSwitch:
        return self.settings["emustudio_engine"]  # type: ignore[no-any-return]

    @web.authenticated
    def get(self) -> None:
        self.finish({"attached": self.switch.attached_cluster()})

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        cluster_id = body.get("cluster_id")
        if cluster_id is None:
            await self.switch.detach()
        elif not self.switch.available:
            raise web.HTTPError(409, "This Workspace was started without a kernel route.")
        elif not isinstance(token := body.get("engine_token"), str) or not token:
            raise web.HTTPError(400, "An attach names the kernel route's engine_token.")
        else:
            user = str(body.get("kernel_username") or "emr-notebook")
            await self.switch.attach(str(cluster_id), user, token)
        self.finish({"attached": self.switch.attached_cluster()})
