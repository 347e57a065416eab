"""Users: ``CreateUser``, ``DescribeUser``, ``ListUsers``, ``UpdateUser``, ``DeleteUser``,
``GetUserId`` (written once for users and groups, in ``entities.py``); and what only users
have: their many attributes, and ``GetUserId`` by e-mail address."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from emustudio.services.identitystore.common import Validation, non_empty_string, set_member
from emustudio.services.identitystore.entities import USERS, EntityOperations
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


def _by_email(session: Session, store_id: str, value: Any) -> IdentityUser | None:
    return next(
        (
            u
            for u in session.exec(
                select(IdentityUser).where(col(IdentityUser.store_id) == store_id)
            )
            if any(e.get("Value") == value for e in u.attributes.get("Emails") or [])
        ),
        None,
    )


class UserOperations(
    EntityOperations,
    entities=USERS,
    apply=_apply,
    create_members=USER_CREATE_MEMBERS,
    shape_extra={"UserStatus": "ENABLED"},
    lookups={"emails.value": _by_email},
):
    """The user operations; see :class:`EntityOperations`."""
