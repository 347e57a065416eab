"""Inline policies of users, groups and roles: put, get, delete, list.

IAM's inline quota is per entity, all its inline policies together: 2048 characters for a user,
5120 for a group, 10240 for a role (white space outside strings not counted). Putting a policy
under an existing name replaces it.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.iam import max_policy_size, policy_size
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    IamBase,
    LimitExceeded,
    NoSuchEntity,
    check_policy,
    encode_document,
    page,
)
from emustudio.store.iam_tables import IamInlinePolicy

_MEMBER = {"user": "UserName", "group": "GroupName", "role": "RoleName"}


class InlinePolicyOperations(IamBase):
    def _entity(self, session: Session, kind: str, name: str) -> tuple[str, str]:
        """The entity's id and name as stored."""
        if kind == "user":
            user = self.user_or_raise(session, name)
            return user.id, user.name
        if kind == "group":
            group = self.group_or_raise(session, name)
            return group.id, group.name
        role = self.role_or_raise(session, name)
        return role.id, role.name

    @staticmethod
    def inline_policies(session: Session, kind: str, entity_id: str) -> list[IamInlinePolicy]:
        return list(
            session.exec(
                select(IamInlinePolicy)
                .where(IamInlinePolicy.entity_type == kind, IamInlinePolicy.entity_id == entity_id)
                .order_by(col(IamInlinePolicy.name))
            )
        )

    async def put_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        document = params["PolicyDocument"]
        policy_name = params["PolicyName"]
        check_policy(document)
        quota = max_policy_size(kind)  # type: ignore[arg-type]

        def put(session: Session) -> dict[str, Any]:
            entity_id, entity_name = self._entity(session, kind, params[_MEMBER[kind]])
            others = [
                p for p in self.inline_policies(session, kind, entity_id) if p.name != policy_name
            ]
            total = policy_size(document) + sum(policy_size(p.document) for p in others)
            if total > quota:
                raise LimitExceeded(
                    f"Maximum policy size of {quota} bytes exceeded for {kind} {entity_name}"
                )
            session.merge(
                IamInlinePolicy(
                    entity_type=kind, entity_id=entity_id, name=policy_name, document=document
                )
            )
            return {}

        return await self.store.tx(put)

    async def get_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        member = _MEMBER[kind]

        def get(session: Session) -> dict[str, Any]:
            entity_id, entity_name = self._entity(session, kind, params[member])
            row = session.get(IamInlinePolicy, (kind, entity_id, params["PolicyName"]))
            if row is None:
                raise NoSuchEntity(
                    f"The {kind} policy with name {params['PolicyName']} cannot be found."
                )
            return {
                member: entity_name,
                "PolicyName": row.name,
                "PolicyDocument": encode_document(row.document),
            }

        return await self.store.tx(get)

    async def delete_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            entity_id, _ = self._entity(session, kind, params[_MEMBER[kind]])
            row = session.get(IamInlinePolicy, (kind, entity_id, params["PolicyName"]))
            if row is None:
                raise NoSuchEntity(
                    f"The {kind} policy with name {params['PolicyName']} cannot be found."
                )
            session.delete(row)
            return {}

        return await self.store.tx(delete)

    async def list_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            entity_id, _ = self._entity(session, kind, params[_MEMBER[kind]])
            names = [p.name for p in self.inline_policies(session, kind, entity_id)]
            items, result = page(names, params, "PolicyNames")
            result["PolicyNames"] = items
            return result

        return await self.store.tx(list_)

    @operation("PutUserPolicy")
    async def put_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.put_inline("user", p)

    @operation("PutGroupPolicy")
    async def put_group_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.put_inline("group", p)

    @operation("PutRolePolicy")
    async def put_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.put_inline("role", p)

    @operation("GetUserPolicy")
    async def get_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.get_inline("user", p)

    @operation("GetGroupPolicy")
    async def get_group_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.get_inline("group", p)

    @operation("GetRolePolicy")
    async def get_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.get_inline("role", p)

    @operation("DeleteUserPolicy")
    async def delete_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.delete_inline("user", p)

    @operation("DeleteGroupPolicy")
    async def delete_group_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.delete_inline("group", p)

    @operation("DeleteRolePolicy")
    async def delete_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.delete_inline("role", p)

    @operation("ListUserPolicies")
    async def list_user_policies(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.list_inline("user", p)

    @operation("ListGroupPolicies")
    async def list_group_policies(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.list_inline("group", p)

    @operation("ListRolePolicies")
    async def list_role_policies(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.list_inline("role", p)
