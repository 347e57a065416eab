"""IAM Identity Center's pages (see `auth.idc`), on the gateway's bare host.

* ``GET <SSO-mode Studio>/signin``: :func:`begin` sends the browser to the identity source with
  an ``AuthnRequest`` (the Studio's sign-in handler calls it).
* ``POST /sso/saml``: Identity Center's assertion consumer service. Like ``/saml`` it carries
  no XSRF token by design (the IdP's page posts it cross-site); the proof is the signed response
  answering a request we sent, accepted once. Success hands the browser to the Studio's host with
  a one-time token (`auth.federation`'s handoff); refusals are readable pages.
* ``GET /sso/saml/metadata``: Identity Center's SP metadata, for an external IdP.
"""

from __future__ import annotations

import asyncio

from tornado import web
from tornado.routing import PathMatches, Rule

from emustudio.auth.federation import Federation, FederationRefused
from emustudio.auth.idc import ACS_PATH, METADATA_PATH, IdentityCenter
from emustudio.auth.sessions import PATH_FORM
from emustudio.web.base import StudioHandler
from emustudio.web.landing import FederationHandler
from emustudio.web.site import StudioSite


async def begin(handler: StudioHandler, identity_center: IdentityCenter | None) -> None:
    """Answer a Studio's sign-in page with the redirect to Identity Center's identity source."""
    assert handler.studio is not None
    if identity_center is None:
        handler.error_message = "IAM Identity Center is not available on this gateway."
        raise web.HTTPError(503)
    try:
        url = await asyncio.to_thread(
            identity_center.begin, handler.studio.id, path_form=handler.form == PATH_FORM
        )
    except FederationRefused as refused:
        handler.error_message = refused.message
        raise web.HTTPError(refused.status) from None
    handler.redirect(url)


class AcsHandler(FederationHandler):
    identity_center: IdentityCenter

    def initialize(  # type: ignore[override]
        self, site: StudioSite, federation: Federation, identity_center: IdentityCenter
    ) -> None:
        super().initialize(site, federation)
        self.identity_center = identity_center

    def check_xsrf_cookie(self) -> None:
        """The IdP's cross-site POST carries no token; the signed response is the proof."""

    async def get(self) -> None:
        self.refuse(
            FederationRefused(
                "Sign in from your Studio's URL: your identity provider posts here.", 405
            )
        )

    async def post(self) -> None:
        try:
            signed_in = await self.identity_center.finish(
                self.get_body_argument("SAMLResponse", ""),
                source_ip=self.source_ip,
                user_agent=self.user_agent,
            )
        except FederationRefused as refused:
            self.refuse(refused)
            return
        token = self.federation.handoff(signed_in.principal, signed_in.studio_id)
        self.redirect(
            self.handoff_url(signed_in.studio_id, token, path_form=signed_in.path_form),
            status=303,
        )


class MetadataHandler(web.RequestHandler):
    def initialize(self, identity_center: IdentityCenter) -> None:
        self.identity_center = identity_center

    def get(self) -> None:
        self.set_header("Content-Type", "application/samlmetadata+xml")
        self.write(self.identity_center.sp_metadata())


def sso_rules(
    site: StudioSite, federation: Federation, identity_center: IdentityCenter
) -> list[Rule]:
    return [
        Rule(PathMatches(METADATA_PATH), MetadataHandler, {"identity_center": identity_center}),
        Rule(
            PathMatches(ACS_PATH),
            AcsHandler,
            {"site": site, "federation": federation, "identity_center": identity_center},
        ),
    ]
