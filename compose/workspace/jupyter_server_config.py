"""Jupyter server settings of every emustudio Workspace (installed as
/opt/venv/etc/jupyter/jupyter_server_config.py; command-line options still override it).

What differs per Workspace — the SHA-256 of the token only the gateway knows, the base_url and
the allowed origin — comes one of two ways:

* a container made for the Workspace: EMUSTUDIO_JUPYTER_TOKEN_SHA256 (required),
  EMUSTUDIO_BASE_URL and EMUSTUDIO_ALLOW_ORIGIN in the environment;
* a warm server of the gateway's pool (``emustudio-warm``, emustudio_jupyter_ext/warm.py) was
  claimed: they arrived over its claim socket and are in this process's memory
  (``warm.claimed``).

The server is made non-dumpable first, so kernels and terminals (same uid) cannot read its
memory, where each forwarded request's token passes (emustudio_jupyter_ext.identity;
docs/decisions.md).
"""

import os

from emustudio_jupyter_ext import warm
from emustudio_jupyter_ext.identity import protect_process

protect_process()

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by traitlets

claim = warm.claimed
if claim is not None:
    token_sha256, base_url, allow_origin = claim.token_sha256, claim.base_url, claim.allow_origin
else:
    token_sha256 = os.environ.pop("EMUSTUDIO_JUPYTER_TOKEN_SHA256", "")
    base_url = os.environ.get("EMUSTUDIO_BASE_URL", "/")
    allow_origin = os.environ.get("EMUSTUDIO_ALLOW_ORIGIN", "")
if not token_sha256:
    raise SystemExit(
        "EMUSTUDIO_JUPYTER_TOKEN_SHA256 is not set: a Workspace never runs without a token"
    )

base_url = "/" + base_url.strip("/") + "/"

c.ServerApp.identity_provider_class = "emustudio_jupyter_ext.identity.HashedTokenIdentityProvider"
c.HashedTokenIdentityProvider.token_sha256 = token_sha256
c.HashedTokenIdentityProvider.token = ""  # nothing to write into jpserver-*.json or the page
# The login cookie's key in memory only, not in a runtime file kernels could read and forge with.
c.ServerApp.cookie_secret = os.urandom(32)
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
