"""Jupyter server settings of every emustudio Workspace (installed as
/opt/venv/etc/jupyter/jupyter_server_config.py; command-line options still override it).

The gateway passes what differs per Workspace in the environment: EMUSTUDIO_JUPYTER_TOKEN
(required), EMUSTUDIO_BASE_URL and EMUSTUDIO_ALLOW_ORIGIN. The token is removed from the
environment here, so kernels and terminals started by the server never see it.
"""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by traitlets

token = os.environ.pop("EMUSTUDIO_JUPYTER_TOKEN", "")
if not token:
    raise SystemExit("EMUSTUDIO_JUPYTER_TOKEN is not set: a Workspace never runs without a token")

base_url = "/" + os.environ.get("EMUSTUDIO_BASE_URL", "/").strip("/") + "/"

c.IdentityProvider.token = token
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.port_retries = 0
c.ServerApp.base_url = base_url.replace("//", "/")
c.ServerApp.allow_origin = os.environ.get("EMUSTUDIO_ALLOW_ORIGIN", "")
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "/home/emr-notebook"
c.ServerApp.jpserver_extensions = {"emustudio_jupyter_ext": True}
# A Workspace is offline from JupyterLab's point of view: no news, no update checks.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
