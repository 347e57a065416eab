"""Studio sign-in sessions: rows in the store, named by a signed cookie.

The cookie (`SESSION_COOKIE`) carries a random session id, signed with the gateway's cookie
secret (Tornado's signed cookies, version 2). The store keeps the id's SHA-256 only, with the
signed-in principal, the Studio the session opens, and its expiry; so sessions survive a gateway
restart, a copy of the store yields no cookie, and signing out ends a session everywhere.

A session opens exactly one Studio: :meth:`SessionStore.get` is asked for a Studio and finds
nothing for another's. The cookie is host-only (no ``Domain``), HttpOnly and SameSite=Lax, and
its ``Path`` follows the URL form the user signed in through (`cookie_path`):

* host form ``http://<es-id>.<domain>:<port>/``: ``Path=/`` on that Studio's own host, which
  no other Studio's pages share;
* path form ``http://<gateway>/studios/<es-id>/``: ``Path=/studios/<es-id>/``; and, since
  JupyterLab's pages then call ``/workspaces/<e-id>/...`` on the gateway host, the gate sets
  the same cookie at ``Path=/workspaces/<e-id>/`` for each Workspace the user opens
  (`workspace_cookie_path`).

The console (`emustudio.web.console_pages`, on the gateway's bare host) keeps its sessions in the
same table under the reserved Studio id `CONSOLE`, which no Studio has (Studio ids are
``es-...``), so a console session opens no Studio and a Studio session never opens the console.
Its cookie is another (`CONSOLE_COOKIE`, ``Path=/console``), so that neither overwrites the
other on the gateway host.

A session ends at the gateway's session lifetime, or earlier when the principal's own session
does (`Principal.session_expires`: a federated role session ends at its SAML
``SessionDuration`` / ``SessionNotOnOrAfter``): the row and the cookie both end then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, delete
from tornado import web
from tornado.httputil import HTTPServerRequest, parse_cookie

from emustudio.context import Principal
from emustudio.store import Store
from emustudio.store.iam_tables import IamUser
from emustudio.store.web_tables import WebSession

SESSION_COOKIE = "emustudio-session"
HOST_FORM = "host"
PATH_FORM = "path"
CONSOLE = "console"
"""The reserved Studio id (and URL form) of console sessions."""
CONSOLE_COOKIE = "emustudio-console"
CONSOLE_PATH = "/console"


@dataclasses.dataclass(frozen=True)
class StudioSession:
    """A live session: ``id`` is the secret the cookie carries."""

    id: str
    studio_id: str
    principal: Principal
    form: str
    expires_at: float

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def principal_to_json(principal: Principal) -> dict[str, Any]:
    data = dataclasses.asdict(principal)
    data["session_tags"] = dict(principal.session_tags)
    expires = principal.session_expires
    data["session_expires"] = expires.isoformat() if expires is not None else None
    return data


def principal_from_json(data: dict[str, Any]) -> Principal:
    values = dict(data)
    values["session_policies"] = tuple(values.get("session_policies") or ())
    values["transitive_tag_keys"] = tuple(values.get("transitive_tag_keys") or ())
    expires = values.get("session_expires")
    values["session_expires"] = datetime.fromisoformat(expires) if expires else None
    names = {f.name for f in dataclasses.fields(Principal)}
    return Principal(**{k: v for k, v in values.items() if k in names})


class SessionStore:
    """Creates, finds and ends sessions. ``lifetime`` is in seconds."""

    def __init__(self, store: Store, *, lifetime: float) -> None:
        self.store = store
        self.lifetime = lifetime
        self._ended: list[Callable[[str], None]] = []

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(session_id)`` when a session ends (caches forget it at once)."""
        self._ended.append(callback)

    async def create(
        self, principal: Principal, studio_id: str, *, form: str, source_ip: str
    ) -> StudioSession:
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        expires_at = now + self.lifetime
        if principal.session_expires is not None:
            # A session may not outlive the credentials it stands for (AWS ends a federated
            # console session at SessionDuration).
            expires_at = min(expires_at, principal.session_expires.timestamp())
        row = WebSession(
            id_hash=_hash(session_id),
            studio_id=studio_id,
            user_id=principal.user_id,
            principal=principal_to_json(principal),
            form=form,
            source_ip=source_ip,
            created_at=now,
            expires_at=expires_at,
        )

        def write(session: Session) -> None:
            # Expired rows go whenever someone signs in: no timer needed.
            session.exec(delete(WebSession).where(col(WebSession.expires_at) < now))
            session.add(row)

        await self.store.tx(write)
        return StudioSession(session_id, studio_id, principal, form, row.expires_at)

    async def get(self, session_id: str | None, studio_id: str) -> StudioSession | None:
        """The session if it is live, opens ``studio_id``, and its user still exists."""
        if not session_id:
            return None

        def read(session: Session) -> WebSession | None:
            row = session.get(WebSession, _hash(session_id))
            if row is None or row.studio_id != studio_id or row.expires_at <= time.time():
                return None
            if row.principal.get("kind") == "IAMUser" and session.get(IamUser, row.user_id) is None:
                return None  # the user was deleted: so are the user's console sessions
            return row

        row = await self.store.tx(read)
        if row is None:
            return None
        return StudioSession(
            session_id, row.studio_id, principal_from_json(row.principal), row.form, row.expires_at
        )

    async def end(self, session_id: str) -> None:
        def remove(session: Session) -> None:
            row = session.get(WebSession, _hash(session_id))
            if row is not None:
                session.delete(row)

        await self.store.tx(remove)
        for callback in self._ended:
            callback(session_id)


