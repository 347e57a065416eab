"""The built-in IdP's pages (see `auth.idp`), on the gateway's bare host under ``/idp/``.

* ``GET /idp/metadata``: the IdP's SAML metadata, for IAM ``CreateSAMLProvider``.
* ``GET|POST /idp/login``: the sign-in form (XSRF-protected); success sets a signed, HTTP-only
  IdP session cookie (path ``/idp/``) and goes to ``next`` (an ``/idp/`` path) or the portal.
* ``GET /idp/portal``: IdP-initiated sign-in: the user's roles and their Studios; choosing one
  (``POST /idp/portal``, XSRF-protected) answers an auto-submitting form that posts a signed
  SAMLResponse to the gateway's ``/saml`` with the chosen Studio's URL as RelayState.
* ``GET /idp/sso?RelayState=...``: service-provider initiated (a Studio's ``IdpAuthUrl``): sign in
  if needed, then the auto-post with every role of the user and that RelayState.
  ``GET /idp/sso?SAMLRequest=...``: an AuthnRequest of a known SP (IAM Identity Center), answered
  with an auto-post to that SP's registered ACS.
* ``GET /idp/logout?return=<url>``: asks whether to sign out of the IdP (a Studio's sign-out
  chains here, so that its next sign-in can be someone else); ``POST /idp/logout`` ends the IdP
  session, on the server too (a copied cookie is dead after it), and goes back to ``return`` (a
  Studio of this gateway or a path of its own) or the login page.

IdP sessions live in the gateway's memory (`IdpSessions`); the cookie names one, signed. A
gateway restart ends them all, which for an IdP session (half a day) is only a new login.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from tornado import web
from tornado.routing import HostMatches, PathMatches, Rule

from emustudio import ids
from emustudio.auth.idp import BadAuthnRequest, BuiltinIdp, IdpRole, IdpUser, UsersFileError
from emustudio.web.base import PageHandler

log = logging.getLogger(__name__)

IDP_COOKIE = "emustudio-idp"
COOKIE_PATH = "/idp/"
SESSION_DAYS = 0.5
_MAX_SESSIONS = 10_000


class IdpSessions:
    """Signed-in IdP users by session id; ended by sign-out or after `SESSION_DAYS`."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[str, float]] = {}

    def create(self, user_name: str) -> str:
        now = time.time()
        if len(self._sessions) >= _MAX_SESSIONS:  # drop the expired, then the oldest
            self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
            while len(self._sessions) >= _MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = (user_name, now + SESSION_DAYS * 86400)
        return session_id

    def user(self, session_id: str) -> str | None:
        found = self._sessions.get(session_id)
        if found is None or found[1] < time.time():
            self._sessions.pop(session_id, None)
            return None
        return found[0]

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


class IdpHandler(PageHandler):
    idp: BuiltinIdp
    saml_url: str
    studio_url: str
    # Its Content-Security-Policy is per page: scripts run by this response's nonce only.
    security_headers = {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }

    def initialize(
        self, idp: BuiltinIdp, saml_url: str, studio_url: str, sessions: IdpSessions
    ) -> None:
        self.idp = idp
        self.saml_url = saml_url
        self.studio_url = studio_url
        self.sessions = sessions
        self.nonce = secrets.token_urlsafe(16)

    def page_values(self) -> dict[str, Any]:
        values = super().page_values()
        values.update(prefix="/idp", nonce=self.nonce, idp_user_name=None)
        return values

    def page(self, template: str, status: int = 200, **args: Any) -> None:
        self.set_header(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'nonce-{self.nonce}'; style-src 'self';"
            " frame-ancestors 'none'; base-uri 'none'",
        )
        super().page(template, status, **args)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, UsersFileError):
            log.error("built-in IdP: %s", exc)
            self.page(
                "idp_login.html",
                503,
                error="The identity provider's users file cannot be read; see the gateway log.",
                next_url="/idp/portal",
                username="",
            )
            return
        super().write_error(status_code, **kwargs)

    def session_id(self) -> str | None:
        raw = self.get_signed_cookie(IDP_COOKIE, max_age_days=SESSION_DAYS)
        return raw.decode() if raw is not None else None

    def signed_in(self) -> IdpUser | None:
        session_id = self.session_id()
        name = self.sessions.user(session_id) if session_id is not None else None
        return self.idp.users.get(name) if name is not None else None

    def safe_return(self, value: str) -> str | None:
        """Where sign-out may go back to: a Studio of this gateway, or a path of its own."""
        if value.startswith("/") and not value.startswith("//") and "\\" not in value:
            return value
        studio = re.escape(self.studio_url).replace(re.escape("{studio_id}"), "es-[a-z0-9]{25}")
        if re.match(rf"{studio}(/[^\\]*)?$", value, re.IGNORECASE):
            return value
        return None

    def studio_link(self, studio: str) -> str:
        if "://" in studio:
            return studio
        return f"{self.studio_url.format(studio_id=studio)}/"

    async def autopost(self, user: IdpUser, roles: list[IdpRole] | None, relay: str) -> None:
        saml_response = await asyncio.to_thread(self.idp.response, user, roles)
        self.page(
            "idp_post.html",
            action=self.saml_url,
            saml_response=saml_response,
            relay_state=relay,
        )


