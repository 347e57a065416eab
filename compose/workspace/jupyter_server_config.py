"""Jupyter server settings of every emustudio Workspace (installed as
/opt/venv/etc/jupyter/jupyter_server_config.py; command-line options still override it).

What differs per Workspace comes one of two ways:

* a warm server of the gateway's pool (``emustudio-warm``, emustudio_jupyter_ext/warm.py) was
  claimed: the token, base_url and allowed origin arrived over its claim socket and are in that
  process's memory (``warm.claimed``), never in an environment;
* a container made for the Workspace: EMUSTUDIO_JUPYTER_TOKEN (required), EMUSTUDIO_BASE_URL and
  EMUSTUDIO_ALLOW_ORIGIN in the environment. The token is removed from the environment here, so
  kernels and terminals started by the server never see it.
"""

import os

from emustudio_jupyter_ext import warm

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by traitlets

claim = warm.claimed
if claim is not None:
    token, base_url, allow_origin = claim.token, claim.base_url, claim.allow_origin
else:
    token = os.environ.pop("EMUSTUDIO_JUPYTER_TOKEN", "")
    base_url = os.environ.get("EMUSTUDIO_BASE_URL", "/")
    allow_origin = os.environ.get("EMUSTUDIO_ALLOW_ORIGIN", "")
if not token:
    raise SystemExit("EMUSTUDIO_JUPYTER_TOKEN is not set: a Workspace never runs without a token")

base_url = "/" + base_url.strip("/") + "/"

c.IdentityProvider.token = token
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.port_retries = 0
c.ServerApp.base_url = base_url.replace("//", "/")
c.ServerApp.allow_origin = allow_origin
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "/home/emr-notebook"
c.ServerApp.jpserver_extensions = {"emustudio_jupyter_ext": True}
# A Workspace is offline from JupyterLab's point of view: no news, no update checks.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
