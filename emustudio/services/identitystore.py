"""The Identity Store (``identitystore``, JSON protocol): users, groups and memberships.

The gateway serves one identity store. Its id is ``d-`` and the first 10 hex digits of
``sha256("emustudio-identitystore/<account id>")``: stable, setting-free and the same after a
restart (:func:`identity_store_id`). A request naming another store (by id or ARN) is
``ResourceNotFoundException`` (``ResourceType`` ``IDENTITY_STORE``).

User, group and membership ids are ``<10 hex>-<uuid4>``, the 10 hex digits being the store's,
as Identity Center issues them; an id may also be given as its ARN
(``arn:aws:identitystore:::user/<id>``). ``UserName`` and group ``DisplayName`` are unique in
the store, case-insensitively (``ConflictException``, ``Duplicate UserName`` /
``Duplicate GroupDisplayName``); ``ListUsers``/``ListGroups`` filters and ``GetUserId``/
``GetGroupId`` match them the same way. Deleting a user or a group deletes its memberships.
Users created through the API carry no ``ExternalIds``, so an ``ExternalId`` lookup finds
nothing. ``NextToken`` is opaque and bound to the call's parameters. ``ListIdentityStores`` and
``DescribeIdentityStore`` answer the one store, so a client can discover its id.

:class:`IdentityStoreDirectory` resolves the users and groups of EMR Studio session mappings
against these tables.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import Service, operation
from emustudio.services.emr.common import InvalidRequest
from emustudio.services.emr.session_mappings import IdentityDirectory
from emustudio.store import Store
from emustudio.store.identity_tables import IdentityGroup, IdentityMembership, IdentityUser

DEFAULT_MAX_RESULTS = 100
RESERVED_NAMES = frozenset({"administrator", "awsadministrators"})
STORE_ARN = re.compile(r"arn:aws[a-z-]*:identitystore::(\d{12}):identitystore/(.+)")
RESOURCE_ARN = re.compile(r"arn:aws[a-z-]*:identitystore:::(user|group|membership)/(.+)")

# UpdateUser's attribute paths (camelCase, as the API takes them) and the member each names.
USER_SCALARS = {
    p: p[0].upper() + p[1:]
    for p in (
        "displayName",
        "nickName",
        "profileUrl",
        "userType",
        "title",
        "preferredLanguage",
        "locale",
        "timezone",
        "website",
        "birthdate",
    )
}
USER_LISTS = {
    "emails": "Emails",
    "addresses": "Addresses",
    "phoneNumbers": "PhoneNumbers",
    "photos": "Photos",
    "roles": "Roles",
}
NAME_PARTS = {
    p: p[0].upper() + p[1:]
    for p in (
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    )
}
USER_CREATE_MEMBERS = (
    "Name",
    "DisplayName",
    "NickName",
    "ProfileUrl",
    "Emails",
    "Addresses",
    "PhoneNumbers",
    "UserType",
    "Title",
    "PreferredLanguage",
    "Locale",
    "Timezone",
    "Photos",
    "Website",
    "Birthdate",
    "Roles",
    "Extensions",
)

T = TypeVar("T")
R = TypeVar("R", IdentityUser, IdentityGroup)


class ResourceNotFound(AwsError):
    code = "ResourceNotFoundException"

    def __init__(self, resource_type: str, resource_id: str | None = None) -> None:
        extra: dict[str, Any] = {"ResourceType": resource_type}
        if resource_id is not None:
            extra["ResourceId"] = resource_id
        super().__init__(f"{resource_type} not found.", **extra)


class Conflict(AwsError):
    code = "ConflictException"

    def __init__(self, message: str, reason: str = "UNIQUENESS_CONSTRAINT_VIOLATION") -> None:
        super().__init__(message, Reason=reason)


class Validation(AwsError):
    code = "ValidationException"


def identity_store_id(account_id: str) -> str:
    digest = hashlib.sha256(f"emustudio-identitystore/{account_id}".encode()).hexdigest()
    return f"d-{digest[:10]}"


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _resource_id(value: str) -> str:
    found = RESOURCE_ARN.fullmatch(value)
    return found.group(2) if found else value


def _pascal(value: Any) -> Any:
    """A document's keys in the model's PascalCase (``{"value": …}`` → ``{"Value": …}``)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def _check_name(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Validation(f"{kind} must be a non-empty string.")
    if value.lower() in RESERVED_NAMES:
        raise Validation(f"{kind} '{value}' is reserved.")
    return value


def _page(items: list[T], params: dict[str, Any], fingerprint: str) -> tuple[list[T], str | None]:
    size = params.get("MaxResults") or DEFAULT_MAX_RESULTS
    invalid = Validation("The NextToken is invalid.")
    return pages.page(items, params.get("NextToken"), size, invalid, fingerprint)


class IdentityStoreService(Service):
    name = "identitystore"

    def __init__(self, store: Store, *, region: str, account_id: str) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.store_id = identity_store_id(account_id)
        self.id_prefix = self.store_id[2:]

    # -- helpers ---------------------------------------------------------------------------

    def _check_store(self, params: dict[str, Any]) -> None:
        given = params.get("IdentityStoreId", "")
        found = STORE_ARN.fullmatch(given)
        if found:
            account, given = found.groups()
            if account != self.account_id:
                raise ResourceNotFound("IDENTITY_STORE", given)
        if given != self.store_id:
            raise ResourceNotFound("IDENTITY_STORE", given)

    def _new_id(self) -> str:
        return f"{self.id_prefix}-{uuid.uuid4()}"

    @staticmethod
    def _who(ctx: RequestContext) -> str:
        return ctx.principal.arn if ctx.principal is not None else "unknown"

    async def _tx(self, params: dict[str, Any], fn: Callable[[Session], T]) -> T:
        self._check_store(params)
        return await self.store.tx(fn)

    def _user(self, session: Session, user_id: str) -> IdentityUser:
        user_id = _resource_id(user_id)
        user = session.get(IdentityUser, user_id)
        if user is None or user.store_id != self.store_id:
            raise ResourceNotFound("USER", user_id)
        return user

    def _group(self, session: Session, group_id: str) -> IdentityGroup:
        group_id = _resource_id(group_id)
        group = session.get(IdentityGroup, group_id)
        if group is None or group.store_id != self.store_id:
            raise ResourceNotFound("GROUP", group_id)
        return group

    def _member_user(self, session: Session, member: dict[str, Any]) -> IdentityUser:
        if "UserId" not in member:
            raise Validation("MemberId must name a UserId.")
        return self._user(session, member["UserId"])

    def _user_by_name(self, session: Session, name: str) -> IdentityUser | None:
        return session.exec(
            select(IdentityUser).where(
                IdentityUser.store_id == self.store_id, IdentityUser.name_key == name.lower()
            )
        ).first()

    def _group_by_name(self, session: Session, name: str) -> IdentityGroup | None:
        return session.exec(
            select(IdentityGroup).where(
                IdentityGroup.store_id == self.store_id, IdentityGroup.name_key == name.lower()
            )
        ).first()

    def _user_shape(self, user: IdentityUser) -> dict[str, Any]:
        return {
            "IdentityStoreId": self.store_id,
            "UserId": user.id,
            "UserArn": f"arn:aws:identitystore:::user/{user.id}",
            "Revision": str(user.revision),
            "UserName": user.user_name,
            **user.attributes,
            "UserStatus": "ENABLED",
            "CreatedAt": _epoch(user.created_at),
            "CreatedBy": user.created_by,
            "UpdatedAt": _epoch(user.updated_at),
            "UpdatedBy": user.updated_by,
        }

    def _group_shape(self, group: IdentityGroup) -> dict[str, Any]:
        return {
            "IdentityStoreId": self.store_id,
            "GroupId": group.id,
            "GroupArn": f"arn:aws:identitystore:::group/{group.id}",
            "Revision": str(group.revision),
            "DisplayName": group.display_name,
            **group.attributes,
            "CreatedAt": _epoch(group.created_at),
            "CreatedBy": group.created_by,
            "UpdatedAt": _epoch(group.updated_at),
            "UpdatedBy": group.updated_by,
        }

    def _membership_shape(self, m: IdentityMembership) -> dict[str, Any]:
        return {
            "IdentityStoreId": self.store_id,
            "MembershipId": m.id,
            "MembershipArn": f"arn:aws:identitystore:::membership/{m.id}",
            "GroupId": m.group_id,
            "MemberId": {"UserId": m.user_id},
            "CreatedAt": _epoch(m.created_at),
            "CreatedBy": m.created_by,
            "UpdatedAt": _epoch(m.created_at),
            "UpdatedBy": m.created_by,
        }

    @staticmethod
    def _check_revision(params: dict[str, Any], current: int) -> None:
        expected = params.get("Revision")
        if expected is not None and expected != str(current):
            raise Conflict(
                f"Revision {expected} does not match the current revision {current}.",
                "CONCURRENT_MODIFICATION",
            )

    @staticmethod
    def _filter_value(params: dict[str, Any], path: str) -> str | None:
        filters = params.get("Filters") or []
        if not filters:
            return None
        f = filters[0]
        if f["AttributePath"] != path:
            raise Validation(f"AttributePath '{f['AttributePath']}' is not a valid filter.")
        value: str = f["AttributeValue"]
        return value

    # -- the store -------------------------------------------------------------------------

    @property
    def store_arn(self) -> str:
        return f"arn:aws:identitystore::{self.account_id}:identitystore/{self.store_id}"

    @operation("ListIdentityStores")
    async def list_identity_stores(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        stores = [{"IdentityStoreId": self.store_id, "IdentityStoreArn": self.store_arn}]
        page, token = _page(stores, params, pages.fingerprint("ListIdentityStores"))
        return pages.with_token({"IdentityStores": page}, token)

    @operation("DescribeIdentityStore")
    async def describe_identity_store(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._check_store(params)
        return {"IdentityStoreId": self.store_id, "IdentityStoreArn": self.store_arn}

    # -- users -----------------------------------------------------------------------------

    @operation("CreateUser")
    async def create_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _check_name("UserName", params.get("UserName"))
        attributes = {k: params[k] for k in USER_CREATE_MEMBERS if k in params}

        def create(session: Session) -> dict[str, Any]:
            if self._user_by_name(session, name) is not None:
                raise Conflict("Duplicate UserName")
            now, who = time.time(), self._who(ctx)
            user = IdentityUser(
                id=self._new_id(),
                store_id=self.store_id,
                user_name=name,
                name_key=name.lower(),
                attributes=attributes,
                created_at=now,
                created_by=who,
                updated_at=now,
                updated_by=who,
            )
            session.add(user)
            return {"IdentityStoreId": self.store_id, "UserId": user.id}

        return await self._tx(params, create)

    @operation("DescribeUser")
    async def describe_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            return self._user_shape(self._user(session, params["UserId"]))

        return await self._tx(params, describe)

    @operation("ListUsers")
    async def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._filter_value(params, "UserName")

        def list_(session: Session) -> dict[str, Any]:
            query = select(IdentityUser).where(IdentityUser.store_id == self.store_id)
            if name is not None:
                query = query.where(IdentityUser.name_key == name.lower())
            users = list(
                session.exec(query.order_by(col(IdentityUser.created_at), col(IdentityUser.id)))
            )
            page, token = _page(users, params, pages.fingerprint("ListUsers", name))
            return pages.with_token({"Users": [self._user_shape(u) for u in page]}, token)

        return await self._tx(params, list_)

    def _apply_user_operation(
        self, session: Session, user: IdentityUser, op: dict[str, Any]
    ) -> None:
        path: str = op["AttributePath"]
        present = "AttributeValue" in op and op["AttributeValue"] is not None
        value = op.get("AttributeValue")
        attributes = dict(user.attributes)
        if path == "userName":
            if not present:
                raise Validation("UserName cannot be removed.")
            name = _check_name("UserName", value)
            other = self._user_by_name(session, name)
            if other is not None and other.id != user.id:
                raise Conflict("Duplicate UserName")
            user.user_name, user.name_key = name, name.lower()
        elif path in USER_SCALARS:
            member = USER_SCALARS[path]
            if not present:
                attributes.pop(member, None)
            elif isinstance(value, str) and value:
                attributes[member] = value
            else:
                raise Validation(f"The value of {path} must be a non-empty string.")
        elif path in USER_LISTS:
            member = USER_LISTS[path]
            if not present:
                attributes.pop(member, None)
            elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
                attributes[member] = _pascal(value)
            else:
                raise Validation(f"The value of {path} must be a list of objects.")
        elif path == "name" or (path.startswith("name.") and path[5:] in NAME_PARTS):
            if path == "name":
                if not present:
                    attributes.pop("Name", None)
                elif isinstance(value, dict):
                    attributes["Name"] = _pascal(value)
                else:
                    raise Validation("The value of name must be an object.")
            else:
                name_attr = dict(attributes.get("Name") or {})
                part = NAME_PARTS[path[5:]]
                if not present:
                    name_attr.pop(part, None)
                elif isinstance(value, str) and value:
                    name_attr[part] = value
                else:
                    raise Validation(f"The value of {path} must be a non-empty string.")
                if name_attr:
                    attributes["Name"] = name_attr
                else:
                    attributes.pop("Name", None)
        else:
            raise Validation(f"AttributePath '{path}' is not a valid user attribute.")
        user.attributes = attributes

    @operation("UpdateUser")
    async def update_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            user = self._user(session, params["UserId"])
            self._check_revision(params, user.revision)
            for op in params["Operations"]:
                self._apply_user_operation(session, user, op)
            user.revision += 1
            user.updated_at, user.updated_by = time.time(), self._who(ctx)
            session.add(user)
            return {}

        return await self._tx(params, update)

    @operation("DeleteUser")
    async def delete_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            user = self._user(session, params["UserId"])
            for m in session.exec(
                select(IdentityMembership).where(IdentityMembership.user_id == user.id)
            ):
                session.delete(m)
            session.flush()
            session.delete(user)
            return {}

        return await self._tx(params, delete)

    @operation("GetUserId")
    async def get_user_id(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        alternate = params["AlternateIdentifier"]

        def get(session: Session) -> dict[str, Any]:
            unique = alternate.get("UniqueAttribute")
            if unique is None:  # an ExternalId: users created here have none
                raise ResourceNotFound("USER")
            path, value = unique["AttributePath"], unique.get("AttributeValue")
            if path.lower() == "username":
                user = self._user_by_name(session, value) if isinstance(value, str) else None
            elif path.lower() == "emails.value":
                user = next(
                    (
                        u
                        for u in session.exec(
                            select(IdentityUser).where(IdentityUser.store_id == self.store_id)
                        )
                        if any(e.get("Value") == value for e in u.attributes.get("Emails") or [])
                    ),
                    None,
                )
            else:
                raise Validation(f"AttributePath '{path}' is not a unique attribute of a user.")
            if user is None:
                raise ResourceNotFound("USER")
            return {"IdentityStoreId": self.store_id, "UserId": user.id}

        return await self._tx(params, get)

    # -- groups ----------------------------------------------------------------------------

    @operation("CreateGroup")
    async def create_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _check_name("DisplayName", params.get("DisplayName"))
        attributes = {k: params[k] for k in ("Description",) if k in params}

        def create(session: Session) -> dict[str, Any]:
            if self._group_by_name(session, name) is not None:
                raise Conflict("Duplicate GroupDisplayName")
            now, who = time.time(), self._who(ctx)
            group = IdentityGroup(
                id=self._new_id(),
                store_id=self.store_id,
                display_name=name,
                name_key=name.lower(),
                attributes=attributes,
                created_at=now,
                created_by=who,
                updated_at=now,
                updated_by=who,
            )
            session.add(group)
            return {"IdentityStoreId": self.store_id, "GroupId": group.id}

        return await self._tx(params, create)

    @operation("DescribeGroup")
    async def describe_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            return self._group_shape(self._group(session, params["GroupId"]))

        return await self._tx(params, describe)

    @operation("ListGroups")
    async def list_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._filter_value(params, "DisplayName")

        def list_(session: Session) -> dict[str, Any]:
            query = select(IdentityGroup).where(IdentityGroup.store_id == self.store_id)
            if name is not None:
                query = query.where(IdentityGroup.name_key == name.lower())
            groups = list(
                session.exec(query.order_by(col(IdentityGroup.created_at), col(IdentityGroup.id)))
            )
            page, token = _page(groups, params, pages.fingerprint("ListGroups", name))
            return pages.with_token({"Groups": [self._group_shape(g) for g in page]}, token)

        return await self._tx(params, list_)

    @operation("UpdateGroup")
    async def update_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            group = self._group(session, params["GroupId"])
            self._check_revision(params, group.revision)
            attributes = dict(group.attributes)
            for op in params["Operations"]:
                path, value = op["AttributePath"], op.get("AttributeValue")
                if path == "displayName":
                    name = _check_name("DisplayName", value)
                    other = self._group_by_name(session, name)
                    if other is not None and other.id != group.id:
                        raise Conflict("Duplicate GroupDisplayName")
                    group.display_name, group.name_key = name, name.lower()
                elif path == "description":
                    if value is None:
                        attributes.pop("Description", None)
                    elif isinstance(value, str) and value:
                        attributes["Description"] = value
                    else:
                        raise Validation("The value of description must be a non-empty string.")
                else:
                    raise Validation(f"AttributePath '{path}' is not a valid group attribute.")
            group.attributes = attributes
            group.revision += 1
            group.updated_at, group.updated_by = time.time(), self._who(ctx)
            session.add(group)
            return {}

        return await self._tx(params, update)

    @operation("DeleteGroup")
    async def delete_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            group = self._group(session, params["GroupId"])
            for m in session.exec(
                select(IdentityMembership).where(IdentityMembership.group_id == group.id)
            ):
                session.delete(m)
            session.flush()
            session.delete(group)
            return {}

        return await self._tx(params, delete)

    @operation("GetGroupId")
    async def get_group_id(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        alternate = params["AlternateIdentifier"]

        def get(session: Session) -> dict[str, Any]:
            unique = alternate.get("UniqueAttribute")
            if unique is None:  # an ExternalId: groups created here have none
                raise ResourceNotFound("GROUP")
            path, value = unique["AttributePath"], unique.get("AttributeValue")
            if path.lower() != "displayname":
                raise Validation(f"AttributePath '{path}' is not a unique attribute of a group.")
            group = self._group_by_name(session, value) if isinstance(value, str) else None
            if group is None:
                raise ResourceNotFound("GROUP")
            return {"IdentityStoreId": self.store_id, "GroupId": group.id}

        return await self._tx(params, get)

    # -- memberships -----------------------------------------------------------------------

    def _membership_of(
        self, session: Session, group_id: str, user_id: str
    ) -> IdentityMembership | None:
        return session.exec(
            select(IdentityMembership).where(
                IdentityMembership.group_id == group_id, IdentityMembership.user_id == user_id
            )
        ).first()

    @operation("CreateGroupMembership")
    async def create_group_membership(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def create(session: Session) -> dict[str, Any]:
            group = self._group(session, params["GroupId"])
            user = self._member_user(session, params["MemberId"])
            if self._membership_of(session, group.id, user.id) is not None:
                raise Conflict("Member and Group relationship already exists.")
            m = IdentityMembership(
                id=self._new_id(),
                store_id=self.store_id,
                group_id=group.id,
                user_id=user.id,
                created_at=time.time(),
                created_by=self._who(ctx),
            )
            session.add(m)
            return {
                "IdentityStoreId": self.store_id,
                "MembershipId": m.id,
                "MembershipArn": f"arn:aws:identitystore:::membership/{m.id}",
            }

        return await self._tx(params, create)

    @operation("DeleteGroupMembership")
    async def delete_group_membership(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            membership_id = _resource_id(params["MembershipId"])
            m = session.get(IdentityMembership, membership_id)
            if m is None or m.store_id != self.store_id:
                raise ResourceNotFound("GROUP_MEMBERSHIP", membership_id)
            session.delete(m)
            return {}

        return await self._tx(params, delete)

    @operation("DescribeGroupMembership")
    async def describe_group_membership(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            membership_id = _resource_id(params["MembershipId"])
            m = session.get(IdentityMembership, membership_id)
            if m is None or m.store_id != self.store_id:
                raise ResourceNotFound("GROUP_MEMBERSHIP", membership_id)
            return self._membership_shape(m)

        return await self._tx(params, describe)

    @operation("GetGroupMembershipId")
    async def get_group_membership_id(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            group = self._group(session, params["GroupId"])
            user = self._member_user(session, params["MemberId"])
            m = self._membership_of(session, group.id, user.id)
            if m is None:
                raise ResourceNotFound("GROUP_MEMBERSHIP")
            return {"IdentityStoreId": self.store_id, "MembershipId": m.id}

        return await self._tx(params, get)

    def _list_memberships(
        self, session: Session, params: dict[str, Any], clause: Any, bound: str
    ) -> dict[str, Any]:
        rows = list(
            session.exec(
                select(IdentityMembership)
                .where(IdentityMembership.store_id == self.store_id, clause)
                .order_by(col(IdentityMembership.created_at), col(IdentityMembership.id))
            )
        )
        page, token = _page(rows, params, bound)
        return pages.with_token(
            {"GroupMemberships": [self._membership_shape(m) for m in page]}, token
        )

    @operation("ListGroupMemberships")
    async def list_group_memberships(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            group = self._group(session, params["GroupId"])
            clause = col(IdentityMembership.group_id) == group.id
            return self._list_memberships(
                session, params, clause, pages.fingerprint("ListGroupMemberships", group.id)
            )

        return await self._tx(params, list_)

    @operation("ListGroupMembershipsForMember")
    async def list_group_memberships_for_member(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            user = self._member_user(session, params["MemberId"])
            clause = col(IdentityMembership.user_id) == user.id
            return self._list_memberships(
                session, params, clause, pages.fingerprint("ListGroupMembershipsForMember", user.id)
            )

        return await self._tx(params, list_)

    @operation("IsMemberInGroups")
    async def is_member_in_groups(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def check(session: Session) -> dict[str, Any]:
            user = self._member_user(session, params["MemberId"])
            results = []
            for given in params["GroupIds"]:
                group_id = _resource_id(given)
                results.append(
                    {
                        "GroupId": group_id,
                        "MemberId": {"UserId": user.id},
                        "MembershipExists": self._membership_of(session, group_id, user.id)
                        is not None,
                    }
                )
            return {"Results": results}

        return await self._tx(params, check)


class IdentityStoreDirectory(IdentityDirectory):
    """Session mappings' users and groups, looked up in the Identity Store by id or name."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id

    def resolve(
        self, session: Session, identity_type: str, identity_id: str | None, name: str | None
    ) -> tuple[str, str]:
        described = f"IdentityId '{identity_id}'" if name is None else f"IdentityName '{name}'"
        if identity_type == "USER":
            user = (
                session.get(IdentityUser, identity_id)
                if identity_id is not None
                else self._by_name(session, IdentityUser, name)
            )
            if user is not None and user.store_id == self.store_id:
                return user.id, user.user_name
            kind = "User"
        else:
            group = (
                session.get(IdentityGroup, identity_id)
                if identity_id is not None
                else self._by_name(session, IdentityGroup, name)
            )
            if group is not None and group.store_id == self.store_id:
                return group.id, group.display_name
            kind = "Group"
        raise InvalidRequest(
            f"{kind} with {described} does not exist in identity store {self.store_id}."
        )

    def _by_name(self, session: Session, table: type[R], name: str | None) -> R | None:
        assert name is not None
        return session.exec(
            select(table).where(
                col(table.store_id) == self.store_id,
                col(table.name_key) == name.lower(),
            )
        ).first()


__all__ = ["IdentityStoreDirectory", "IdentityStoreService", "identity_store_id"]
