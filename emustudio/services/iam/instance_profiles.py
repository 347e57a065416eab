"""Instance profiles: what an EC2 instance (an EMR node) takes its role from.

As IAM: a profile holds at most one role (``LimitExceeded`` for a second), its name is unique
without regard to case, a profile with a role cannot be deleted (``DeleteConflict``), and a role
that is in a profile cannot be deleted either (checked in ``roles.py``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    DeleteConflict,
    EntityAlreadyExists,
    IamBase,
    LimitExceeded,
    NoSuchEntity,
    merge_tags,
    now,
    page,
    to_datetime,
    unique_id,
    with_prefix,
)
from emustudio.store.iam_tables import IamInstanceProfile, IamRole


class InstanceProfileOperations(IamBase):
    @staticmethod
    def find_instance_profile(session: Session, name: str) -> IamInstanceProfile | None:
        return session.exec(
            select(IamInstanceProfile).where(IamInstanceProfile.name_key == name.lower())
        ).first()

    def instance_profile_or_raise(self, session: Session, name: str) -> IamInstanceProfile:
        profile = self.find_instance_profile(session, name)
        if profile is None:
            raise NoSuchEntity(f"Instance Profile {name} cannot be found.")
        return profile

    def instance_profile_role(self, session: Session, name: str) -> IamRole | None:
        """The role of the named profile (None when it has none); NoSuchEntity if no profile."""
        profile = self.instance_profile_or_raise(session, name)
        return None if profile.role_id is None else session.get(IamRole, profile.role_id)

    def instance_profile_shape(
        self, session: Session, profile: IamInstanceProfile
    ) -> dict[str, Any]:
        roles = []
        if profile.role_id is not None:
            role = session.get(IamRole, profile.role_id)
            if role is not None:
                roles.append(self.role_shape(role, full=False))
        out: dict[str, Any] = {
            "Path": profile.path,
            "InstanceProfileName": profile.name,
            "InstanceProfileId": profile.id,
            "Arn": self.arn("instance-profile", profile.path, profile.name),
            "CreateDate": to_datetime(profile.created_at),
            "Roles": roles,
        }
        if profile.tags:
            out["Tags"] = list(profile.tags)
        return out

    @operation("CreateInstanceProfile")
    async def create_instance_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        name = params["InstanceProfileName"]
        tags = merge_tags([], params.get("Tags") or [], "TagsPerInstanceProfile")

        def create(session: Session) -> dict[str, Any]:
            if self.find_instance_profile(session, name) is not None:
                raise EntityAlreadyExists(f"Instance Profile {name} already exists.")
            profile = IamInstanceProfile(
                id=unique_id("AIPA"), name=name, name_key=name.lower(),
                path=params.get("Path") or "/", created_at=now(), tags=tags,
            )  # fmt: skip
            session.add(profile)
            return {"InstanceProfile": self.instance_profile_shape(session, profile)}

        return await self.store.tx(create)

    @operation("GetInstanceProfile")
    async def get_instance_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            profile = self.instance_profile_or_raise(session, params["InstanceProfileName"])
            return {"InstanceProfile": self.instance_profile_shape(session, profile)}

        return await self.store.tx(get)

    @operation("ListInstanceProfiles")
    async def list_instance_profiles(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        prefix = params.get("PathPrefix")

        def list_(session: Session) -> dict[str, Any]:
            rows = session.exec(
                select(IamInstanceProfile).order_by(col(IamInstanceProfile.name_key))
            )
            profiles = [p for p in rows if with_prefix(p.path, prefix)]
            items, result = page(profiles, params, "InstanceProfiles")
            result["InstanceProfiles"] = [self.instance_profile_shape(session, p) for p in items]
            return result

        return await self.store.tx(list_)

    @operation("ListInstanceProfilesForRole")
    async def list_instance_profiles_for_role(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            role = self.role_or_raise(session, params["RoleName"])
            rows = session.exec(
                select(IamInstanceProfile)
                .where(IamInstanceProfile.role_id == role.id)
                .order_by(col(IamInstanceProfile.name_key))
            )
            items, result = page(list(rows), params, "InstanceProfiles")
            result["InstanceProfiles"] = [self.instance_profile_shape(session, p) for p in items]
            return result

        return await self.store.tx(list_)

    @operation("AddRoleToInstanceProfile")
    async def add_role_to_instance_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def add(session: Session) -> dict[str, Any]:
            profile = self.instance_profile_or_raise(session, params["InstanceProfileName"])
            role = self.role_or_raise(session, params["RoleName"])
            if profile.role_id is not None:
                raise LimitExceeded("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
            profile.role_id = role.id
            session.add(profile)
            return {}

        return await self.store.tx(add)

    @operation("RemoveRoleFromInstanceProfile")
    async def remove_role_from_instance_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def remove(session: Session) -> dict[str, Any]:
            profile = self.instance_profile_or_raise(session, params["InstanceProfileName"])
            role = self.role_or_raise(session, params["RoleName"])
            if profile.role_id != role.id:
                raise NoSuchEntity(
                    f"Role {role.name} in Instance Profile {profile.name} cannot be found."
                )
            profile.role_id = None
            session.add(profile)
            return {}

        return await self.store.tx(remove)

    @operation("DeleteInstanceProfile")
    async def delete_instance_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            profile = self.instance_profile_or_raise(session, params["InstanceProfileName"])
            if profile.role_id is not None:
                raise DeleteConflict(
                    "Cannot delete entity, must remove roles from instance profile first."
                )
            session.delete(profile)
            return {}

        return await self.store.tx(delete)
