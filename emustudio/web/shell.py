"""The page shell's parts that depend on the request: the left navigation and who is signed in.

Every gateway page renders ``base.html`` (top bar, left navigation, breadcrumbs, content). The
template calls these as Tornado *UI methods* (``app_settings`` registers this module), so page
handlers pass nothing for the shell: a page is in the Studio's navigation when its handler has a
``studio`` (any `StudioHandler`), in the console's when it is a console page.

A feature adds its view to a navigation by adding a `NavLink` to `STUDIO_NAV` or `CONSOLE_NAV`
(the Clusters view joins `STUDIO_NAV` that way); a link whose ``path`` is None is shown as
"coming" text, not a link, so a reader sees where the feature will be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emustudio.context import Principal

CONSOLE_PREFIX = "/console"


@dataclass(frozen=True)
class NavLink:
    label: str
    # Relative to the Studio's prefix (or absolute, for the console); None: not available yet.
    path: str | None
    # Paths (relative, as ``path``) that also mark this link as the current page.
    also: tuple[str, ...] = ()


STUDIO_NAV: list[NavLink] = [
    NavLink("Workspaces", "/", also=("/console/workspaces",)),
    NavLink("Clusters", "/clusters"),
    NavLink("Studio details", "/details"),
    NavLink("AWS credentials", "/credentials"),
]
CONSOLE_NAV: list[NavLink] = [
    NavLink("Studios", f"{CONSOLE_PREFIX}/studios", also=(f"{CONSOLE_PREFIX}/studios",)),
    NavLink("Open a Studio", CONSOLE_PREFIX),
]


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str | None
    current: bool


def _items(links: list[NavLink], prefix: str, path: str) -> list[NavItem]:
    items = []
    for link in links:
        if link.path is None:
            items.append(NavItem(link.label, None, False))
            continue
        href = prefix + link.path
        targets = [href.rstrip("/") or "/"] + [prefix + also for also in link.also]
        here = path.rstrip("/") or "/"
        current = here == targets[0] or any(
            here == t or here.startswith(t + "/") for t in targets[1:]
        )
        items.append(NavItem(link.label, href, current))
    return items


def shell_nav(handler: Any) -> tuple[str, list[NavItem]]:
    """The navigation's title and links for this page; no links: no navigation."""
    path = handler.request.path
    studio = getattr(handler, "studio", None)
    if studio is not None:
        return studio.name, _items(STUDIO_NAV, handler.prefix, path)
    if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
        if getattr(handler, "user", None) is None:
            return "", []
        return "EMR console", _items(CONSOLE_NAV, "", path)
    return "", []


def role_of(handler: Any, user: Principal | None) -> str:
    """What the top bar says beside the user's name: their role, or what kind of user."""
    if user is None:
        return ""
    if user.kind == "AssumedRole" and user.issuer_arn:
        return "role " + user.issuer_arn.rsplit("/", 1)[-1]
    if user.kind == "Root":
        return "root user"
    return "IAM user"
