"""Group memberships: create, delete, describe, find and list them; ``IsMemberInGroups``.
A member is a user (``MemberId.UserId``)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.identitystore.common import (
    Conflict,
    IdentityStoreBase,
    ResourceNotFound,
    Validation,
    epoch,
    page,
    resource_id,
    who,
)
from emustudio.services.identitystore.entities import GROUPS, USERS
from emustudio.store.identity_tables import IdentityMembership, IdentityUser


def _arn(membership_id: str) -> str:
    return f"arn:aws:identitystore:::membership/{membership_id}"


def _membership_of(session: Session, group_id: str, user_id: str) -> IdentityMembership | None:
    return session.exec(
        select(IdentityMembership).where(
            IdentityMembership.group_id == group_id, IdentityMembership.user_id == user_id
        )
    ).first()


class MembershipOperations(IdentityStoreBase):
    def _member(self, session: Session, member: dict[str, Any]) -> IdentityUser:
        if "UserId" not in member:
            raise Validation("MemberId must name a UserId.")
        return USERS.get(session, self.store_id, member["UserId"])

    def _membership(self, session: Session, given: str) -> IdentityMembership:
        membership_id = resource_id(given)
        m = session.get(IdentityMembership, membership_id)
        if m is None or m.store_id != self.store_id:
            raise ResourceNotFound("GROUP_MEMBERSHIP", membership_id)
        return m

    def _shape(self, m: IdentityMembership) -> dict[str, Any]:
        return {
            "IdentityStoreId": self.store_id,
            "MembershipId": m.id,
            "MembershipArn": _arn(m.id),
            "GroupId": m.group_id,
            "MemberId": {"UserId": m.user_id},
            "CreatedAt": epoch(m.created_at),
            "CreatedBy": m.created_by,
            "UpdatedAt": epoch(m.created_at),
            "UpdatedBy": m.created_by,
        }

    @operation("CreateGroupMembership")
    async def create_group_membership(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def create(session: Session) -> dict[str, Any]:
            group = GROUPS.get(session, self.store_id, params["GroupId"])
            user = self._member(session, params["MemberId"])
            if _membership_of(session, group.id, user.id) is not None:
                raise Conflict("Member and Group relationship already exists.")
            m = IdentityMembership(
                id=self.new_id(),
                store_id=self.store_id,
                group_id=group.id,
                user_id=user.id,
                created_at=time.time(),
                created_by=who(ctx),
            )
            session.add(m)
            return {
                "IdentityStoreId": self.store_id,
                "MembershipId": m.id,
                "MembershipArn": _arn(m.id),
            }

        return await self.tx(params, create)

    @operation("DeleteGroupMembership")
    async def delete_group_membership(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            session.delete(self._membership(session, params["MembershipId"]))
            return {}

        return await self.tx(params, delete)

    @operation("DescribeGroupMembership")
    async def describe_group_membership(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.tx(
            params, lambda s: self._shape(self._membership(s, params["MembershipId"]))
        )

    @operation("GetGroupMembershipId")
    async def get_group_membership_id(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            group = GROUPS.get(session, self.store_id, params["GroupId"])
            user = self._member(session, params["MemberId"])
            m = _membership_of(session, group.id, user.id)
            if m is None:
                raise ResourceNotFound("GROUP_MEMBERSHIP")
            return {"IdentityStoreId": self.store_id, "MembershipId": m.id}

        return await self.tx(params, get)

    def _list(
        self, session: Session, params: dict[str, Any], clause: ColumnElement[bool], bound: str
    ) -> dict[str, Any]:
        rows = list(
            session.exec(
                select(IdentityMembership)
                .where(IdentityMembership.store_id == self.store_id, clause)
                .order_by(col(IdentityMembership.created_at), col(IdentityMembership.id))
            )
        )
        found, token = page(rows, params, bound)
        return pages.with_token({"GroupMemberships": [self._shape(m) for m in found]}, token)

    @operation("ListGroupMemberships")
    async def list_group_memberships(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            group = GROUPS.get(session, self.store_id, params["GroupId"])
            bound = pages.fingerprint("ListGroupMemberships", group.id)
            return self._list(session, params, GROUPS.membership(group.id), bound)

        return await self.tx(params, list_)

    @operation("ListGroupMembershipsForMember")
    async def list_group_memberships_for_member(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            user = self._member(session, params["MemberId"])
            bound = pages.fingerprint("ListGroupMembershipsForMember", user.id)
            return self._list(session, params, USERS.membership(user.id), bound)

        return await self.tx(params, list_)

    @operation("IsMemberInGroups")
    async def is_member_in_groups(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def check(session: Session) -> dict[str, Any]:
            user = self._member(session, params["MemberId"])
            results = []
            for given in params["GroupIds"]:
                group_id = resource_id(given)
                exists = _membership_of(session, group_id, user.id) is not None
                results.append(
                    {
                        "GroupId": group_id,
                        "MemberId": {"UserId": user.id},
                        "MembershipExists": exists,
                    }
                )
            return {"Results": results}

        return await self.tx(params, check)
