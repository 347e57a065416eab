"""Groups: ``CreateGroup``, ``DescribeGroup``, ``ListGroups``, ``UpdateGroup``, ``DeleteGroup``,
``GetGroupId``. A group's one attribute of its own is its ``Description``."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.identitystore.common import (
    IdentityStoreBase,
    Validation,
    check_name,
    filter_value,
    non_empty_string,
    set_member,
    who,
)
from emustudio.services.identitystore.entities import GROUPS
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


class GroupOperations(IdentityStoreBase):
    @operation("CreateGroup")
    async def create_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = check_name("DisplayName", params.get("DisplayName"))
        attributes = {k: params[k] for k in ("Description",) if k in params}
        new_id, by = self.new_id(), who(ctx)
        return await self.tx(
            params, lambda s: GROUPS.create(s, self.store_id, new_id, name, attributes, by)
        )

    @operation("DescribeGroup")
    async def describe_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.tx(
            params, lambda s: GROUPS.shape(GROUPS.get(s, self.store_id, params["GroupId"]))
        )

    @operation("ListGroups")
    async def list_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = filter_value(params, "DisplayName")
        return await self.tx(
            params, lambda s: GROUPS.listing(s, self.store_id, params, name, GROUPS.shape, "Groups")
        )

    @operation("UpdateGroup")
    async def update_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        by = who(ctx)
        return await self.tx(params, lambda s: GROUPS.update(s, self.store_id, params, by, _apply))

    @operation("DeleteGroup")
    async def delete_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.tx(params, lambda s: GROUPS.delete(s, self.store_id, params["GroupId"]))

    @operation("GetGroupId")
    async def get_group_id(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            path, value = GROUPS.unique_attribute(params["AlternateIdentifier"])
            if path.lower() != "displayname":
                raise GROUPS.not_unique(path)
            group = (
                GROUPS.by_name(session, self.store_id, value) if isinstance(value, str) else None
            )
            return GROUPS.found_id(self.store_id, group)

        return await self.tx(params, get)
