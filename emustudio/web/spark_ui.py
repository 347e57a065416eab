"""A cluster's Spark UIs through the gateway: ``<prefix>/clusters/<j-id>/spark/`` is the Spark
master's UI (the master node's port 8080), ``.../history/`` its history server (18080).

No cluster port is published on the host (the gateway is the Studio's ENI), so a browser reaches
these pages only here, and only as a user of this Studio who may ``DescribeCluster`` on the
cluster (asked as the user through the API, not recorded: each page load would otherwise be a
CloudTrail event), for a cluster in one of this Studio's subnets. Only ``GET`` is forwarded: the
UIs are for reading (Spark's kill links are POSTs, refused here).

Spark writes its links under the base path it is given in ``X-Forwarded-Context`` (the header
Apache Knox uses; Spark's ``UIUtils.uiRoot`` reads it), so its pages work under the prefix
without rewriting HTML; a redirect's ``Location`` is moved under the prefix here. Links that
Spark points at other ports (a worker's UI on 8081, a running application's on 4040) are left
as Spark writes them and do not open from the browser.
"""

from __future__ import annotations

import re

from tornado import httpclient, web

from emustudio.web.base import StudioHandler
from emustudio.web.clusters import CLUSTER_ID

PORTS = {"spark": 8080, "history": 18080}
CONNECT_SECONDS = 5.0
REQUEST_SECONDS = 60.0
# The upstream's headers worth passing on; everything else (cookies included) stays behind.
PASSED = ("Content-Type", "Content-Disposition", "Last-Modified", "ETag")
_BASE = re.compile(rf"/clusters/{CLUSTER_ID}/(?P<ui>spark|history)")


class SparkUiHandler(StudioHandler):
    # Spark's pages run inline scripts: the Studio pages' CSP would break them. What stays:
    # nothing but this origin, no framing, no forms or links to elsewhere by script.
    security_headers = {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval';"
            " style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none';"
            " form-action 'self'; base-uri 'self'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }

    async def get(self, cluster_id: str, ui: str, **_: str) -> None:
        self.require_user()
        assert self.studio is not None
        # The gate: the user's own DescribeCluster (a refusal is the error page, in AWS's words).
        await self.call("DescribeCluster", {"ClusterId": cluster_id}, record=False)
        place = await self.site.cluster_place(cluster_id)
        if place is None or place.subnet_id not in self.studio.subnet_ids:
            self.error_message = f"Cluster {cluster_id} is not in a subnet of this Studio."
            raise web.HTTPError(404)
        if place.master_ip is None:
            self.error_message = f"Cluster {cluster_id}'s primary node has no address yet."
            raise web.HTTPError(409)
        match = _BASE.search(self.request.path)
        assert match is not None
        base = self.request.path[: match.end()]
        rest = self.request.path[match.end() :]
        if not rest:
            self.redirect(base + "/")
            return
        origin = f"http://{place.master_ip}:{PORTS[ui]}"
        query = f"?{self.request.query}" if self.request.query else ""
        request = httpclient.HTTPRequest(
            origin + rest + query,
            headers={
                "X-Forwarded-Context": base,
                "Accept": self.request.headers.get("Accept", "*/*"),
            },
            follow_redirects=False,
            connect_timeout=CONNECT_SECONDS,
            request_timeout=REQUEST_SECONDS,
        )
        response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code == 599:
            self.error_message = (
                f"The {'Spark history server' if ui == 'history' else 'Spark master UI'} of"
                f" {cluster_id} does not answer."
            )
            raise web.HTTPError(502)
        self.set_status(response.code, response.reason)
        for name in PASSED:
            if value := response.headers.get(name):
                self.set_header(name, value)
        if location := response.headers.get("Location"):
            self.set_header("Location", moved(location, origin, base))
        self.finish(response.body or b"")


def moved(location: str, origin: str, base: str) -> str:
    """A redirect of the upstream, under the gateway's path for it."""
    if location.startswith(origin):
        location = location[len(origin) :] or "/"
    if location.startswith("/") and not location.startswith(base + "/") and location != base:
        return base + location
    return location


default_handlers = [
    (rf"/clusters/{CLUSTER_ID}/(?P<ui>spark|history)(?:/.*)?", SparkUiHandler),
]
