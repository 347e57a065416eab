"""The Studio's URL table, in both forms.

Each page module ends with ``default_handlers``: ``(pattern, handler)`` pairs with patterns
relative to a Studio. :func:`studio_rules` mounts them twice:

* on the Studio's own host, ``<es-id>.<studio domain>`` (the Studio URL AWS gives): ``/``,
  ``/signin``...;
* under ``/studios/<es-id>`` on any host, for clients that cannot resolve the Studio host:
  ``/studios/<es-id>/``, ``/studios/<es-id>/signin``...

Put the rules after the proxy's (``/workspaces/<e-id>/...`` belongs to the proxy on a Studio
host) and before the AWS endpoint's.
"""

from __future__ import annotations

from typing import Any

from tornado import web
from tornado.routing import HostMatches, PathMatches, Rule

from emustudio import ids
from emustudio.auth.sessions import HOST_FORM, PATH_FORM
from emustudio.web import clusters, credentials, details, events, signin, spark_ui, workspaces
from emustudio.web.base import NotFoundHandler
from emustudio.web.site import StudioSite

default_handlers: list[tuple[str, type[web.RequestHandler]]] = [
    *workspaces.default_handlers,
    *signin.default_handlers,
    *events.default_handlers,
    *credentials.default_handlers,
    *details.default_handlers,
    *clusters.default_handlers,
    *spark_ui.default_handlers,
]


def studio_rules(site: StudioSite) -> list[Rule]:
    host: dict[str, Any] = {"site": site, "form": HOST_FORM}
    path: dict[str, Any] = {"site": site, "form": PATH_FORM}
    on_host = [Rule(PathMatches(pattern), handler, host) for pattern, handler in default_handlers]
    on_host.append(Rule(PathMatches(r"/.*"), NotFoundHandler, host))
    on_path = [
        Rule(PathMatches(rf"{ids.STUDIO_PATH}{pattern}"), handler, path)
        for pattern, handler in default_handlers
    ]
    return [
        Rule(HostMatches(ids.studio_host_pattern(site.studio_domain)), on_host),
        Rule(
            PathMatches(rf"{ids.STUDIO_PATH}"),
            web.RedirectHandler,
            {"url": "/studios/{studio_id}/"},
        ),
        *on_path,
        Rule(PathMatches(rf"{ids.STUDIO_PATH}/.*"), NotFoundHandler, path),
    ]
