"""The console: sign in as an IAM user, list the Studios you may open, open one, sign out.

The part of the AWS Management Console an EMR Studio user meets, on the gateway's bare host
(``http://localhost:<port>/console``; never on a Studio's host, whose pages are the Studio's):

* ``GET /console``: the EMR Studios the signed-in principal may open (IAM-mode Studios it is
  allowed ``elasticmapreduce:CreateStudioPresignedUrl`` on, `Federation.openable`), each linked
  to its own host through a one-time handoff token (`Federation.handoff`), since the console's
  cookie cannot reach another host; signed out, a redirect to the sign-in page.
* ``GET|POST /console/signin``: account id, IAM user name and password, as AWS's IAM user
  sign-in page (`ConsoleSignIn`: root refused, wrong credentials in AWS's words, CloudTrail's
  ``ConsoleLogin``).
* ``POST /console/signout``: ends the console session (POST only: a link or a prefetch must not
  sign anyone out).

A federated sign-in whose RelayState names no Studio lands here too (`emustudio.web.saml`).
Sessions are the Studio sessions' store under the reserved id `CONSOLE`, named by their own
cookie (`CONSOLE_COOKIE`: signed, host-only, ``Path=/console``, HttpOnly, SameSite=Lax). Every
POST carries Tornado's XSRF token and must come from this origin.
"""

from __future__ import annotations

import time
from typing import Any

from tornado.routing import HostMatches, PathMatches, Rule

from emustudio import ids
from emustudio.auth.federation import LIST_HANDOFF_SECONDS, Federation
from emustudio.auth.sessions import (
    CONSOLE,
    CONSOLE_PATH,
    StudioSession,
    clear_console_cookie,
    console_session_id_from,
    set_console_cookie,
)
from emustudio.auth.signin import Authenticator, SignInAttempt, SignInRefused
from emustudio.context import Principal
from emustudio.web.base import PageHandler
from emustudio.web.site import StudioSite

SIGNIN_PATH = f"{CONSOLE_PATH}/signin"
SIGNOUT_PATH = f"{CONSOLE_PATH}/signout"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The list's links carry handoff tokens: no page they lead to learns this one's URL.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_XSRF_MESSAGE = "This form has expired or did not come from this page. Reload it and try again."


class ConsoleHandler(PageHandler):
    site: StudioSite
    federation: Federation
    signin: Authenticator
    security_headers = _HEADERS
    console_session: StudioSession | None = None
    forgery_message = _XSRF_MESSAGE

    def initialize(self, site: StudioSite, federation: Federation, signin: Authenticator) -> None:
        self.site = site
        self.federation = federation
        self.signin = signin

    @property
    def user(self) -> Principal | None:
        return self.console_session.principal if self.console_session is not None else None

    async def prepare(self) -> None:
        self.check_form_origin()
        session_id = console_session_id_from(self, max_age_days=self.site.session_hours / 24 + 1)
        self.console_session = await self.site.sessions.get(session_id, CONSOLE)

    def page_values(self) -> dict[str, Any]:
        # base.html's header: the brand links to the console, sign-out posts to /console/signout.
        return {**super().page_values(), "prefix": CONSOLE_PATH, "user": self.user}


class ConsoleHomeHandler(ConsoleHandler):
    """The EMR Studios the principal may open."""

    async def get(self) -> None:
        session = self.console_session
        if session is None:
            self.redirect(SIGNIN_PATH)
            return
        principal = session.principal
        # A link outlives neither the list's handoff window nor the console session.
        lifetime = max(0.0, min(LIST_HANDOFF_SECONDS, session.expires_at - time.time()))
        studios = [
            (
                studio_id,
                name,
                # The Studio's own host (the Studio URL AWS gives): the token buys its cookie.
                self.federation.sign_in_url(
                    principal, studio_id, self.site.emr.studio_url(studio_id), lifetime=lifetime
                ),
            )
            for studio_id, name in await self.federation.openable(
                principal, source_ip=self.source_ip
            )
        ]
        self.page("console_studios.html", principal=principal, studios=studios)


class ConsoleSignInHandler(ConsoleHandler):
    async def get(self) -> None:
        if self.console_session is not None:
            self.redirect(CONSOLE_PATH)
            return
        self.signin_page(signed_out=self.get_argument("signed_out", None) is not None)

    async def post(self) -> None:
        form = {
            name: self.get_body_argument(name, "")
            for name in ("account", "username", "password", "account_type")
        }
        attempt = SignInAttempt(
            form=form,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
        )
        try:
            principal = await self.signin.sign_in(attempt)
        except SignInRefused as refused:
            self.signin_page(
                refused.status,
                account=form["account"],
                username=form["username"],
                error=refused.message,
            )
            return
        if self.console_session is not None:
            await self.site.sessions.end(self.console_session.id)
        session = await self.site.sessions.create(
            principal, CONSOLE, form=CONSOLE, source_ip=self.source_ip
        )
        set_console_cookie(self, session)
        self.redirect(CONSOLE_PATH, status=303)

    def signin_page(self, status: int = 200, **args: Any) -> None:
        values: dict[str, Any] = {
            "account": self.site.emr.account_id,
            "username": "",
            "signed_out": False,
            # A federated role's console session came through the IdP: its sign-out is offered.
            "idp_signout_url": self.site.idp_signout_url,
        }
        values.update(args)
        self.page("console_signin.html", status, user=None, **values)


class ConsoleSignOutHandler(ConsoleHandler):
    async def post(self) -> None:
        if self.console_session is not None:
            await self.site.sessions.end(self.console_session.id)
        clear_console_cookie(self)
        self.redirect(f"{SIGNIN_PATH}?signed_out=1", status=303)


def console_rules(site: StudioSite, federation: Federation, signin: Authenticator) -> list[Rule]:
    """The console's pages, on any host but a Studio's (those belong to the Studio's pages)."""
    kwargs: dict[str, Any] = {"site": site, "federation": federation, "signin": signin}
    return [
        Rule(
            HostMatches(ids.other_host_pattern(site.studio_domain)),
            [
                Rule(PathMatches(rf"{CONSOLE_PATH}/?"), ConsoleHomeHandler, kwargs),
                Rule(PathMatches(SIGNIN_PATH), ConsoleSignInHandler, kwargs),
                Rule(PathMatches(SIGNOUT_PATH), ConsoleSignOutHandler, kwargs),
            ],
        )
    ]
