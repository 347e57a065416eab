"""Hook points: where the Workspace tells the gateway things, and trusts what it says.

Each hook is wired (or ready to be wired) into the server by :func:`install`; the ones without
a job yet only document what they will do (the issue that gives one a job replaces the body,
not the wiring).  :func:`on_contents_event` has one: it feeds the S3 backup's change feed.
"""

from __future__ import annotations

import logging
from typing import Any

from emustudio_jupyter_ext.engine import EngineSwitch
from emustudio_jupyter_ext.events import FEED

log = logging.getLogger("emustudio_jupyter_ext")

CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"


_SWITCH: EngineSwitch | None = None


def install(serverapp: Any, switch: EngineSwitch | None = None) -> None:
    """Wire the hooks into ``serverapp``; called when the extension loads."""
    global _SWITCH
    _SWITCH = switch
    event_logger = getattr(serverapp, "event_logger", None)
    if event_logger is not None:
        event_logger.add_listener(schema_id=CONTENTS_SCHEMA, listener=on_contents_event)


async def on_contents_event(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
    """Report a file saved, created, uploaded, renamed, copied or deleted.

    Called by jupyter_server's event bus after each successful contents action (``data`` has
    ``action``, ``path`` and, for rename and copy, ``source_path``; paths are relative to the
    server's root_dir).  The gateway holds the S3 credentials, so this only tells it *that*
    something changed: the change goes into the feed the gateway subscribes to
    (:mod:`.events`, ``<base_url>emustudio/events``), after which the gateway reads the file
    over the contents API and writes ``<s3 location>/<workspace id>/<path>``, or deletes it.
    Never raises or blocks: a change the gateway misses is found by its periodic sweep.
    """
    try:
        change = FEED.record(data)
    except Exception:  # pragma: no cover - a listener must never break the server
        log.exception("recording contents event %r", data)
        return
    if change is not None:
        log.debug("contents %s %s (#%s)", change["action"], change["path"], change["seq"])


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
    """The EMR cluster this Workspace's kernels run on, or None (local kernels).

    Attaching points the server's kernels at the gateway's kernel route without a restart
    (:mod:`.engine`); this reports what the engine switch has in place.
    """
    return None if _SWITCH is None else _SWITCH.attached_cluster()
