"""Where a verified federated sign-in lands: the role's session, then the Studio or the console.

`FederationHandler` is shared by IAM federation's ``/saml`` and ``/saml/role`` (`web.saml`) and
IAM Identity Center's ACS (`web.sso`): its pages' headers, its refusals, and the landing.
"""

from __future__ import annotations

from urllib.parse import urlencode

from emustudio.auth.federation import (
    HANDOFF_PATH,
    Federation,
    FederationRefused,
    Verified,
    parse_relay_state,
)
from emustudio.auth.sessions import (
    CONSOLE,
    CONSOLE_PATH,
    console_session_id_from,
    set_console_cookie,
)
from emustudio.web.base import PageHandler
from emustudio.web.site import StudioSite

_HEADERS = {
    # No form-action: the picker's POST is answered by a redirect to the Studio's own host.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class FederationHandler(PageHandler):
    """Shared by ``/saml`` and ``/saml/role``: assume the chosen role, then land."""

    site: StudioSite
    federation: Federation
    security_headers = _HEADERS

    def initialize(self, site: StudioSite, federation: Federation) -> None:
        self.site = site
        self.federation = federation

    def refuse(self, refused: FederationRefused) -> None:
        # The way forward: as someone else, through the built-in IdP's sign-out (back to where
        # the sign-in was going, which the IdP checks is one of this gateway's Studios).
        switch = None
        if self.site.idp_signout_url is not None:
            posted = self.request.method == "POST"
            relay = self.get_body_argument("RelayState", "") if posted else ""
            query = f"?{urlencode({'return': relay})}" if relay else ""
            switch = f"{self.site.idp_signout_url}{query}"
        self.page(
            "federation_error.html",
            refused.status,
            error=refused.message,
            status_code=refused.status,
            switch_url=switch,
        )

    async def proceed(self, verified: Verified, role_arn: str) -> None:
        try:
            principal = await self.federation.assume(
                verified, role_arn, source_ip=self.source_ip, user_agent=self.user_agent
            )
            target = parse_relay_state(
                verified.relay_state, region=self.site.region, studio_domain=self.site.studio_domain
            )
            if target is not None:
                await self.federation.may_open(
                    principal, target.studio_id, source_ip=self.source_ip
                )
        except FederationRefused as refused:
            self.refuse(refused)
            return
        if target is None:
            # No Studio named: the console's Studio list, in a console session, so that the
            # list survives a reload and has sign-out (web/console_pages.py).
            old = console_session_id_from(self, max_age_days=self.site.session_hours / 24 + 1)
            if old is not None:
                await self.site.sessions.end(old)
            session = await self.site.sessions.create(
                principal, CONSOLE, form=CONSOLE, source_ip=self.source_ip
            )
            set_console_cookie(self, session)
            self.redirect(CONSOLE_PATH, status=303)
            return
        token = self.federation.handoff(principal, target.studio_id)
        self.redirect(
            self.handoff_url(target.studio_id, token, path_form=target.path_form), status=303
        )

    def handoff_url(self, studio_id: str, token: str, *, path_form: bool) -> str:
        query = urlencode({"token": token})
        if path_form:
            return f"/studios/{studio_id}{HANDOFF_PATH}?{query}"
        return f"{self.site.emr.studio_url(studio_id)}{HANDOFF_PATH}?{query}"
