"""The gateway's ``signin.aws.amazon.com/saml``: IAM federation's pages (see `auth.federation`).

* ``POST /saml`` on the gateway's bare host: the IdP's HTTP-POST binding. It carries no XSRF
  token and comes from another site *by design* (the IdP's page auto-submits it); that is safe
  because the form itself is the proof: a signed, unexpired, audience-bound SAML response,
  accepted once (the replay cache), names who signs in, and a forged or replayed one creates no
  session. It is the only form here without an XSRF token. A RelayState naming no Studio
  lands in the console's Studio list (`web.console_pages`), in a console session.
* ``POST /saml/role``: our own role picker (several Role values), XSRF-protected; the verified
  assertion waits server-side under a random id for five minutes.
* ``GET <Studio>/signin`` of an SSO-mode Studio: IAM Identity Center (`web.sso`).
* ``GET <Studio>/signin`` of an IAM-mode Studio created with ``IdpAuthUrl``: service-provider
  initiated sign-in, as AWS does: a redirect to ``IdpAuthUrl?<IdpRelayStateParameterName>=
  <url-encoded Studio URL>`` (``RelayState`` when no name was given); the IdP posts back to
  ``/saml`` with that RelayState. Its POST (IAM user name and password) is unchanged.
* ``GET <Studio>/federation/handoff?token=...``: on the Studio's host (or under its path), trades
  a one-time handoff token for the Studio's session cookie (cookies are host-only).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado import web
from tornado.routing import HostMatches, PathMatches, Rule

from emustudio import ids
from emustudio.auth.federation import (
    HANDOFF_PATH,
    Federation,
    FederationRefused,
)
from emustudio.auth.sessions import (
    HOST_FORM,
    PATH_FORM,
    cookie_path,
    set_session_cookie,
)
from emustudio.web.base import StudioHandler
from emustudio.web.landing import FederationHandler
from emustudio.web.signin import SignInHandler
from emustudio.web.site import StudioSite
from emustudio.web.sso import begin


class SamlHandler(FederationHandler):
    def check_xsrf_cookie(self) -> None:
        """The IdP's cross-site POST carries no token; the signed SAML response is the proof."""

    async def get(self) -> None:
        self.refuse(
            FederationRefused("Sign in through your identity provider: it posts here.", 405)
        )

    async def post(self) -> None:
        try:
            verified = await self.federation.verify(
                self.get_body_argument("SAMLResponse", ""),
                self.get_body_argument("RelayState", ""),
                source_ip=self.source_ip,
                user_agent=self.user_agent,
            )
        except FederationRefused as refused:
            self.refuse(refused)
            return
        roles = verified.aws.roles
        if len(roles) == 1:
            await self.proceed(verified, roles[0][0])
            return
        self.page(
            "federation_roles.html",
            pick_id=self.federation.keep(verified),
            roles=[role for role, _ in roles],
        )


class RoleChoiceHandler(FederationHandler):
    """The picker's POST: Tornado checks its XSRF token (our own form)."""

    async def post(self) -> None:
        verified = self.federation.take(self.get_body_argument("pick", ""))
        if verified is None:
            self.refuse(
                FederationRefused(
                    "This sign-in has expired. Sign in through your identity provider again."
                )
            )
            return
        await self.proceed(verified, self.get_body_argument("role", ""))


class FederatedSignInHandler(SignInHandler):
    """The Studio's sign-in page; with an ``IdpAuthUrl``, a redirect to the IdP instead."""

    async def get(self, **kwargs: str) -> None:
        assert self.studio is not None
        signed_out = self.get_argument("signed_out", None) is not None
        federated = self.studio.auth_mode == "SSO" or self.studio.idp_auth_url
        if signed_out and federated and self.user is None:
            # Not straight back to the IdP: the user chose to leave; say so and offer the way
            # back in, as the same user or (through the IdP's sign-out) as someone else.
            again = f"{self.prefix}/signin"
            idp_signout = self.site.idp_signout_for(self.studio)
            switch = None
            if idp_signout is not None:
                back = f"{self.studio.url}{again}" if self.form == HOST_FORM else again
                switch = f"{idp_signout}?{urlencode({'return': back})}"
            self.render("signed_out.html", **self.page_args(again_url=again, switch_url=switch))
            return
        if self.studio.auth_mode == "SSO" and self.user is None:
            await begin(self, self.site.identity_center)
            return
        auth_url = self.studio.idp_auth_url if self.studio.auth_mode == "IAM" else None
        if self.user is not None or not auth_url:
            await super().get(**kwargs)
            return
        parameter = self.studio.idp_relay_state_parameter_name or "RelayState"
        if self.form == HOST_FORM:
            studio_url = f"{self.studio.url}/"
        else:
            studio_url = f"{self.request.protocol}://{self.request.host}{self.prefix}/"
        separator = "&" if urlsplit(auth_url).query else "?"
        self.redirect(f"{auth_url}{separator}{urlencode({parameter: studio_url})}")

    async def post(self, **kwargs: str) -> None:
        assert self.studio is not None
        if self.studio.auth_mode == "SSO":
            self.error_message = (
                f"{self.studio.name} uses IAM Identity Center: sign in through your identity"
                " provider, from the Studio's URL, not with an IAM user name and password."
            )
            raise web.HTTPError(400)
        await super().post(**kwargs)


class HandoffHandler(StudioHandler):
    """Trades a one-time handoff token for this Studio's session cookie."""

    federation: Federation

    def initialize(  # type: ignore[override]
        self, site: StudioSite, form: str, federation: Federation
    ) -> None:
        super().initialize(site, form)
        self.federation = federation

    async def get(self, **_: str) -> None:
        assert self.studio is not None
        principal = self.federation.redeem(self.get_argument("token", ""), self.studio.id)
        if principal is None:
            self.error_message = (
                "This sign-in link was used already or has expired."
                " Sign in through your identity provider again."
            )
            raise web.HTTPError(403)
        if self.user_session is not None:
            await self.site.sessions.end(self.user_session.id)
        session = await self.site.sessions.create(
            principal, self.studio.id, form=self.form, source_ip=self.source_ip
        )
        set_session_cookie(self, session, cookie_path(self.form, self.studio.id))
        self.redirect(f"{self.prefix}/", status=303)


def federation_rules(site: StudioSite, federation: Federation) -> list[Rule]:
    """Put these before :func:`emustudio.web.routes.studio_rules`."""
    shared = {"site": site, "federation": federation}
    host: dict[str, Any] = {"site": site, "form": HOST_FORM}
    path: dict[str, Any] = {"site": site, "form": PATH_FORM}
    return [
        Rule(
            HostMatches(ids.studio_host_pattern(site.studio_domain)),
            [
                Rule(PathMatches(HANDOFF_PATH), HandoffHandler, {**shared, "form": HOST_FORM}),
                Rule(PathMatches("/signin"), FederatedSignInHandler, host),
            ],
        ),
        Rule(PathMatches(rf"{ids.STUDIO_PATH}/signin"), FederatedSignInHandler, path),
        Rule(
            PathMatches(rf"{ids.STUDIO_PATH}{HANDOFF_PATH}"),
            HandoffHandler,
            {**shared, "form": PATH_FORM},
        ),
        Rule(PathMatches(r"/saml"), SamlHandler, shared),
        Rule(PathMatches(r"/saml/role"), RoleChoiceHandler, shared),
    ]
