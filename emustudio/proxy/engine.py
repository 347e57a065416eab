"""The kernel route: ``/engine/<e-id>/...``, from a Workspace's server to its attached cluster.

A Workspace's JupyterLab runs its kernels on a cluster through jupyter_server's gateway client,
whose URL is this route (``http://<gateway's address on the subnet>:<port>/engine/<e-id>/``).
The `EngineGate` authenticates the Workspace by its engine secret and answers the attached
cluster's Enterprise Gateway, with that gateway's own token put in by the proxy: the Workspace
never learns it. What passes, once the gate agreed:

* ``GET``/``POST /api/kernels`` are answered by the gate (small JSON; the list is filtered to
  this Workspace's kernels and a start is rewritten to run as its kernel user);
* ``/api/kernelspecs...``, ``/kernelspecs/...`` (logos) and ``/api/kernels/<own id>...``,
  including the kernel's ``channels`` WebSocket, go through the Workspace proxy's streaming
  handler and byte tunnel unchanged (`http`, `websocket`).

Requests come from a server, not a browser: no session cookie, no page, errors are JSON.
"""

from __future__ import annotations

import json
from typing import Any

from tornado import web
from tornado.routing import PathMatches, Rule

from emustudio import ids
from emustudio.proxy.base import Form, ProxyContext
from emustudio.proxy.contract import (
    Activity,
    EngineGate,
    ProxyOptions,
    Upstream,
    no_activity,
)
from emustudio.proxy.http import ProxyHandler
from emustudio.proxy.routes import BodyPathMatches
from emustudio.proxy.upstream import Pool

_PREFIX = len("/engine/") + len("e-") + 25
_ROUTE = rf"/engine/{ids.EDITOR_ID}(?:/.*)?"
_KERNELS = rf"/engine/{ids.EDITOR_ID}/api/kernels/?(?:\?.*)?"
_NO_COOKIE = "emustudio-engine-no-cookie"  # the route takes no gateway session cookie


class _Gate:
    """The `EngineGate`, in the shape the Workspace proxy's handler asks its gate."""

    def __init__(self, gate: EngineGate) -> None:
        self.gate = gate

    async def open(
        self, handler: web.RequestHandler, studio_id: str | None, editor_id: str
    ) -> Upstream:
        assert isinstance(handler, EngineHandler)
        authorization = handler.request.headers.get("Authorization", "")
        return self.gate.open_engine(editor_id, authorization, handler.rest)


class EngineHandler(ProxyHandler):
    def route(self) -> bool:
        uri = self.request.uri or "/"
        self.editor_id = uri[_PREFIX - 27 : _PREFIX]
        self.studio_id = None
        self.rest = uri[_PREFIX:] or "/"
        return True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.clear_header("Content-Length")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": self._reason, "reason": self._reason}))


@web.stream_request_body
class StreamingEngineHandler(EngineHandler):
    """For requests with a body, streamed upstream as it arrives."""


class KernelsHandler(web.RequestHandler):
    """``GET``/``POST /engine/<e-id>/api/kernels``, answered by the gate."""

    quiet_access_log = True  # the Workspace's server polls it
    gate: EngineGate

    def initialize(self, gate: EngineGate, touch: Activity) -> None:
        self.gate = gate
        self.touch = touch

    def check_xsrf_cookie(self) -> None:
        return None  # a server's call with the engine secret, not a browser form

    async def get(self) -> None:
        await self._answer()

    async def post(self) -> None:
        await self._answer()

    async def _answer(self) -> None:
        uri = self.request.uri or "/"
        editor_id = uri[_PREFIX - 27 : _PREFIX]
        authorization = self.request.headers.get("Authorization", "")
        self.touch(editor_id)
        code, body = await self.gate.kernels(
            editor_id, authorization, self.request.method or "GET", self.request.body
        )
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": self._reason, "reason": self._reason}))


class EngineProxy:
    """The kernel route's rules and the upstream connections they share; `close` on shutdown."""

    def __init__(
        self,
        gate: EngineGate,
        *,
        options: ProxyOptions | None = None,
        activity: Activity = no_activity,
    ) -> None:
        options = options or ProxyOptions()
        self.gate = gate
        self.activity = activity
        self.pool = Pool(
            connect_timeout=options.connect_timeout,
            max_idle=options.max_idle_connections,
            idle_seconds=options.idle_seconds,
        )
        self.context = ProxyContext(_Gate(gate), self.pool, options, _NO_COOKIE, activity)

    def rules(self) -> list[Rule]:
        kwargs = {"context": self.context, "form": Form.BARE}
        return [
            Rule(
                PathMatches(_KERNELS), KernelsHandler, {"gate": self.gate, "touch": self.activity}
            ),
            Rule(BodyPathMatches(_ROUTE), StreamingEngineHandler, kwargs),
            Rule(PathMatches(_ROUTE), EngineHandler, kwargs),
        ]

    def close(self) -> None:
        self.pool.close()
        for tunnel in list(self.context.tunnels):
            tunnel.close()
