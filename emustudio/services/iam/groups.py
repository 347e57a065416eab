"""Groups and memberships.

A user belongs to at most 10 groups (IAM's ``GroupsPerUser`` quota). ``DeleteGroup`` refuses
while the group has members or policies. Adding a member twice is not an error, as in IAM.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    DeleteConflict,
    EntityAlreadyExists,
    IamBase,
    LimitExceeded,
    now,
    page,
    unique_id,
    user_not_found,
    with_prefix,
)
from emustudio.store.iam_tables import (
    IamGroup,
    IamGroupMember,
    IamInlinePolicy,
    IamPolicyAttachment,
    IamUser,
)

MAX_GROUPS_PER_USER = 10


class GroupOperations(IamBase):
    @operation("CreateGroup")
    async def create_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["GroupName"]

        def create(session: Session) -> dict[str, Any]:
            if self.find_group(session, name) is not None:
                raise EntityAlreadyExists(f"Group with name {name} already exists.")
            group = IamGroup(
                id=unique_id("AGPA"),
                name=name,
                name_key=name.lower(),
                path=params.get("Path") or "/",
                created_at=now(),
            )
            session.add(group)
            return {"Group": self.group_shape(group)}

        return await self.store.tx(create)

    @staticmethod
    def members(session: Session, group: IamGroup) -> list[IamUser]:
        return list(
            session.exec(
                select(IamUser)
                .join(IamGroupMember, col(IamGroupMember.user_id) == col(IamUser.id))
                .where(IamGroupMember.group_id == group.id)
                .order_by(col(IamUser.name_key))
            )
        )

    @staticmethod
    def groups_of(session: Session, user: IamUser) -> list[IamGroup]:
        return list(
            session.exec(
                select(IamGroup)
                .join(IamGroupMember, col(IamGroupMember.group_id) == col(IamGroup.id))
                .where(IamGroupMember.user_id == user.id)
                .order_by(col(IamGroup.name_key))
            )
        )

    @operation("GetGroup")
    async def get_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            group = self.group_or_raise(session, params["GroupName"])
            items, result = page(self.members(session, group), params, "Users")
            result["Users"] = [self.user_shape(u, full=False) for u in items]
            result["Group"] = self.group_shape(group)
            return result

        return await self.store.tx(get)

    @operation("ListGroups")
    async def list_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix")

        def list_(session: Session) -> dict[str, Any]:
            groups = [
                g
                for g in session.exec(select(IamGroup).order_by(col(IamGroup.name_key)))
                if with_prefix(g.path, prefix)
            ]
            items, result = page(groups, params, "Groups")
            result["Groups"] = [self.group_shape(g) for g in items]
            return result

        return await self.store.tx(list_)

    @operation("ListGroupsForUser")
    async def list_groups_for_user(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            items, result = page(self.groups_of(session, user), params, "Groups")
            result["Groups"] = [self.group_shape(g) for g in items]
            return result

        return await self.store.tx(list_)

    @operation("UpdateGroup")
    async def update_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        new_name = params.get("NewGroupName")

        def update(session: Session) -> dict[str, Any]:
            group = self.group_or_raise(session, params["GroupName"])
            if (
                new_name is not None
                and new_name.lower() != group.name_key
                and self.find_group(session, new_name) is not None
            ):
                raise EntityAlreadyExists(f"Group with name {new_name} already exists.")
            if new_name is not None:
                group.name, group.name_key = new_name, new_name.lower()
            if params.get("NewPath") is not None:
                group.path = params["NewPath"]
            session.add(group)
            return {}

        return await self.store.tx(update)

    @operation("DeleteGroup")
    async def delete_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            group = self.group_or_raise(session, params["GroupName"])
            if session.exec(
                select(IamGroupMember).where(IamGroupMember.group_id == group.id)
            ).first():
                raise DeleteConflict("Cannot delete entity, must remove users from group first.")
            if session.exec(
                select(IamInlinePolicy).where(
                    IamInlinePolicy.entity_type == "group", IamInlinePolicy.entity_id == group.id
                )
            ).first():
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            if session.exec(
                select(IamPolicyAttachment).where(
                    IamPolicyAttachment.entity_type == "group",
                    IamPolicyAttachment.entity_id == group.id,
                )
            ).first():
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            session.delete(group)
            return {}

        return await self.store.tx(delete)

    @operation("AddUserToGroup")
    async def add_user_to_group(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def add(session: Session) -> dict[str, Any]:
            group = self.group_or_raise(session, params["GroupName"])
            user = self.user_or_raise(session, params["UserName"])
            if session.get(IamGroupMember, (group.id, user.id)) is not None:
                return {}
            count = session.exec(
                select(func.count())
                .select_from(IamGroupMember)
                .where(IamGroupMember.user_id == user.id)
            ).one()
            if count >= MAX_GROUPS_PER_USER:
                raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
            session.add(IamGroupMember(group_id=group.id, user_id=user.id, added_at=now()))
            return {}

        return await self.store.tx(add)

    @operation("RemoveUserFromGroup")
    async def remove_user_from_group(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def remove(session: Session) -> dict[str, Any]:
            group = self.group_or_raise(session, params["GroupName"])
            user = self.user_or_raise(session, params["UserName"])
            member = session.get(IamGroupMember, (group.id, user.id))
            if member is None:
                raise user_not_found(params["UserName"])
            session.delete(member)
            return {}

        return await self.store.tx(remove)
