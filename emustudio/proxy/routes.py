"""The URL rules that send browser traffic into Workspaces.

In order, first match wins (put them ahead of the gateway's generic rules):

1. host form: host ``<es-id>.<studio domain>`` (any case; the id is upper-cased), path
   ``/workspaces/<e-id>/...``;
2. path form: any host, path ``/studios/<es-id>/workspaces/<e-id>/...``;
3. bare form: any host, path ``/workspaces/<e-id>/...``; the gate gets ``studio_id=None``.

Within each form, when the gate remembers its decisions (`RememberingGate`), a bodiless
``GET``/``HEAD`` it has admitted before takes the fast path (`fast.FastRoute`, no handler);
any other request with a body goes to `StreamingProxyHandler`, any other to `ProxyHandler`:
the same code, but Tornado's streaming mode costs two more turns of the event loop per
request, which most requests (GETs, WebSocket handshakes) need not pay.
"""

from __future__ import annotations

from typing import Any

from tornado import httputil
from tornado.routing import HostMatches, PathMatches, Rule

from emustudio import ids
from emustudio.proxy.base import Form, ProxyContext
from emustudio.proxy.contract import (
    Activity,
    ProxyOptions,
    RememberingGate,
    WorkspaceGate,
    no_activity,
)
from emustudio.proxy.fast import FastRoute
from emustudio.proxy.http import ProxyHandler, StreamingProxyHandler
from emustudio.proxy.upstream import Pool

# No groups: the handler cuts the ids from fixed offsets of the raw URI (`base.Form`), and
# Tornado then has nothing to unescape per request.
_WORKSPACE = rf"/workspaces/{ids.EDITOR_ID}(?:/.*)?"
_PATHS = {
    Form.HOST: _WORKSPACE,
    Form.PATH: rf"/studios/{ids.STUDIO_ID}{_WORKSPACE}",
    Form.BARE: _WORKSPACE,
}


class BodyPathMatches(PathMatches):
    """`PathMatches`, for requests that have a body only."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        headers = request.headers
        if headers.get("Content-Length", "0") == "0" and "Transfer-Encoding" not in headers:
            return None
        return super().match(request)


class WorkspaceProxy:
    """The proxy's rules, and the upstream connections and tunnels they share; `close` it on
    shutdown, after the HTTP server has stopped accepting."""

    def __init__(
        self,
        gate: WorkspaceGate,
        *,
        studio_domain: str,
        session_cookie: str = "emustudio-session",
        options: ProxyOptions | None = None,
        activity: Activity = no_activity,
    ) -> None:
        options = options or ProxyOptions()
        self.studio_domain = studio_domain
        self.pool = Pool(
            connect_timeout=options.connect_timeout,
            max_idle=options.max_idle_connections,
            idle_seconds=options.idle_seconds,
        )
        self.context = ProxyContext(gate, self.pool, options, session_cookie, activity)
        fast = options.fast_path and isinstance(gate, RememberingGate)
        self.remembering = gate if fast and isinstance(gate, RememberingGate) else None

    def rules(self) -> list[Rule]:
        return [
            Rule(HostMatches(ids.studio_host_pattern(self.studio_domain)), self._rules(Form.HOST)),
            *self._rules(Form.PATH),
            *self._rules(Form.BARE),
        ]

    def _rules(self, form: Form) -> list[Rule]:
        kwargs = {"context": self.context, "form": form}
        rules = [
            Rule(BodyPathMatches(_PATHS[form]), StreamingProxyHandler, kwargs),
            Rule(PathMatches(_PATHS[form]), ProxyHandler, kwargs),
        ]
        if self.remembering is not None:
            fast = FastRoute(self.context, form, self.remembering, ProxyHandler)
            rules.insert(0, Rule(PathMatches(_PATHS[form]), fast))
        return rules

    def close(self) -> None:
        """Close the idle upstream connections and the open WebSocket tunnels."""
        self.pool.close()
        for tunnel in list(self.context.tunnels):
            tunnel.close()


def proxy_handlers(
    gate: WorkspaceGate,
    *,
    studio_domain: str,
    session_cookie: str = "emustudio-session",
    options: ProxyOptions | None = None,
    activity: Activity = no_activity,
) -> list[Rule]:
    """The rules for the Tornado application, ahead of the generic ones.

    A shortcut for ``WorkspaceProxy(...).rules()``; keep the `WorkspaceProxy` instead to close
    its idle upstream connections on shutdown.
    """
    return WorkspaceProxy(
        gate,
        studio_domain=studio_domain,
        session_cookie=session_cookie,
        options=options,
        activity=activity,
    ).rules()
