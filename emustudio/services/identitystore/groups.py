"""Groups: ``CreateGroup``, ``DescribeGroup``, ``ListGroups``, ``UpdateGroup``, ``DeleteGroup``,
``GetGroupId`` (written once for users and groups, in ``entities.py``). A group's one attribute
of its own is its ``Description``."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from emustudio.services.identitystore.common import Validation, non_empty_string, set_member
from emustudio.services.identitystore.entities import GROUPS, EntityOperations
from emustudio.store.identity_tables import IdentityGroup


def _apply(session: Session, group: IdentityGroup, op: dict[str, Any]) -> None:
    path = op["AttributePath"]
    if path == "displayName":
        GROUPS.rename(session, group, op.get("AttributeValue"))
    elif path == "description":
        attributes = dict(group.attributes)
        set_member(attributes, "Description", op, non_empty_string, "a non-empty string")
        group.attributes = attributes
    else:
        raise Validation(f"AttributePath '{path}' is not a valid group attribute.")


class GroupOperations(
    EntityOperations, entities=GROUPS, apply=_apply, create_members=("Description",)
):
    """The group operations; see :class:`EntityOperations`."""