# --- the cookie ---------------------------------------------------------------------------------


def cookie_path(form: str, studio_id: str) -> str:
    return "/" if form == HOST_FORM else f"/studios/{studio_id}/"


def workspace_cookie_path(editor_id: str) -> str:
    return f"/workspaces/{editor_id}/"


def set_session_cookie(
    handler: web.RequestHandler, session: StudioSession, path: str, *, name: str = SESSION_COOKIE
) -> None:
    handler.set_signed_cookie(
        name,
        session.id,
        expires_days=None,
        expires=session.expires,
        path=path,
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(
    handler: web.RequestHandler, path: str, *, name: str = SESSION_COOKIE
) -> None:
    handler.clear_cookie(name, path=path, httponly=True, samesite="Lax")


def session_id_from(
    handler: web.RequestHandler, *, max_age_days: float, name: str = SESSION_COOKIE
) -> str | None:
    """The session id of the request's signed cookie, or None (absent, forged, too old)."""
    signed = signed_cookie_of(handler.request, name)
    return session_id_of(handler, signed, max_age_days=max_age_days, name=name)


def signed_cookie_of(request: HTTPServerRequest, name: str = SESSION_COOKIE) -> str | None:
    """The cookie ``name`` as the request sent it: signed, not verified (`session_id_of`).

    Tornado's own ``get_cookie`` builds a `http.cookies.SimpleCookie` of every cookie first;
    the Workspace gate reads this one per proxied request, so it parses the header only.
    """
    header = request.headers.get("Cookie")
    if not header or name not in header:
        return None
    return parse_cookie(header).get(name)


def session_id_of(
    handler: web.RequestHandler,
    signed: str | None,
    *,
    max_age_days: float,
    name: str = SESSION_COOKIE,
) -> str | None:
    """The session id ``signed`` (a cookie's value) carries if its signature holds."""
    if not signed:
        return None
    handler.require_setting("cookie_secret", "signed cookies")
    secret = handler.application.settings["cookie_secret"]
    raw = web.decode_signed_value(secret, name, signed, max_age_days=max_age_days, min_version=2)
    return raw.decode() if raw else None


def set_console_cookie(handler: web.RequestHandler, session: StudioSession) -> None:
    set_session_cookie(handler, session, CONSOLE_PATH, name=CONSOLE_COOKIE)


def clear_console_cookie(handler: web.RequestHandler) -> None:
    clear_session_cookie(handler, CONSOLE_PATH, name=CONSOLE_COOKIE)


def console_session_id_from(handler: web.RequestHandler, *, max_age_days: float) -> str | None:
    return session_id_from(handler, max_age_days=max_age_days, name=CONSOLE_COOKIE)
