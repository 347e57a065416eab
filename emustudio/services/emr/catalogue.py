"""The EMR catalogue as data for pages: release labels that support Studio, and instance types.

``ListReleaseLabels`` and ``ListSupportedInstanceTypes`` answer the same facts through the API;
AWS's Studio user policies (even the advanced one, which allows ``RunJobFlow``) do not grant
them, so the Studio's create-cluster form reads this public catalogue when the user's own call
is refused (docs/decisions.md, "The create-cluster form's lists").
"""

from __future__ import annotations

from emustudio.engines import releases


def studio_release_labels() -> list[str]:
    """Release labels a Workspace can attach to, newest first."""
    return [r.label for r in releases.releases() if r.studio]


def instance_type_names() -> list[str]:
    return [t.name for t in releases.instance_types()]
