"""What the proxy needs from the rest of the gateway, and the knobs it takes.

The proxy knows nothing about sessions, policies or containers: a `WorkspaceGate` (implemented
by the auth room) decides whether a browser request may reach a Workspace and answers with the
`Upstream` to send it to; an `Activity` callback (the Workspace manager's ``touch``) hears that a
Workspace is in use, which its idle culler reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tornado import web
from tornado.httputil import HTTPServerRequest


@dataclass(frozen=True)
class Upstream:
    """One Workspace's JupyterLab: where it listens and the token that lets the gateway in.

    ``base_url`` is JupyterLab's ``ServerApp.base_url``. The proxy maps the browser path
    ``<prefix>/workspaces/<e-id>/<rest>`` to ``<base_url><rest>``. JupyterLab writes absolute
    URLs with its base_url into its pages, so for the pages to work in a browser it must be
    ``/workspaces/<e-id>/`` (see the package docstring).
    """

    host: str
    port: int
    token: str
    base_url: str

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class WorkspaceGate(Protocol):
    async def open(
        self, handler: web.RequestHandler, studio_id: str | None, editor_id: str
    ) -> Upstream:
        """Authenticate and authorize the browser request for this Workspace.

        ``studio_id`` is None when the request came on the bare host without a Studio in its
        path (the absolute URLs JupyterLab emits in path form); the gate then finds the Studio
        from the Workspace. Raise ``tornado.web.HTTPError(403)`` (or redirect and raise
        ``tornado.web.Finish``) to refuse: the proxy then never contacts the upstream.
        """
        ...


@runtime_checkable
class RememberingGate(WorkspaceGate, Protocol):
    """A gate that remembers its decisions, and says so without any I/O: the proxy then takes
    the requests it has admitted before on its fast path (`fast`), without a handler."""

    def remembered(
        self, request: HTTPServerRequest, studio_id: str | None, editor_id: str
    ) -> Upstream | None:
        """The `Upstream` that `open` would answer for this request without doing anything
        else (no redirect, no cookie), if its admission is decided and still holds; None
        when `open` must be asked: not decided, refused, stale, or more to do than answer.
        Only a bodiless ``GET`` or ``HEAD`` without ``Upgrade`` is ever asked."""
        ...


Activity = Callable[[str], None]
"""Told a Workspace's id per proxied HTTP request, and for a WebSocket at most once per
`ProxyOptions.touch_interval` while bytes flow either way. Must be O(1)."""


def no_activity(editor_id: str) -> None:
    """The `Activity` of a proxy nobody culls."""


@dataclass(frozen=True)
class ProxyOptions:
    """Tuning knobs; the defaults suit a gateway on the same host as its Workspaces."""

    connect_timeout: float = 10.0
    """Seconds to open a TCP connection upstream. Nothing else has a timeout: downloads,
    uploads, long polls and WebSockets run as long as both ends do."""
    max_body_bytes: int = 1 << 40
    """Largest request body streamed upstream; it is never held in memory."""
    touch_interval: float = 1.0
    """Seconds between two `Activity` calls for one WebSocket while traffic flows."""
    max_idle_connections: int = 16
    """Idle keep-alive connections kept per upstream."""
    idle_seconds: float = 30.0
    """An idle upstream connection older than this is closed rather than reused."""
    fast_path: bool = True
    """Take a `RememberingGate`'s remembered bodiless requests on the fast path (`fast`)."""
    html_scrub_bytes: int = 1 << 20
    """HTML responses up to this size are scrubbed of the upstream token (JupyterLab writes it
    into its page config); larger HTML is streamed untouched."""


class EngineGate(Protocol):
    """Decides what a Workspace's server may reach on the kernel route (``proxy/engine.py``).

    ``authorization`` is the request's ``Authorization`` header (the Workspace's engine secret
    as ``token <secret>``); ``path`` is the path below ``/engine/<e-id>``, query included.
    """

    def open_engine(self, editor_id: str, authorization: str, path: str) -> Upstream:
        """The upstream (the attached cluster's kernel gateway) for this request, or raise
        ``tornado.web.HTTPError``: 403 for a wrong secret, 409 when nothing is attached, 404
        for a path or kernel that is not this Workspace's."""
        ...

    async def kernels(
        self, editor_id: str, authorization: str, method: str, body: bytes
    ) -> tuple[int, bytes]:
        """``GET`` or ``POST /api/kernels`` answered by the gate itself (JSON status and
        body): the list holds only this Workspace's kernels, a start runs as its kernel user."""
        ...
