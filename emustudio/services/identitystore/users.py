"""Users: ``CreateUser``, ``DescribeUser``, ``ListUsers``, ``UpdateUser``, ``DeleteUser``,
``GetUserId``; and what only users have, their many attributes."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

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
from emustudio.services.identitystore.entities import USERS
from emustudio.store.identity_tables import IdentityUser


def _camel_to_pascal(*paths: str) -> dict[str, str]:
    return {p: p[0].upper() + p[1:] for p in paths}


# UpdateUser's attribute paths (camelCase, as the API takes them) and the member each names.
USER_SCALARS = _camel_to_pascal(
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
USER_LISTS = _camel_to_pascal("emails", "addresses", "phoneNumbers", "photos", "roles")
NAME_PARTS = _camel_to_pascal(
    "formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"
)
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


def _list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _apply(session: Session, user: IdentityUser, op: dict[str, Any]) -> None:
    path: str = op["AttributePath"]
    attributes = dict(user.attributes)
    if path == "userName":
        if op.get("AttributeValue") is None:
            raise Validation("UserName cannot be removed.")
        USERS.rename(session, user, op["AttributeValue"])
    elif path in USER_SCALARS:
        set_member(attributes, USER_SCALARS[path], op, non_empty_string, "a non-empty string")
    elif path in USER_LISTS:
        set_member(attributes, USER_LISTS[path], op, _list_of_objects, "a list of objects")
    elif path == "name":
        set_member(attributes, "Name", op, lambda v: isinstance(v, dict), "an object")
    elif path.startswith("name.") and path[5:] in NAME_PARTS:
        name_attr = dict(attributes.get("Name") or {})
        set_member(name_attr, NAME_PARTS[path[5:]], op, non_empty_string, "a non-empty string")
        attributes["Name"] = name_attr
        if not name_attr:
            attributes.pop("Name")
    else:
        raise Validation(f"AttributePath '{path}' is not a valid user attribute.")
    user.attributes = attributes


def _user_shape(user: IdentityUser) -> dict[str, Any]:
    return USERS.shape(user, UserStatus="ENABLED")


class UserOperations(IdentityStoreBase):
    @operation("CreateUser")
    async def create_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = check_name("UserName", params.get("UserName"))
        attributes = {k: params[k] for k in USER_CREATE_MEMBERS if k in params}
        new_id, by = self.new_id(), who(ctx)
        return await self.tx(
            params, lambda s: USERS.create(s, self.store_id, new_id, name, attributes, by)
        )

    @operation("DescribeUser")
    async def describe_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.tx(
            params, lambda s: _user_shape(USERS.get(s, self.store_id, params["UserId"]))
        )

    @operation("ListUsers")
    async def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = filter_value(params, "UserName")
        return await self.tx(
            params, lambda s: USERS.listing(s, self.store_id, params, name, _user_shape, "Users")
        )

    @operation("UpdateUser")
    async def update_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        by = who(ctx)
        return await self.tx(params, lambda s: USERS.update(s, self.store_id, params, by, _apply))

    @operation("DeleteUser")
    async def delete_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.tx(params, lambda s: USERS.delete(s, self.store_id, params["UserId"]))

    @operation("GetUserId")
    async def get_user_id(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            path, value = USERS.unique_attribute(params["AlternateIdentifier"])
            user: IdentityUser | None
            if path.lower() == "username":
                user = (
                    USERS.by_name(session, self.store_id, value) if isinstance(value, str) else None
                )
            elif path.lower() == "emails.value":
                user = next(
                    (
                        u
                        for u in session.exec(
                            select(IdentityUser).where(col(IdentityUser.store_id) == self.store_id)
                        )
                        if any(e.get("Value") == value for e in u.attributes.get("Emails") or [])
                    ),
                    None,
                )
            else:
                raise USERS.not_unique(path)
            return USERS.found_id(self.store_id, user)

        return await self.tx(params, get)
