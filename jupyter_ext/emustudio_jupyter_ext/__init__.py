"""emustudio's Jupyter server extension, loaded by the server of every Workspace.

It does these things now:

* **TCP_NODELAY on every connection**, WebSockets included (:mod:`.nodelay`).  Stock
  jupyter_server leaves Nagle's algorithm on for WebSockets, so a small kernel message written
  right after another waits for the client's delayed ACK: about 40 ms per message
  (reference/anchors-measured.md §3).
* **GET <base_url>emustudio/ready** (:mod:`.handlers`, also at /emustudio/ready): 200 once
  the server is up; the gateway asks it while a Workspace starts.
* **emustudio-warm** (:mod:`.warm`): a pooled server, imported and waiting for its claim.
* **WebSocket <base_url>emustudio/events** (:mod:`.events`): the contents changes (save,
  rename, delete...) the gateway's S3 backup follows, numbered and replayable after a reconnect.
* **<base_url>emustudio/engine** (:mod:`.engine`): the engine switch; kernels run here, or on
  the attached EMR cluster through the gateway's kernel route, without a restart.
* **PUT <base_url>emustudio/restore** (:mod:`.restore`): the backed-up files the gateway read
  from S3, put back from tar archives before the Workspace is Ready.

and leaves documented hook points (:mod:`.hooks`) for what the gateway will need from inside a
Workspace: the user identity the gateway passes, and the attached cluster.

Enabled by ``c.ServerApp.jpserver_extensions = {"emustudio_jupyter_ext": True}``.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from emustudio_jupyter_ext import hooks
from emustudio_jupyter_ext.engine import EngineSwitch
from emustudio_jupyter_ext.events import EventsSocket
from emustudio_jupyter_ext.handlers import EngineHandler, ReadyHandler
from emustudio_jupyter_ext.nodelay import NoDelay, make_sticky
from emustudio_jupyter_ext.restore import RestoreHandler

__version__ = "0.1.0"
__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "emustudio_jupyter_ext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    make_sticky()
    web_app.add_transform(NoDelay)
    base_url = web_app.settings.get("base_url", "/")
    web_app.settings["emustudio_engine"] = switch = EngineSwitch(serverapp)
    handlers: list[tuple[str, Any]] = [
        (url_path_join(base_url, "emustudio/ready"), ReadyHandler),
        (url_path_join(base_url, "emustudio/events"), EventsSocket),
        (url_path_join(base_url, "emustudio/engine"), EngineHandler),
        (url_path_join(base_url, "emustudio/restore"), RestoreHandler),
    ]
    if base_url != "/":
        # A claimed warm server's base_url is known to the gateway, not to its container's
        # configuration: the gateway asks /emustudio/ready (it tells only "up").
        handlers.append(("/emustudio/ready", ReadyHandler))
    web_app.add_handlers(".*$", handlers)
    hooks.install(serverapp, switch)
    serverapp.log.info("emustudio_jupyter_ext %s loaded (TCP_NODELAY on)", __version__)
