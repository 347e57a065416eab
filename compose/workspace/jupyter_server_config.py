"""Jupyter server settings of every emustudio Workspace (installed as
/opt/venv/etc/jupyter/jupyter_server_config.py; command-line options still override it).

The gateway passes what differs per Workspace in the environment: EMUSTUDIO_JUPYTER_TOKEN_SHA256
(required: the SHA-256 of the token only the gateway knows), EMUSTUDIO_BASE_URL and
EMUSTUDIO_ALLOW_ORIGIN. The server is made non-dumpable first, so kernels and terminals (same
uid) cannot read its memory, where each forwarded request's token passes
(emustudio_jupyter_ext.identity; docs/decisions.md).
"""

import os

from emustudio_jupyter_ext.identity import protect_process

protect_process()

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by traitlets

token_sha256 = os.environ.pop("EMUSTUDIO_JUPYTER_TOKEN_SHA256", "")
if not token_sha256:
    raise SystemExit(
        "EMUSTUDIO_JUPYTER_TOKEN_SHA256 is not set: a Workspace never runs without a token"
    )

base_url = "/" + os.environ.get("EMUSTUDIO_BASE_URL", "/").strip("/") + "/"

c.ServerApp.identity_provider_class = "emustudio_jupyter_ext.identity.HashedTokenIdentityProvider"
c.HashedTokenIdentityProvider.token_sha256 = token_sha256
c.HashedTokenIdentityProvider.token = ""  # nothing to write into jpserver-*.json or the page
# The login cookie's key in memory only, not in a runtime file kernels could read and forge with.
c.ServerApp.cookie_secret = os.urandom(32)
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
