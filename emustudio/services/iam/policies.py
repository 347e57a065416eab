"""Managed policies: create, get, list, delete, versions, attachments and tags.

A customer managed policy has up to five versions, one of them the default; its documents are
validated as managed policies (``Version`` 2012-10-17, at most 6144 characters). It cannot be
deleted while attached or used as a permissions boundary, nor while it has versions other than
the default. AWS managed policies (``arn:aws:iam::aws:policy/...``) are built in and read-only.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, func, select

from emustudio.context import RequestContext
from emustudio.iam import MANAGED_POLICY_MAX_SIZE
from emustudio.services.base import operation
from emustudio.services.iam.aws_managed import AWS_MANAGED, AwsManagedPolicy
from emustudio.services.iam.common import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    IamBase,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    check_policy,
    drop_tags,
    encode_document,
    merge_tags,
    now,
    page,
    to_datetime,
    unique_id,
    with_prefix,
)
from emustudio.store.iam_tables import (
    IamManagedPolicy,
    IamPolicyAttachment,
    IamPolicyVersion,
    IamRole,
    IamUser,
)

MAX_VERSIONS = 5


def policy_not_found(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} was not found.")


def check_policy_arn(arn: str) -> None:
    parts = arn.split(":", 5)
    if (
        len(parts) < 6
        or parts[0] != "arn"
        or parts[2] != "iam"
        or not parts[5].startswith("policy/")
    ):
        raise InvalidInput(f"ARN {arn} is not valid.")


class PolicyOperations(IamBase):
    # --- helpers --------------------------------------------------------------------------------

    def managed_or_raise(self, session: Session, arn: str) -> IamManagedPolicy:
        check_policy_arn(arn)
        policy = session.get(IamManagedPolicy, arn)
        if policy is None:
            raise policy_not_found(arn)
        return policy

    def read_only(self, ctx: RequestContext, action: str, arn: str) -> AccessDenied:
        caller = ctx.principal.arn if ctx.principal else self.root_arn
        return AccessDenied(
            f"User: {caller} is not authorized to perform: iam:{action} on resource: policy {arn}"
        )

    @staticmethod
    def usage(session: Session, arn: str) -> tuple[int, int]:
        attached = session.exec(
            select(func.count())
            .select_from(IamPolicyAttachment)
            .where(IamPolicyAttachment.policy_arn == arn)
        ).one()
        boundaries = (
            session.exec(
                select(func.count()).select_from(IamUser).where(IamUser.boundary_arn == arn)
            ).one()
            + session.exec(
                select(func.count()).select_from(IamRole).where(IamRole.boundary_arn == arn)
            ).one()
        )
        return int(attached), int(boundaries)

    def policy_shape(
        self,
        session: Session,
        policy: IamManagedPolicy | AwsManagedPolicy,
        *,
        description: bool = True,
    ) -> dict[str, Any]:
        attached, boundaries = self.usage(session, policy.arn)
        if isinstance(policy, AwsManagedPolicy):
            default, created, updated, tags = (
                policy.version,
                policy.created,
                policy.updated,
                [],
            )
        else:
            default, created, updated, tags = (
                policy.default_version,
                policy.created_at,
                policy.updated_at,
                policy.tags,
            )
        out: dict[str, Any] = {
            "PolicyName": policy.name,
            "PolicyId": policy.id,
            "Arn": policy.arn,
            "Path": policy.path,
            "DefaultVersionId": default,
            "AttachmentCount": attached,
            "PermissionsBoundaryUsageCount": boundaries,
            "IsAttachable": True,
            "CreateDate": to_datetime(created),
            "UpdateDate": to_datetime(updated),
        }
        if description and policy.description:
            out["Description"] = policy.description
        if tags:
            out["Tags"] = list(tags)
        return out

    @staticmethod
    def versions(session: Session, arn: str) -> list[IamPolicyVersion]:
        rows = session.exec(select(IamPolicyVersion).where(IamPolicyVersion.policy_arn == arn))
        return sorted(rows, key=lambda v: int(v.version_id[1:].split(".")[0]), reverse=True)

    # --- policies -------------------------------------------------------------------------------

    @operation("CreatePolicy")
    async def create_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["PolicyName"]
        path = params.get("Path") or "/"
        check_policy(params["PolicyDocument"], max_size=MANAGED_POLICY_MAX_SIZE, managed=True)
        tags = merge_tags([], params.get("Tags") or [], "TagsPerPolicy")

        def create(session: Session) -> dict[str, Any]:
            taken = session.exec(
                select(IamManagedPolicy).where(IamManagedPolicy.name_key == name.lower())
            ).first()
            if taken is not None:
                raise EntityAlreadyExists(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            moment = now()
            policy = IamManagedPolicy(
                arn=self.arn("policy", path, name),
                id=unique_id("ANPA"),
                name=name,
                name_key=name.lower(),
                path=path,
                description=params.get("Description"),
                created_at=moment,
                updated_at=moment,
                tags=tags,
            )
            session.add(policy)
            session.flush()
            session.add(
                IamPolicyVersion(
                    policy_arn=policy.arn,
                    version_id="v1",
                    document=params["PolicyDocument"],
                    created_at=moment,
                )
            )
            return {"Policy": self.policy_shape(session, policy)}

        return await self.store.tx(create)

    @operation("GetPolicy")
    async def get_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]

        def get(session: Session) -> dict[str, Any]:
            builtin = AWS_MANAGED.get(arn)
            if builtin is not None:
                return {"Policy": self.policy_shape(session, builtin)}
            return {"Policy": self.policy_shape(session, self.managed_or_raise(session, arn))}

        return await self.store.tx(get)

    @operation("ListPolicies")
    async def list_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        scope = params.get("Scope") or "All"
        only_attached = bool(params.get("OnlyAttached"))
        usage = params.get("PolicyUsageFilter")
        prefix = params.get("PathPrefix")

        def list_(session: Session) -> dict[str, Any]:
            candidates: list[IamManagedPolicy | AwsManagedPolicy] = []
            if scope in ("All", "AWS"):
                candidates += list(AWS_MANAGED.values())
            if scope in ("All", "Local"):
                candidates += list(session.exec(select(IamManagedPolicy)))
            shapes = []
            for policy in sorted(candidates, key=lambda p: (p.name.lower(), p.arn)):
                if not with_prefix(policy.path, prefix):
                    continue
                shape = self.policy_shape(session, policy, description=False)
                shape.pop("Tags", None)
                attached = shape["AttachmentCount"]
                boundary = shape["PermissionsBoundaryUsageCount"]
                if only_attached and not (attached or boundary):
                    continue
                if usage == "PermissionsPolicy" and not attached:
                    continue
                if usage == "PermissionsBoundary" and not boundary:
                    continue
                shapes.append(shape)
            items, result = page(shapes, params, "Policies")
            result["Policies"] = items
            return result

        return await self.store.tx(list_)

    @operation("DeletePolicy")
    async def delete_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]
        if arn in AWS_MANAGED:
            raise self.read_only(ctx, "DeletePolicy", arn)

        def delete(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, arn)
            attached, boundaries = self.usage(session, arn)
            if attached or boundaries:
                raise DeleteConflict("Cannot delete a policy attached to entities.")
            versions = self.versions(session, arn)
            if len(versions) > 1:
                raise DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must"
                    " delete the policy's versions. The default version is deleted with the"
                    " policy."
                )
            for version in versions:
                session.delete(version)
            session.flush()
            session.delete(policy)
            return {}

        return await self.store.tx(delete)

    # --- versions -------------------------------------------------------------------------------

    @operation("CreatePolicyVersion")
    async def create_policy_version(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn = params["PolicyArn"]
        if arn in AWS_MANAGED:
            raise self.read_only(ctx, "CreatePolicyVersion", arn)
        check_policy(params["PolicyDocument"], max_size=MANAGED_POLICY_MAX_SIZE, managed=True)

        def create(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, arn)
            if len(self.versions(session, arn)) >= MAX_VERSIONS:
                raise LimitExceeded(
                    f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create"
                    " a new version, you must delete an existing version."
                )
            moment = now()
            version = IamPolicyVersion(
                policy_arn=arn,
                version_id=f"v{policy.next_version}",
                document=params["PolicyDocument"],
                created_at=moment,
            )
            policy.next_version += 1
            if params.get("SetAsDefault"):
                policy.default_version = version.version_id
                policy.updated_at = moment
            session.add(version)
            session.add(policy)
            return {
                "PolicyVersion": {
                    "VersionId": version.version_id,
                    "IsDefaultVersion": policy.default_version == version.version_id,
                    "CreateDate": to_datetime(moment),
                }
            }

        return await self.store.tx(create)

    @operation("GetPolicyVersion")
    async def get_policy_version(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn, version_id = params["PolicyArn"], params["VersionId"]
        missing = NoSuchEntity(
            f"Policy {arn} version {version_id} does not exist or is not attachable."
        )

        def get(session: Session) -> dict[str, Any]:
            builtin = AWS_MANAGED.get(arn)
            if builtin is not None:
                if version_id != builtin.version:
                    raise missing
                return {
                    "PolicyVersion": {
                        "Document": encode_document(builtin.document),
                        "VersionId": builtin.version,
                        "IsDefaultVersion": True,
                        "CreateDate": to_datetime(builtin.updated),
                    }
                }
            policy = self.managed_or_raise(session, arn)
            version = session.get(IamPolicyVersion, (arn, version_id))
            if version is None:
                raise missing
            return {
                "PolicyVersion": {
                    "Document": encode_document(version.document),
                    "VersionId": version.version_id,
                    "IsDefaultVersion": policy.default_version == version.version_id,
                    "CreateDate": to_datetime(version.created_at),
                }
            }

        return await self.store.tx(get)

    @operation("ListPolicyVersions")
    async def list_policy_versions(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn = params["PolicyArn"]

        def list_(session: Session) -> dict[str, Any]:
            builtin = AWS_MANAGED.get(arn)
            if builtin is not None:
                entries = [
                    {
                        "VersionId": builtin.version,
                        "IsDefaultVersion": True,
                        "CreateDate": to_datetime(builtin.updated),
                    }
                ]
            else:
                policy = self.managed_or_raise(session, arn)
                entries = [
                    {
                        "VersionId": v.version_id,
                        "IsDefaultVersion": v.version_id == policy.default_version,
                        "CreateDate": to_datetime(v.created_at),
                    }
                    for v in self.versions(session, arn)
                ]
            items, result = page(entries, params, "Versions")
            result["Versions"] = items
            return result

        return await self.store.tx(list_)

    @operation("DeletePolicyVersion")
    async def delete_policy_version(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn, version_id = params["PolicyArn"], params["VersionId"]
        if arn in AWS_MANAGED:
            raise self.read_only(ctx, "DeletePolicyVersion", arn)

        def delete(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, arn)
            version = session.get(IamPolicyVersion, (arn, version_id))
            if version is None:
                raise NoSuchEntity(
                    f"Policy {arn} version {version_id} does not exist or is not attachable."
                )
            if version_id == policy.default_version:
                raise DeleteConflict("Cannot delete the default version of a policy.")
            session.delete(version)
            return {}

        return await self.store.tx(delete)

    @operation("SetDefaultPolicyVersion")
    async def set_default_policy_version(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn, version_id = params["PolicyArn"], params["VersionId"]
        if arn in AWS_MANAGED:
            raise self.read_only(ctx, "SetDefaultPolicyVersion", arn)

        def set_default(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, arn)
            if session.get(IamPolicyVersion, (arn, version_id)) is None:
                raise NoSuchEntity(
                    f"Policy {arn} version {version_id} does not exist or is not attachable."
                )
            policy.default_version = version_id
            policy.updated_at = now()
            session.add(policy)
            return {}

        return await self.store.tx(set_default)

    # --- tags -----------------------------------------------------------------------------------

    @operation("TagPolicy")
    async def tag_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def tag(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, params["PolicyArn"])
            policy.tags = merge_tags(policy.tags, params["Tags"], "TagsPerPolicy")
            session.add(policy)
            return {}

        return await self.store.tx(tag)

    @operation("UntagPolicy")
    async def untag_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def untag(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, params["PolicyArn"])
            policy.tags = drop_tags(policy.tags, params["TagKeys"])
            session.add(policy)
            return {}

        return await self.store.tx(untag)

    @operation("ListPolicyTags")
    async def list_policy_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            policy = self.managed_or_raise(session, params["PolicyArn"])
            items, result = page(policy.tags, params, "Tags")
            result["Tags"] = items
            return result

        return await self.store.tx(list_)
