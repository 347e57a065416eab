"""Hook points: where the Workspace tells the gateway things, and trusts what it says.

Each hook is wired (or ready to be wired) into the server by :func:`install` and does nothing
observable yet but log; the issue that gives it a job replaces the body, not the wiring.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("emustudio_jupyter_ext")

CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"
# Contents actions that change what the S3 backup must hold.
BACKUP_ACTIONS = frozenset({"save", "upload", "create", "rename", "copy", "delete"})


def install(serverapp: Any) -> None:
    """Wire the hooks into ``serverapp``; called when the extension loads."""
    event_logger = getattr(serverapp, "event_logger", None)
    if event_logger is not None:
        event_logger.add_listener(schema_id=CONTENTS_SCHEMA, listener=on_contents_event)


async def on_contents_event(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
    """Hook (issue 5): report a file saved, created, renamed, copied or deleted.

    Called by jupyter_server's event bus after each successful contents action (``data`` has
    ``action``, ``path`` and, for rename and copy, ``source_path``; paths are relative to the
    server's root_dir).  The gateway holds the S3 credentials, so this only has to tell it
    *that* something changed: a small POST to the gateway (URL and credential passed in the
    environment at container start), after which the gateway reads the file over the contents
    API and writes ``<s3 location>/<workspace id>/<path>``, or deletes it for ``delete``.
    Must never raise or block: a failed report is retried by the gateway's periodic sync.
    """
    if data.get("action") in BACKUP_ACTIONS:
        log.debug("contents %s %s", data.get("action"), data.get("path"))


def gateway_identity(headers: Any) -> dict[str, str] | None:
    """Hook: the signed-in user the gateway vouches for, from a proxied request's headers.

    Every request reaches the server through the gateway, authenticated with the token only
    the gateway knows; the token proves the gateway, not the user.  When Workspaces need the
    user (collaboration, "who saved this", the user shown in JupyterLab), the gateway will add
    the user's identity in a header it signs, and an ``IdentityProvider`` subclass configured
    in the image will call this to turn it into ``{"username": ..., "name": ...}``.  Until
    then it returns None and the server's single token user stands for everyone.
    """
    return None


def attached_cluster() -> dict[str, str] | None:
    """Hook: the EMR cluster this Workspace is attached to, for the side panel and the gateway.

    Attaching points the server's kernels at the cluster's kernel gateway
    (``GatewayClient.url``, port 18888); the gateway restarts or reconfigures the server to do
    so.  This reports what the server actually uses: the cluster id the gateway set in
    ``EMUSTUDIO_CLUSTER_ID`` and the gateway URL, or None when detached (local kernels).
    """
    cluster = os.environ.get("EMUSTUDIO_CLUSTER_ID")
    url = os.environ.get("JUPYTER_GATEWAY_URL")
    if not cluster or not url:
        return None
    return {"cluster_id": cluster, "gateway_url": url}
