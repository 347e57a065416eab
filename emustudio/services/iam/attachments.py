"""Attaching managed policies to users, groups and roles, and listing who uses a policy.

An entity has at most 10 managed policies attached (IAM's ``PoliciesPerUser``,
``PoliciesPerGroup``, ``PoliciesPerRole`` default quotas). Attaching a policy twice is not an
error; detaching one that is not attached is ``NoSuchEntity``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, func, select

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.iam.aws_managed import AWS_MANAGED
from emustudio.services.iam.common import IamBase, LimitExceeded, now, page, with_prefix
from emustudio.services.iam.policies import check_policy_arn, policy_not_found
from emustudio.store.iam_tables import (
    IamGroup,
    IamManagedPolicy,
    IamPolicyAttachment,
    IamRole,
    IamUser,
)

MAX_ATTACHED = 10
_QUOTA = {"user": "PoliciesPerUser", "group": "PoliciesPerGroup", "role": "PoliciesPerRole"}


class AttachmentOperations(IamBase):
    def entity_or_raise(self, session: Session, kind: str, name: str) -> str:
        if kind == "user":
            return self.user_or_raise(session, name).id
        if kind == "group":
            return self.group_or_raise(session, name).id
        return self.role_or_raise(session, name).id

    async def attach(self, kind: str, name: str, arn: str) -> dict[str, Any]:
        def attach(session: Session) -> dict[str, Any]:
            entity_id = self.entity_or_raise(session, kind, name)
            check_policy_arn(arn)
            self.policy_or_raise(session, arn)
            if session.get(IamPolicyAttachment, (arn, kind, entity_id)) is not None:
                return {}
            count = session.exec(
                select(func.count())
                .select_from(IamPolicyAttachment)
                .where(
                    IamPolicyAttachment.entity_type == kind,
                    IamPolicyAttachment.entity_id == entity_id,
                )
            ).one()
            if count >= MAX_ATTACHED:
                raise LimitExceeded(f"Cannot exceed quota for {_QUOTA[kind]}: {MAX_ATTACHED}")
            session.add(
                IamPolicyAttachment(
                    policy_arn=arn, entity_type=kind, entity_id=entity_id, attached_at=now()
                )
            )
            return {}

        return await self.store.tx(attach)

    async def detach(self, kind: str, name: str, arn: str) -> dict[str, Any]:
        def detach(session: Session) -> dict[str, Any]:
            entity_id = self.entity_or_raise(session, kind, name)
            check_policy_arn(arn)
            row = session.get(IamPolicyAttachment, (arn, kind, entity_id))
            if row is None:
                raise policy_not_found(arn)
            session.delete(row)
            return {}

        return await self.store.tx(detach)

    def attached_policies(
        self, session: Session, kind: str, entity_id: str
    ) -> list[tuple[str, str, str]]:
        """``(name, arn, path)`` of every managed policy attached to the entity, by name."""
        rows = session.exec(
            select(IamPolicyAttachment).where(
                IamPolicyAttachment.entity_type == kind, IamPolicyAttachment.entity_id == entity_id
            )
        )
        out: list[tuple[str, str, str]] = []
        for row in rows:
            builtin = AWS_MANAGED.get(row.policy_arn)
            policy = builtin or session.get(IamManagedPolicy, row.policy_arn)
            if policy is not None:
                out.append((policy.name, policy.arn, policy.path))
        return sorted(out, key=lambda item: (item[0].lower(), item[1]))

    async def list_attached(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        member = {"user": "UserName", "group": "GroupName", "role": "RoleName"}[kind]

        def list_(session: Session) -> dict[str, Any]:
            entity_id = self.entity_or_raise(session, kind, params[member])
            found = [
                {"PolicyName": name, "PolicyArn": arn}
                for name, arn, path in self.attached_policies(session, kind, entity_id)
                if with_prefix(path, params.get("PathPrefix"))
            ]
            items, result = page(found, params, "AttachedPolicies")
            result["AttachedPolicies"] = items
            return result

        return await self.store.tx(list_)

    @operation("AttachUserPolicy")
    async def attach_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.attach("user", p["UserName"], p["PolicyArn"])

    @operation("AttachGroupPolicy")
    async def attach_group_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.attach("group", p["GroupName"], p["PolicyArn"])

    @operation("AttachRolePolicy")
    async def attach_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.attach("role", p["RoleName"], p["PolicyArn"])

    @operation("DetachUserPolicy")
    async def detach_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.detach("user", p["UserName"], p["PolicyArn"])

    @operation("DetachGroupPolicy")
    async def detach_group_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.detach("group", p["GroupName"], p["PolicyArn"])

    @operation("DetachRolePolicy")
    async def detach_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.detach("role", p["RoleName"], p["PolicyArn"])

    @operation("ListAttachedUserPolicies")
    async def list_attached_user_policies(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.list_attached("user", params)

    @operation("ListAttachedGroupPolicies")
    async def list_attached_group_policies(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.list_attached("group", params)

    @operation("ListAttachedRolePolicies")
    async def list_attached_role_policies(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.list_attached("role", params)

    @staticmethod
    def _users_of_policy(
        session: Session, kind: str, arn: str, usage: str | None, prefix: str | None
    ) -> list[tuple[str, str]]:
        """``(name, id)`` of the entities of ``kind`` that use the policy, by name."""
        ids: set[str] = set()
        if usage != "PermissionsBoundary":
            ids |= set(
                session.exec(
                    select(IamPolicyAttachment.entity_id).where(
                        IamPolicyAttachment.policy_arn == arn,
                        IamPolicyAttachment.entity_type == kind,
                    )
                )
            )
        rows: list[IamUser | IamGroup | IamRole] = []
        if kind == "user":
            if usage == "PermissionsBoundary":
                ids |= set(session.exec(select(IamUser.id).where(IamUser.boundary_arn == arn)))
            rows += [u for u in (session.get(IamUser, i) for i in ids) if u is not None]
        elif kind == "role":
            if usage == "PermissionsBoundary":
                ids |= set(session.exec(select(IamRole.id).where(IamRole.boundary_arn == arn)))
            rows += [r for r in (session.get(IamRole, i) for i in ids) if r is not None]
        else:
            rows += [g for g in (session.get(IamGroup, i) for i in ids) if g is not None]
        return [
            (row.name, row.id)
            for row in sorted(rows, key=lambda r: r.name_key)
            if with_prefix(row.path, prefix)
        ]

    @operation("ListEntitiesForPolicy")
    async def list_entities_for_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn = params["PolicyArn"]
        wanted = params.get("EntityFilter")
        usage = params.get("PolicyUsageFilter")
        prefix = params.get("PathPrefix")

        def list_(session: Session) -> dict[str, Any]:
            check_policy_arn(arn)
            if not self.policy_exists(session, arn):
                raise policy_not_found(arn)
            entries: list[tuple[str, dict[str, str]]] = []
            kinds = {"User": "user", "Group": "group", "Role": "role"}
            for label, kind in kinds.items():
                if wanted in kinds and wanted != label:
                    continue
                entries += [
                    (label, {f"{label}Name": name, f"{label}Id": entity_id})
                    for name, entity_id in self._users_of_policy(session, kind, arn, usage, prefix)
                ]
            items, result = page(entries, params, "PolicyUsers")
            for label in kinds:
                result[f"Policy{label}s"] = [e for k, e in items if k == label]
            return result

        return await self.store.tx(list_)
