"""Roles: create, get, list, update, delete, trust policies, tags and permissions boundaries.

A trust policy (``AssumeRolePolicyDocument``) is validated as one: ``Principal`` required, no
``Resource``, only ``sts:`` actions, at most 2048 characters (IAM's ``ACLSizePerRole``), and
every user or role of this account it names must exist, as IAM checks when it stores the policy.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.iam import TRUST_POLICY_MAX_SIZE, Policy, policy_size
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    DeleteConflict,
    EntityAlreadyExists,
    IamBase,
    LimitExceeded,
    MalformedPolicyDocument,
    check_policy,
    drop_tags,
    merge_tags,
    now,
    page,
    unique_id,
    with_prefix,
)
from emustudio.store.iam_tables import (
    IamInlinePolicy,
    IamInstanceProfile,
    IamPolicyAttachment,
    IamRole,
)


class RoleOperations(IamBase):
    def check_trust_policy(self, session: Session, document: str) -> Policy:
        if policy_size(document) > TRUST_POLICY_MAX_SIZE:
            raise LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_MAX_SIZE}")
        policy = check_policy(document, "trust")
        own = f"arn:aws:iam::{self.account_id}:"
        for statement in policy.statements:
            if statement.principal is None:
                continue
            for kind, value in statement.principal.entries:
                if kind != "AWS" or not value.startswith(own):
                    continue
                resource = value[len(own) :]
                entity, _, rest = resource.partition("/")
                name = rest.rsplit("/", 1)[-1]
                missing = (entity == "user" and self.find_user(session, name) is None) or (
                    entity == "role" and self.find_role(session, name) is None
                )
                if missing:
                    raise MalformedPolicyDocument(f'Invalid principal in policy: "AWS":"{value}"')
        return policy

    @operation("CreateRole")
    async def create_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        tags = merge_tags([], params.get("Tags") or [], "TagsPerRole")
        boundary = params.get("PermissionsBoundary")

        def create(session: Session) -> dict[str, Any]:
            if self.find_role(session, name) is not None:
                raise EntityAlreadyExists(f"Role with name {name} already exists.")
            self.check_trust_policy(session, params["AssumeRolePolicyDocument"])
            if boundary:
                self.policy_or_raise(session, boundary)
            role = IamRole(
                id=unique_id("AROA"),
                name=name,
                name_key=name.lower(),
                path=params.get("Path") or "/",
                trust_policy=params["AssumeRolePolicyDocument"],
                description=params.get("Description"),
                max_session_duration=params.get("MaxSessionDuration") or 3600,
                created_at=now(),
                boundary_arn=boundary,
                tags=tags,
            )
            session.add(role)
            shape = self.role_shape(role)
            del shape["RoleLastUsed"]
            shape.pop("MaxSessionDuration", None)
            return {"Role": shape}

        return await self.store.tx(create)

    @operation("GetRole")
    async def get_role_op(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            return {"Role": self.role_shape(self.role_or_raise(session, params["RoleName"]))}

        return await self.store.tx(get)

    @operation("ListRoles")
    async def list_roles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix")

        def list_(session: Session) -> dict[str, Any]:
            roles = [
                r
                for r in session.exec(select(IamRole).order_by(col(IamRole.name_key)))
                if with_prefix(r.path, prefix)
            ]
            items, result = page(roles, params, "Roles")
            result["Roles"] = [self.role_shape(r, full=False) for r in items]
            return result

        return await self.store.tx(list_)

    @operation("UpdateRole")
    async def update_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            if "Description" in params:
                role.description = params["Description"]
            if "MaxSessionDuration" in params:
                role.max_session_duration = params["MaxSessionDuration"]
            session.add(role)
            return {}

        return await self.store.tx(update)

    @operation("UpdateRoleDescription")
    async def update_role_description(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            role.description = params["Description"]
            session.add(role)
            return {"Role": self.role_shape(role)}

        return await self.store.tx(update)

    @operation("UpdateAssumeRolePolicy")
    async def update_assume_role_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            self.check_trust_policy(session, params["PolicyDocument"])
            role.trust_policy = params["PolicyDocument"]
            session.add(role)
            return {}

        return await self.store.tx(update)

    @operation("DeleteRole")
    async def delete_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            if session.exec(
                select(IamInlinePolicy).where(
                    IamInlinePolicy.entity_type == "role", IamInlinePolicy.entity_id == role.id
                )
            ).first():
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            if session.exec(
                select(IamPolicyAttachment).where(
                    IamPolicyAttachment.entity_type == "role",
                    IamPolicyAttachment.entity_id == role.id,
                )
            ).first():
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            if session.exec(
                select(IamInstanceProfile).where(IamInstanceProfile.role_id == role.id)
            ).first():
                raise DeleteConflict(
                    "Cannot delete entity, must remove roles from instance profile first."
                )
            session.delete(role)
            return {}

        return await self.store.tx(delete)

    # --- tags -----------------------------------------------------------------------------------

    @operation("TagRole")
    async def tag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def tag(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            role.tags = merge_tags(role.tags, params["Tags"], "TagsPerRole")
            session.add(role)
            return {}

        return await self.store.tx(tag)

    @operation("UntagRole")
    async def untag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def untag(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            role.tags = drop_tags(role.tags, params["TagKeys"])
            session.add(role)
            return {}

        return await self.store.tx(untag)

    @operation("ListRoleTags")
    async def list_role_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            items, result = page(role.tags, params, "Tags")
            result["Tags"] = items
            return result

        return await self.store.tx(list_)

    # --- permissions boundary -------------------------------------------------------------------

    @operation("PutRolePermissionsBoundary")
    async def put_role_permissions_boundary(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def put(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            self.policy_or_raise(session, params["PermissionsBoundary"])
            role.boundary_arn = params["PermissionsBoundary"]
            session.add(role)
            return {}

        return await self.store.tx(put)

    @operation("DeleteRolePermissionsBoundary")
    async def delete_role_permissions_boundary(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            role.boundary_arn = None
            session.add(role)
            return {}

        return await self.store.tx(delete)