class MetadataHandler(IdpHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/samlmetadata+xml")
        self.write(self.idp.metadata())


def _safe_next(value: str) -> str:
    if value.startswith("/idp/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/idp/portal"


class LoginHandler(IdpHandler):
    def get(self) -> None:
        self.page("idp_login.html", next_url=_safe_next(self.get_argument("next", "")), username="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "").strip()
        password = self.get_body_argument("password", "")
        next_url = _safe_next(self.get_body_argument("next", ""))
        # Off the event loop: a hashed password costs scrypt's tens of milliseconds.
        user = await asyncio.to_thread(self.idp.users.authenticate, username, password)
        if user is None:
            self.clear_cookie(IDP_COOKIE, path=COOKIE_PATH)
            self.page(
                "idp_login.html",
                401,
                error="Incorrect user name or password.",
                next_url=next_url,
                username=username,
            )
            return
        if (old := self.session_id()) is not None:
            self.sessions.end(old)
        self.set_signed_cookie(
            IDP_COOKIE,
            self.sessions.create(user.name),
            expires_days=None,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
        )
        self.redirect(next_url, status=303)


class LogoutHandler(IdpHandler):
    def get(self) -> None:
        user = self.signed_in()
        back = self.safe_return(self.get_argument("return", ""))
        self.page(
            "idp_logout.html",
            idp_user_name=user.name if user is not None else None,
            signed_in=user is not None,
            back=back,
        )

    def post(self) -> None:
        if (session_id := self.session_id()) is not None:
            self.sessions.end(session_id)
        self.clear_cookie(IDP_COOKIE, path=COOKIE_PATH)
        back = self.safe_return(self.get_body_argument("return", ""))
        self.page("idp_logout.html", idp_user_name=None, signed_in=False, back=back)


class PortalHandler(IdpHandler):
    def login_redirect(self) -> None:
        self.redirect("/idp/login?" + urlencode({"next": "/idp/portal"}))

    def get(self) -> None:
        user = self.signed_in()
        if user is None:
            self.login_redirect()
            return
        choices = [
            (index, role, [(studio, self.studio_link(studio)) for studio in role.studios])
            for index, role in enumerate(user.roles)
        ]
        self.page("idp_portal.html", idp_user=user, idp_user_name=user.name, choices=choices)

    async def post(self) -> None:
        user = self.signed_in()
        if user is None:
            self.login_redirect()
            return
        try:
            role = user.roles[int(self.get_body_argument("role", ""))]
        except (ValueError, IndexError):
            raise web.HTTPError(400) from None
        studio = self.get_body_argument("studio", "")
        if studio and studio not in role.studios:
            raise web.HTTPError(400)
        await self.autopost(user, [role], self.studio_link(studio) if studio else "")


class SsoHandler(IdpHandler):
    """Without ``SAMLRequest``: AWS sign-in's flow (a Studio's ``IdpAuthUrl``). With one: an
    ``AuthnRequest`` of a known SP (IAM Identity Center), answered at the SP's own ACS."""

    async def get(self) -> None:
        saml_request = self.get_argument("SAMLRequest", None)
        ask = None
        if saml_request is not None:
            try:
                ask = await asyncio.to_thread(self.idp.parse_request, saml_request)
            except BadAuthnRequest as exc:
                self.page(
                    "idp_error.html",
                    400,
                    error=f"This sign-in request cannot be answered: {exc}",
                )
                return
        user = self.signed_in()
        if user is None:
            self.redirect("/idp/login?" + urlencode({"next": self.request.uri or "/idp/sso"}))
            return
        relay = self.get_argument("RelayState", "")
        if ask is None:
            await self.autopost(user, None, relay)
            return
        saml_response = await asyncio.to_thread(self.idp.response_to, ask, user)
        self.page(
            "idp_post.html", action=ask.acs_url, saml_response=saml_response, relay_state=relay
        )


def idp_rules(idp: BuiltinIdp, *, saml_url: str, studio_url: str, studio_domain: str) -> list[Rule]:
    """The IdP's routes, on every host but the Studios' own."""
    args = {
        "idp": idp,
        "saml_url": saml_url,
        "studio_url": studio_url,
        "sessions": IdpSessions(),
    }
    return [
        Rule(
            HostMatches(ids.other_host_pattern(studio_domain)),
            [
                Rule(PathMatches(r"/idp/metadata"), MetadataHandler, args),
                Rule(PathMatches(r"/idp/login"), LoginHandler, args),
                Rule(PathMatches(r"/idp/logout"), LogoutHandler, args),
                Rule(PathMatches(r"/idp/portal"), PortalHandler, args),
                Rule(PathMatches(r"/idp/sso"), SsoHandler, args),
            ],
        )
    ]
