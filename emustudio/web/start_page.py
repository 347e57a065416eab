"""The gateway's start page for browsers, and its icon.

``/`` is the AWS API endpoint: an SDK's request there gets AWS's answer, unsigned ones included
(``MissingAuthenticationToken``...). A browser that opens ``http://localhost:8080/`` is not an
SDK: `BrowserNavigation` matches only a plain ``GET /`` that asks for HTML and carries nothing
of a signed call (no ``Authorization``, no ``X-Amz-*`` header, no query), and that request gets
the start page: the console (where the Studios are, for who may see them; the page itself names
no Studio to an anonymous visitor), the IdP portal and the endpoint for the SDKs. Every other
request to ``/`` goes on to the API handler unchanged.

``/favicon.ico`` is Tornado's own static route (the ``static_path`` setting serves it from
``static/`` on every host, Studio hosts too); pages link ``favicon.svg``.
"""

from __future__ import annotations

import re
from typing import Any

from tornado import httputil
from tornado.routing import Matcher, Rule

from emustudio.web.base import PageHandler
from emustudio.web.site import StudioSite


class BrowserNavigation(Matcher):
    """A browser's plain ``GET /`` for a page; never a signed (or signable) API call."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if request.method not in ("GET", "HEAD") or request.uri != "/":
            return None
        headers = request.headers
        if "Authorization" in headers or any(k.lower().startswith("x-amz-") for k in headers):
            return None
        if "text/html" not in headers.get("Accept", ""):
            return None
        return {}


class LandingHandler(PageHandler):
    def initialize(self, site: StudioSite, idp: bool, endpoint_url: str) -> None:
        self.site = site
        self.idp = idp
        self.endpoint_url = endpoint_url

    def get(self) -> None:
        self.render(
            "landing.html",
            studio=None,
            prefix="",
            user=None,
            error=None,
            idp=self.idp,
            endpoint_url=self.endpoint_url,
            region=self.site.region,
        )


def landing_rules(site: StudioSite, *, idp: bool, endpoint_url: str) -> list[Rule]:
    """Put these before the API endpoint."""
    domain = re.escape(site.studio_domain.lower().strip("."))
    return [
        Rule(
            _NotStudioHostBrowser(domain),
            LandingHandler,
            {"site": site, "idp": idp, "endpoint_url": endpoint_url},
        ),
    ]


class _NotStudioHostBrowser(BrowserNavigation):
    """`BrowserNavigation` on the gateway's own host (a Studio host's ``/`` is the Studio)."""

    def __init__(self, domain: str) -> None:
        self.studio_host = re.compile(rf"es-[a-z0-9]{{25}}\.{domain}$")

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if self.studio_host.match(request.host_name.lower()):
            return None
        return super().match(request)
