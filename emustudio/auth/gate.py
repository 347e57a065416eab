"""The gate in front of every Workspace: the proxy asks it before it connects upstream.

:class:`StudioGate` implements the proxy's ``WorkspaceGate``. A browser request for
``/workspaces/<e-id>/...`` passes only when, in this order:

1. it carries a session of *this* Studio (the host's or the path's; in the bare form, the
   Workspace's); without one a browser navigation (GET of HTML) is redirected to the Studio's
   sign-in page, anything else gets 403;
2. the Workspace exists in this Studio (else 404) and is running (else 409);
3. the signed-in user is allowed ``elasticmapreduce:OpenEditorInConsole`` on the Workspace's ARN
   (else 403), evaluated by the policy engine as that user, with the Workspace's tags.

Only then does it answer the `Upstream` (the container's address and JupyterLab token from the
Workspace's row); a refusal raises before the proxy opens any connection.

JupyterLab loads dozens of files per page and polls its API, so the gate decides once per
session cookie, Workspace and client address, and remembers the outcome, an admission or a refusal
(404, 409, 403), until something it was decided from changes:

* any write through the API (a policy, a user, a tag, a session mapping...: the count of
  `WRITES` moved since the decision);
* the Workspace's status (`forget_workspace`, called by the Workspace manager on every status
  write: a stop, a restart in another AZ, Ready after Starting, an outage);
* the session's end (signing out: `forget_session`) or expiry (checked on every request);
* ``cache_seconds`` (60 s) at most, for what no write announces: a policy condition on the
  time of day.

So a revocation takes effect at the next request, and a request answered from memory costs
a dictionary lookup (`remembered`, asked by the proxy's fast path before any handler exists,
reads the same memory with the same freshness): a client polling a starting Workspace gets
its 409 in microseconds, not a store round trip per request. Outcomes are keyed by the
session cookie as the browser sent it, whose signature was checked when the outcome was
decided (the cookie's own age limit is longer than the session's life, which is checked on
every request). A refusal is logged once, when it is decided; the proxy logs the requests it
refuses again at DEBUG only.

In the path form (``/studios/<es-id>/workspaces/<e-id>/...``) JupyterLab's own URLs leave the
Studio's prefix for ``/workspaces/<e-id>/...`` on the gateway host, which the Studio's cookie
(``Path=/studios/<es-id>/``) does not reach. So an admitted path-form page load is redirected
to that bare URL with the session cookie set at ``Path=/workspaces/<e-id>/`` (on the redirect:
the gate never adds headers to a proxied response); bare requests then find the Studio from the
Workspace, and need a session of that Studio like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlencode

from sqlmodel import Session
from tornado import web
from tornado.httputil import HTTPServerRequest

from emustudio import ids
from emustudio.auth.permissions import Permissions
from emustudio.auth.sessions import (
    SessionStore,
    StudioSession,
    session_id_of,
    set_session_cookie,
    signed_cookie_of,
    workspace_cookie_path,
)
from emustudio.iam import deny_message
from emustudio.proxy.contract import Upstream
from emustudio.services.base import WRITES
from emustudio.store import Store
from emustudio.store.tables import EDITOR_RUNNING, Editor

log = logging.getLogger(__name__)

OPEN_WORKSPACE = "elasticmapreduce:OpenEditorInConsole"
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class _Decided:
    """One remembered outcome: the upstream, or the refusal to raise again."""

    session: StudioSession
    upstream: Upstream | None
    refusal: tuple[int, str, tuple[object, ...], str | None] | None
    writes: int
    until: float  # monotonic

    def fresh(self) -> bool:
        return (
            self.writes == WRITES.value
            and time.monotonic() < self.until
            and time.time() < self.session.expires_at
        )


def default_base_url(editor_id: str) -> str:
    return f"/workspaces/{editor_id}/"


class StudioGate:
    def __init__(
        self,
        store: Store,
        sessions: SessionStore,
        permissions: Permissions,
        *,
        region: str,
        account_id: str,
        session_hours: float,
        base_url: Callable[[str], str] = default_base_url,
        cache_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.permissions = permissions
        self.region = region
        self.account_id = account_id
        self.max_age_days = session_hours / 24 + 1
        self.base_url = base_url
        self.cache_seconds = cache_seconds
        # (session id, Studio id or "", Workspace id, client address) -> outcome.
        self._decided: dict[tuple[str, str, str, str], _Decided] = {}
        sessions.on_end(self.forget_session)

    async def open(
        self, handler: web.RequestHandler, studio_id: str | None, editor_id: str
    ) -> Upstream:
        request = handler.request
        # Remembered by the signed cookie as sent: a hit is a string whose signature was
        # checked when it was decided, so a request answered from memory pays no HMAC.
        signed = signed_cookie_of(request)
        remote_ip = request.remote_ip or "127.0.0.1"
        key = (signed or "", studio_id or "", editor_id, remote_ip)
        hit = self._decided.get(key) if signed else None
        if hit is None or not hit.fresh():
            session_id = session_id_of(handler, signed, max_age_days=self.max_age_days)
            if session_id is None and studio_id is not None:
                self._refuse_anonymous(handler, studio_id, bare=False)  # nothing to look up
            # Only a verified cookie gets here with a decision: an anonymous one raises.
            hit = await self._decide(handler, session_id, studio_id, editor_id, remote_ip)
            if len(self._decided) >= _CACHE_LIMIT:
                self._decided.clear()
            self._decided[key] = hit
        if hit.refusal is not None:
            status, message, args, reason = hit.refusal
            raise web.HTTPError(status, message, *args, reason=reason)
        assert hit.upstream is not None
        if studio_id is not None and _navigation(request) and request.path.startswith("/studios/"):
            # Path form: hand the page to the bare form, with the session at the Workspace's path.
            set_session_cookie(handler, hit.session, workspace_cookie_path(editor_id))
            handler.redirect((request.uri or "/")[len(f"/studios/{studio_id}") :])
            raise web.Finish()
        return hit.upstream

    def remembered(
        self, request: HTTPServerRequest, studio_id: str | None, editor_id: str
    ) -> Upstream | None:
        """The upstream of an admission `open` remembers for this request and would answer
        as is (the proxy's fast path); None when `open` must be asked."""
        signed = signed_cookie_of(request)
        if not signed:
            return None
        key = (signed, studio_id or "", editor_id, request.remote_ip or "127.0.0.1")
        hit = self._decided.get(key)
        if hit is None or hit.upstream is None or not hit.fresh():
            return None
        if studio_id is not None and _navigation(request) and request.path.startswith("/studios/"):
            return None  # `open` redirects it to the bare form
        return hit.upstream

    def forget_session(self, session_id: str) -> None:
        for key in [k for k, d in self._decided.items() if d.session.id == session_id]:
            del self._decided[key]

    def forget_workspace(self, editor_id: str) -> None:
        """The Workspace's row changed (status, endpoint, token): decide again."""
        for key in [k for k in self._decided if k[2] == editor_id]:
            del self._decided[key]

    async def _decide(
        self,
        handler: web.RequestHandler,
        session_id: str | None,
        studio_id: str | None,
        editor_id: str,
        remote_ip: str,
    ) -> _Decided:
        # Noted before anything is read: a write landing meanwhile makes this outcome stale.
        writes = WRITES.value
        until = time.monotonic() + self.cache_seconds
        try:
            upstream, session = await self._admit(
                handler, session_id, studio_id, editor_id, remote_ip
            )
        except _Refused as refused:
            error = refused.error
            refusal = (error.status_code, error.log_message or "", error.args, error.reason)
            # Logged once, as decided: the proxy logs the refusals it repeats at DEBUG only
            # (a client polling a starting Workspace asks many times a second).
            log.info(
                "workspace %s: %d for %s from %s: %s",
                editor_id,
                error.status_code,
                refused.session.principal.arn,
                remote_ip,
                (error.log_message or "") % error.args,
            )
            return _Decided(refused.session, None, refusal, writes, until)
        return _Decided(session, upstream, None, writes, until)

    async def _admit(
        self,
        handler: web.RequestHandler,
        session_id: str | None,
        studio_id: str | None,
        editor_id: str,
        remote_ip: str,
    ) -> tuple[Upstream, StudioSession]:
        def read(session: Session) -> Editor | None:
            editor = session.get(Editor, editor_id)
            return editor if editor is not None and editor.region == self.region else None

        editor = await self.store.tx(read)
        target = studio_id or (editor.studio_id if editor is not None else None)
        if target is None:
            raise web.HTTPError(403, "no Studio for Workspace %s", editor_id)
        session = await self.sessions.get(session_id, target)
        if session is None:
            self._refuse_anonymous(handler, target, bare=studio_id is None)
        # From here on the outcome is remembered (`_Refused` carries a refusal to the cache).
        if editor is None or editor.studio_id != target:
            raise _Refused(
                session, web.HTTPError(404, "Workspace %s is not in %s", editor_id, target)
            )
        endpoint = editor.upstream()
        if editor.status not in EDITOR_RUNNING or endpoint is None:
            raise _Refused(
                session,
                web.HTTPError(
                    409,
                    "Workspace %s is %s",
                    editor_id,
                    editor.status,
                    reason="Workspace Not Running",
                ),
            )
        arn = ids.editor_arn(self.region, self.account_id, editor_id)
        principal = session.principal
        decision = await self.permissions.allowed(
            principal, OPEN_WORKSPACE, arn, source_ip=remote_ip
        )
        if not decision.allowed:
            raise _Refused(
                session,
                web.HTTPError(
                    403, "%s", deny_message(principal.arn, OPEN_WORKSPACE, arn, decision)
                ),
            )
        upstream = Upstream(endpoint.host, endpoint.port, editor.token, self.base_url(editor_id))
        return upstream, session

    @staticmethod
    def _refuse_anonymous(handler: web.RequestHandler, studio_id: str, *, bare: bool) -> NoReturn:
        request = handler.request
        uri = request.uri or "/"
        if not _navigation(request):
            raise web.HTTPError(403, "no session of %s", studio_id)
        if request.path.startswith("/studios/") or bare:
            prefix = f"/studios/{studio_id}"
            target = uri if not bare else prefix + uri
        else:
            prefix, target = "", uri
        handler.redirect(f"{prefix}/signin?{urlencode({'next': target})}")
        raise web.Finish()


class _Refused(Exception):
    """A refusal decided for a signed-in session, to be remembered like an admission."""

    def __init__(self, session: StudioSession, error: web.HTTPError) -> None:
        super().__init__(error.status_code)
        self.session = session
        self.error = error


def _navigation(request: HTTPServerRequest) -> bool:
    """A browser loading a page (not a script's call, not a WebSocket)."""
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("Accept", "")
        and not request.headers.get("Upgrade")
    )
