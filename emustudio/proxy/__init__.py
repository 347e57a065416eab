"""The reverse proxy from a Studio URL into a Workspace's JupyterLab, HTTP and WebSocket.

URLs and base_url
-----------------
JupyterLab writes absolute URLs into its pages (``baseUrl``, ``fullStaticUrl``, every script and
stylesheet), so the prefix the browser sees must equal JupyterLab's ``base_url``. Every
Workspace's JupyterLab therefore runs with ``base_url = /workspaces/<e-id>/`` and the browser
reaches it three ways (`routes`):

- **host form** ``http://<es-id>.<studio domain>:<port>/workspaces/<e-id>/lab``: the Studio
  comes from the host. The path goes upstream unchanged; the page's absolute URLs stay on the
  Studio host. This is the Studio URL AWS gives, and the one to use: each Studio is its own
  browser origin.
- **path form** ``http://<gateway>/studios/<es-id>/workspaces/<e-id>/lab``, for clients that
  cannot resolve the Studio host: ``/studios/<es-id>`` is cut and the rest goes upstream. The
  page's absolute URLs then point at ``/workspaces/<e-id>/...`` on the same host, so:
- **bare form** ``http://<gateway>/workspaces/<e-id>/...`` is served too, on any host that is
  not a Studio host, and the gate gets ``studio_id=None`` and finds the Studio from the
  Workspace. Everything after the first page of a path-form session arrives this way.

In the path and bare forms all Studios share one origin (JupyterHub's semi-trusted stance);
only the host form isolates Studios from one another.

Trust
-----
The gateway alone knows each JupyterLab's token: it adds ``Authorization: token`` upstream,
takes the token out of HTML pages (JupyterLab puts it in its page config), and refuses
cross-origin state-changing requests and WebSocket handshakes before the gate is even asked,
because a token-authenticated request skips jupyter_server's own XSRF and Origin checks.
See `headers` for the header rules.

Cost
----
Per request the proxy does little beyond what Tornado's own server does: the upstream leg is a
small HTTP/1.1 client on an `asyncio.Protocol` with keep-alive (`upstream`); a response head
that needs no reframing goes to the browser as the upstream wrote it (less the hop-by-hop
headers); requests without a body skip Tornado's streaming mode. A bodiless ``GET``/``HEAD``
whose admission the gate remembers (`RememberingGate`) skips the `RequestHandler` altogether
(`fast`): most of JupyterLab's traffic. A WebSocket, once upgraded, is
a byte tunnel between two `asyncio` transports (`websocket`): no frame is parsed, so a kernel
message costs a read and a write. Figures: ``docs/benchmarks.md``.

Use
---
``proxy_handlers(gate, studio_domain=..., session_cookie=..., activity=...)`` returns
`tornado.routing.Rule` objects to put ahead of the application's generic rules; ``gate`` is a
`WorkspaceGate`, ``activity`` hears of each Workspace in use (the Workspace manager's ``touch``). To
close idle upstream connections and open WebSocket tunnels on shutdown, build a `WorkspaceProxy`
instead, use its ``rules()``, and call its ``close()`` after the HTTP server has stopped. The
gateway's ``HTTPServer`` must not set ``decompress_request`` (bodies go upstream as they came).
"""

from emustudio.proxy.contract import (
    Activity,
    ProxyOptions,
    RememberingGate,
    Upstream,
    WorkspaceGate,
)
from emustudio.proxy.routes import WorkspaceProxy, proxy_handlers

__all__ = [
    "Activity",
    "ProxyOptions",
    "RememberingGate",
    "Upstream",
    "WorkspaceGate",
    "WorkspaceProxy",
    "proxy_handlers",
]
