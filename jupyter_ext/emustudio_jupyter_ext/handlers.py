"""HTTP handlers the extension adds to the Jupyter server."""

from __future__ import annotations

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler

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
