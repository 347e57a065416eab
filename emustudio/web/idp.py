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
* ``POST /idp/logout``: ends the IdP session.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
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

    def initialize(self, idp: BuiltinIdp, saml_url: str, studio_url: str) -> None:
        self.idp = idp
        self.saml_url = saml_url
        self.studio_url = studio_url
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

    def signed_in(self) -> IdpUser | None:
        raw = self.get_signed_cookie(IDP_COOKIE, max_age_days=SESSION_DAYS)
        if raw is None:
            return None
        return self.idp.users.get(raw.decode())

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
        self.set_signed_cookie(
            IDP_COOKIE,
            user.name,
            expires_days=None,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
        )
        self.redirect(next_url, status=303)


class LogoutHandler(IdpHandler):
    def post(self) -> None:
        self.clear_cookie(IDP_COOKIE, path=COOKIE_PATH)
        self.redirect("/idp/login", status=303)


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
    args = {"idp": idp, "saml_url": saml_url, "studio_url": studio_url}
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
