"""Users: create, get (the caller's own with no name), update (rename, move), delete, list,
tags and permissions boundaries.

``DeleteUser`` refuses while anything still hangs off the user, in the order the IAM User Guide
lists what to remove first: password, access keys, inline policies, attached policies, groups.
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
    ValidationError,
    drop_tags,
    merge_tags,
    now,
    page,
    to_datetime,
    unique_id,
    user_not_found,
    with_prefix,
)
from emustudio.services.iam.credentials import KeyEntry
from emustudio.store.iam_tables import (
    IamAccessKey,
    IamGroupMember,
    IamInlinePolicy,
    IamLoginProfile,
    IamPolicyAttachment,
    IamUser,
)


def _exists(session: Session, statement: Any) -> bool:
    return bool(session.exec(select(func.count()).select_from(statement.subquery())).one())


class UserOperations(IamBase):
    account_created_at: float = 0.0

    @operation("CreateUser")
    async def create_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]
        tags = merge_tags([], params.get("Tags") or [], "TagsPerUser")
        boundary = params.get("PermissionsBoundary")

        def create(session: Session) -> dict[str, Any]:
            if self.find_user(session, name) is not None:
                raise EntityAlreadyExists(f"User with name {name} already exists.")
            if boundary:
                self.policy_or_raise(session, boundary)
            user = IamUser(
                id=unique_id("AIDA"),
                name=name,
                name_key=name.lower(),
                path=params.get("Path") or "/",
                created_at=now(),
                boundary_arn=boundary,
                tags=tags,
            )
            session.add(user)
            return {"User": self.user_shape(user)}

        return await self.store.tx(create)

    @operation("GetUser")
    async def get_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("UserName")
        principal = ctx.principal
        if name is None and principal is not None:
            if principal.is_root:
                return {
                    "User": {
                        "UserId": self.account_id,
                        "Arn": self.root_arn,
                        "CreateDate": to_datetime(self.account_created_at),
                    }
                }
            if principal.kind != "IAMUser":
                raise ValidationError(
                    "Must specify userName when calling with non-User credentials"
                )

        def get(session: Session) -> dict[str, Any]:
            if name is None:
                assert principal is not None
                user = session.get(IamUser, principal.user_id)
                if user is None:
                    raise user_not_found(principal.name)
            else:
                user = self.user_or_raise(session, name)
            return {"User": self.user_shape(user)}

        return await self.store.tx(get)

    @operation("ListUsers")
    async def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix")

        def list_(session: Session) -> dict[str, Any]:
            users = [
                u
                for u in session.exec(select(IamUser).order_by(col(IamUser.name_key)))
                if with_prefix(u.path, prefix)
            ]
            items, result = page(users, params, "Users")
            result["Users"] = [self.user_shape(u, full=False) for u in items]
            return result

        return await self.store.tx(list_)

    @operation("UpdateUser")
    async def update_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]
        new_name = params.get("NewUserName")
        new_path = params.get("NewPath")

        def update(session: Session) -> tuple[str, list[KeyEntry]]:
            user = self.user_or_raise(session, name)
            if (
                new_name is not None
                and new_name.lower() != user.name_key
                and self.find_user(session, new_name) is not None
            ):
                raise EntityAlreadyExists(f"User with name {new_name} already exists.")
            if new_name is not None:
                user.name, user.name_key = new_name, new_name.lower()
            if new_path is not None:
                user.path = new_path
            session.add(user)
            session.flush()
            return user.id, self.key_entries(session, user)

        user_id, entries = await self.store.tx(update)
        self.credentials.replace_user(user_id, entries)
        return {}

    @operation("DeleteUser")
    async def delete_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]

        def delete(session: Session) -> str:
            user = self.user_or_raise(session, name)
            checks: list[tuple[Any, str]] = [
                (
                    select(IamLoginProfile).where(IamLoginProfile.user_id == user.id),
                    "Cannot delete entity, must delete login profile first.",
                ),
                (
                    select(IamAccessKey).where(IamAccessKey.user_id == user.id),
                    "Cannot delete entity, must delete access keys first.",
                ),
                (
                    select(IamInlinePolicy).where(
                        IamInlinePolicy.entity_type == "user", IamInlinePolicy.entity_id == user.id
                    ),
                    "Cannot delete entity, must delete policies first.",
                ),
                (
                    select(IamPolicyAttachment).where(
                        IamPolicyAttachment.entity_type == "user",
                        IamPolicyAttachment.entity_id == user.id,
                    ),
                    "Cannot delete entity, must detach all policies first.",
                ),
                (
                    select(IamGroupMember).where(IamGroupMember.user_id == user.id),
                    "Cannot delete entity, must remove user from all groups first.",
                ),
            ]
            for statement, message in checks:
                if _exists(session, statement):
                    raise DeleteConflict(message)
            session.delete(user)
            return user.id

        user_id = await self.store.tx(delete)
        self.credentials.replace_user(user_id, [])
        return {}

    # --- tags -----------------------------------------------------------------------------------

    @operation("TagUser")
    async def tag_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def tag(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            user.tags = merge_tags(user.tags, params["Tags"], "TagsPerUser")
            session.add(user)
            return {}

        return await self.store.tx(tag)

    @operation("UntagUser")
    async def untag_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def untag(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            user.tags = drop_tags(user.tags, params["TagKeys"])
            session.add(user)
            return {}

        return await self.store.tx(untag)

    @operation("ListUserTags")
    async def list_user_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            items, result = page(user.tags, params, "Tags")
            result["Tags"] = items
            return result

        return await self.store.tx(list_)

    # --- permissions boundary -------------------------------------------------------------------

    @operation("PutUserPermissionsBoundary")
    async def put_user_permissions_boundary(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def put(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            self.policy_or_raise(session, params["PermissionsBoundary"])
            user.boundary_arn = params["PermissionsBoundary"]
            session.add(user)
            return {}

        return await self.store.tx(put)

    @operation("DeleteUserPermissionsBoundary")
    async def delete_user_permissions_boundary(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            user.boundary_arn = None
            session.add(user)
            return {}

        return await self.store.tx(delete)
