"""The handlers' base: the route forms, the ids cut from the URL, and the error pages."""

from __future__ import annotations

import enum
import html
import json
import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tornado import web

from emustudio import ids
from emustudio.proxy.contract import Activity, ProxyOptions, WorkspaceGate, no_activity
from emustudio.proxy.upstream import Pool
from emustudio.proxy.websocket import Tunnel

log = logging.getLogger(__name__)

_EDITOR_ID = len("e-") + 25
_WORKSPACE_PREFIX = len("/workspaces/") + _EDITOR_ID
_STUDIO_PREFIX = len("/studios/es-") + 25


class Form(enum.Enum):
    """How a request names its Studio."""

    HOST = "host"
    """``<es-id>.<studio domain>`` host, path ``/workspaces/<e-id>/...``."""
    PATH = "path"
    """Any host, path ``/studios/<es-id>/workspaces/<e-id>/...``."""
    BARE = "bare"
    """Any other host, path ``/workspaces/<e-id>/...``: no Studio named."""

    @property
    def prefix_length(self) -> int:
        """Length of the browser prefix up to (not including) the ``/`` after the e-id."""
        return _STUDIO_PREFIX + _WORKSPACE_PREFIX if self is Form.PATH else _WORKSPACE_PREFIX


@dataclass
class ProxyContext:
    gate: WorkspaceGate
    pool: Pool
    options: ProxyOptions
    session_cookie: str
    touch: Activity = no_activity
    tunnels: set[Tunnel] = field(default_factory=set)
    """The open WebSocket tunnels: Tornado forgets a connection once it is detached."""
    application: web.Application | None = None
    """The application the handlers serve, as the first handler found it: the fast path
    (`fast`) logs through it and hands it the requests it gives up. A request is on the fast
    path only once the gate has remembered a decision, which a handler asked it for."""


def cut(uri: str, form: Form, host_name: str) -> tuple[str, str | None, str]:
    """The Workspace id, the Studio id (None in the bare form) and the path below the
    Workspace's prefix, of a URI that matched ``form``'s rule."""
    end = form.prefix_length
    if form is Form.PATH:
        studio_id: str | None = uri[len("/studios/") : _STUDIO_PREFIX]
    elif form is Form.HOST:
        studio_id = ids.studio_of_host(host_name)
    else:
        studio_id = None
    return uri[end - _EDITOR_ID : end], studio_id, uri[end:]


class ProxyHandlerBase(web.RequestHandler):
    quiet_access_log = True
    """A proxied request that went well is logged at DEBUG only (see the gateway's log_request)."""
    refused_by_gate = False
    """The gate refused this request (it logs its decisions itself): logged at DEBUG only."""
    context: ProxyContext
    form: Form
    editor_id: str
    studio_id: str | None
    rest: str

    def initialize(self, context: ProxyContext, form: Form) -> None:
        self.context = context
        self.form = form
        context.application = self.application

    def check_xsrf_cookie(self) -> None:
        # The upstream guards its own API; the gateway's XSRF cookie means nothing there.
        return None

    def route(self) -> bool:
        """Work out the ids and the path below the Workspace prefix from the URL.

        Returns False when it redirected ``/workspaces/<e-id>`` to ``/workspaces/<e-id>/``.
        """
        uri = self.request.uri or "/"
        self.editor_id, self.studio_id, self.rest = cut(uri, self.form, self.request.host_name)
        if not self.rest.startswith("/"):
            self.redirect(f"{uri[: self.form.prefix_length]}/{self.rest}")
            return False
        return True

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.refused_by_gate and isinstance(value, web.HTTPError):
            log.debug("workspace %s: refused %d", getattr(self, "editor_id", ""), value.status_code)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Only the status and reason leave: a log message may name upstream addresses.
        reason = self._reason
        detail = _DETAILS.get(status_code, reason)
        self.clear_header("Content-Length")
        if "/api/" in self.request.path or "json" in self.request.headers.get("Accept", ""):
            # JupyterLab's front end shows {"message": ...} from a failed API call.
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": detail, "reason": reason}))
            return
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        studio_id = getattr(self, "studio_id", None)
        # The way forward is the Studio's own pages, in the form this request came in.
        prefix = "" if self.form is Form.HOST else f"/studios/{studio_id}" if studio_id else ""
        try:
            self.render(
                "workspace_error.html",
                title=_TITLES.get(status_code, f"{status_code} {reason}"),
                detail=detail,
                status_code=status_code,
                editor_id=getattr(self, "editor_id", ""),
                prefix=prefix,
                studio=None,
                user=None,
                error=None,
            )
        except Exception:  # no templates (a bare proxy app): the plain page
            title = f"{status_code} {html.escape(reason)}"
            self.finish(
                f"<!DOCTYPE html><html><head><title>{title}</title></head>"
                f"<body><h1>{title}</h1><p>{html.escape(detail)}</p></body></html>"
            )


_DETAILS = {
    403: "You are not allowed to open this Workspace from here.",
    404: "There is no such Workspace in this Studio.",
    409: "This Workspace is stopped. Start it again from the Studio; its files come back from S3.",
    502: "The Workspace's JupyterLab did not answer. It may be starting or stopping.",
}
_TITLES = {
    403: "Not allowed to open this Workspace",
    404: "Workspace not found",
    409: "Workspace not running",
    502: "Workspace not answering",
}
