"""What the IAM operations share: errors, ids and ARNs, Marker pages, tags, entity lookups,
policy-document checks and the URL-encoding IAM applies to documents in its responses."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from sqlmodel import Session, select

from emustudio.aws.errors import AwsError
from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal, RequestContext
from emustudio.iam import Policy, PolicyError, PolicyKind, parse_policy
from emustudio.services import pages
from emustudio.services.base import Service
from emustudio.services.iam.aws_managed import AWS_MANAGED
from emustudio.services.iam.credentials import IamCredentials, KeyEntry
from emustudio.store import Store
from emustudio.store.iam_tables import (
    IamAccessKey,
    IamGroup,
    IamManagedPolicy,
    IamRole,
    IamUser,
)

T = TypeVar("T")

# --- errors ---------------------------------------------------------------------------------


class NoSuchEntity(AwsError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(AwsError):
    code = "EntityAlreadyExists"
    status = 409


class DeleteConflict(AwsError):
    code = "DeleteConflict"
    status = 409


class LimitExceeded(AwsError):
    code = "LimitExceeded"
    status = 409


class MalformedPolicyDocument(AwsError):
    code = "MalformedPolicyDocument"
    status = 400


class InvalidInput(AwsError):
    code = "InvalidInput"
    status = 400


class ValidationError(AwsError):
    code = "ValidationError"
    status = 400


class PasswordPolicyViolation(AwsError):
    code = "PasswordPolicyViolation"
    status = 400


class AccessDenied(AwsError):
    code = "AccessDenied"
    status = 403


def user_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The user with name {name} cannot be found.")


def role_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The role with name {name} cannot be found.")


def group_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The group with name {name} cannot be found.")


# --- ids ------------------------------------------------------------------------------------

_UPPER_ALNUM = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def unique_id(prefix: str) -> str:
    """IAM's unique ids: ``AIDA`` (user), ``AGPA`` (group), ``AROA`` (role), ``ANPA`` (policy)
    followed by 17 upper-case letters and digits."""
    return prefix + _random(_UPPER_ALNUM, 17)


def access_key_id(prefix: str = "AKIA") -> str:
    """``AKIA`` (long-term) or ``ASIA`` (temporary) and 16 upper-case letters and digits."""
    return prefix + _random(_UPPER_ALNUM, 16)


def secret_access_key() -> str:
    return _random(_SECRET_ALPHABET, 40)


# --- time -----------------------------------------------------------------------------------


def now() -> float:
    """Whole seconds: IAM reports its dates to the second."""
    return float(int(time.time()))


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


# --- documents ------------------------------------------------------------------------------


def encode_document(text: str) -> str:
    """A policy document as IAM returns it: URL-encoded JSON (SDKs decode it back)."""
    return quote(text, safe="")


def check_policy(
    document: str,
    kind: PolicyKind = "identity",
    *,
    max_size: int | None = None,
    managed: bool = False,
) -> Policy:
    """Validate a document as IAM does on write; raise IAM's error for the first problem."""
    try:
        return parse_policy(document, kind, max_size=max_size, managed=managed)
    except PolicyError as error:
        if error.code == "LimitExceeded":
            raise LimitExceeded(error.message) from None
        raise MalformedPolicyDocument(error.message) from None


# --- tags -----------------------------------------------------------------------------------

MAX_TAGS = 50


def merge_tags(
    current: Sequence[dict[str, str]], new: Sequence[dict[str, Any]], quota: str
) -> list[dict[str, str]]:
    """``current`` with ``new`` applied (keys compare without case; the new spelling wins)."""
    seen: set[str] = set()
    for tag in new:
        key = str(tag["Key"])
        if key.lower() in seen:
            raise InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        if key.lower().startswith("aws:"):
            raise InvalidInput(f"Tag key '{key}' uses the prefix 'aws:', which is reserved.")
    out = [dict(t) for t in current if t["Key"].lower() not in seen]
    out += [{"Key": str(t["Key"]), "Value": str(t.get("Value", ""))} for t in new]
    if len(out) > MAX_TAGS:
        raise LimitExceeded(f"Cannot exceed quota for {quota}: {MAX_TAGS}")
    return out


def drop_tags(current: Sequence[dict[str, str]], keys: Sequence[str]) -> list[dict[str, str]]:
    gone = {k.lower() for k in keys}
    return [dict(t) for t in current if t["Key"].lower() not in gone]


def tag_map(tags: Sequence[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags}


# --- pages ----------------------------------------------------------------------------------

DEFAULT_MAX_ITEMS = 100


def page(items: Sequence[T], params: dict[str, Any], member: str) -> tuple[list[T], dict[str, Any]]:
    """One ``MaxItems`` page from ``Marker``, and the result with ``member`` to fill in,
    ``IsTruncated`` and, when truncated, the next ``Marker``."""
    size = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
    found, marker = pages.page(items, params.get("Marker"), size, InvalidInput("Invalid Marker."))
    result: dict[str, Any] = {member: [], "IsTruncated": marker is not None}
    return found, pages.with_token(result, marker, "Marker")


def with_prefix(path: str, prefix: str | None) -> bool:
    return not prefix or path.startswith(prefix)


# --- the base -------------------------------------------------------------------------------


class IamBase(Service):
    name = "iam"

    def __init__(
        self, store: Store, *, account_id: str, credentials: IamCredentials | None = None
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.credentials = credentials or IamCredentials()

    # ARNs --------------------------------------------------------------------------------------

    def arn(self, kind: str, path: str, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:{kind}{path}{name}"

    def user_arn(self, user: IamUser) -> str:
        return self.arn("user", user.path, user.name)

    def group_arn(self, group: IamGroup) -> str:
        return self.arn("group", group.path, group.name)

    def role_arn(self, role: IamRole) -> str:
        return self.arn("role", role.path, role.name)

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    # lookups -----------------------------------------------------------------------------------

    @staticmethod
    def find_user(session: Session, name: str) -> IamUser | None:
        return session.exec(select(IamUser).where(IamUser.name_key == name.lower())).first()

    @staticmethod
    def find_group(session: Session, name: str) -> IamGroup | None:
        return session.exec(select(IamGroup).where(IamGroup.name_key == name.lower())).first()

    @staticmethod
    def find_role(session: Session, name: str) -> IamRole | None:
        return session.exec(select(IamRole).where(IamRole.name_key == name.lower())).first()

    def user_or_raise(self, session: Session, name: str) -> IamUser:
        user = self.find_user(session, name)
        if user is None:
            raise user_not_found(name)
        return user

    def group_or_raise(self, session: Session, name: str) -> IamGroup:
        group = self.find_group(session, name)
        if group is None:
            raise group_not_found(name)
        return group

    def role_or_raise(self, session: Session, name: str) -> IamRole:
        role = self.find_role(session, name)
        if role is None:
            raise role_not_found(name)
        return role

    @staticmethod
    def policy_exists(session: Session, arn: str) -> bool:
        return arn in AWS_MANAGED or session.get(IamManagedPolicy, arn) is not None

    def policy_or_raise(self, session: Session, arn: str) -> None:
        """``NoSuchEntity`` as ``Attach*Policy`` and ``Put*PermissionsBoundary`` answer it."""
        if not self.policy_exists(session, arn):
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")

    def target_user(self, session: Session, ctx: RequestContext, name: str | None) -> IamUser:
        """The named user, or the caller when no name is given."""
        if name is not None:
            return self.user_or_raise(session, name)
        principal = ctx.principal
        if principal is None or principal.kind != "IAMUser":
            raise ValidationError("Must specify userName when calling with non-User credentials")
        user = session.get(IamUser, principal.user_id)
        if user is None:
            raise user_not_found(principal.name)
        return user

    # the key cache -----------------------------------------------------------------------------

    def user_principal(self, user: IamUser, access_key_id: str) -> Principal:
        return Principal(
            kind="IAMUser",
            arn=self.user_arn(user),
            account_id=self.account_id,
            access_key_id=access_key_id,
            name=user.name,
            user_id=user.id,
        )

    def key_entries(self, session: Session, user: IamUser) -> list[KeyEntry]:
        """The user's active keys, as the credential cache holds them."""
        keys = session.exec(
            select(IamAccessKey).where(
                IamAccessKey.user_id == user.id, IamAccessKey.status == "Active"
            )
        )
        return [
            KeyEntry(user.id, Credential(k.id, k.secret), self.user_principal(user, k.id))
            for k in keys
        ]

    # shapes ------------------------------------------------------------------------------------

    def boundary_shape(self, arn: str | None) -> dict[str, Any] | None:
        if arn is None:
            return None
        return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}

    def user_shape(self, user: IamUser, *, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Path": user.path,
            "UserName": user.name,
            "UserId": user.id,
            "Arn": self.user_arn(user),
            "CreateDate": to_datetime(user.created_at),
        }
        if user.password_last_used is not None:
            out["PasswordLastUsed"] = to_datetime(user.password_last_used)
        if full:
            boundary = self.boundary_shape(user.boundary_arn)
            if boundary:
                out["PermissionsBoundary"] = boundary
            if user.tags:
                out["Tags"] = list(user.tags)
        return out

    def group_shape(self, group: IamGroup) -> dict[str, Any]:
        return {
            "Path": group.path,
            "GroupName": group.name,
            "GroupId": group.id,
            "Arn": self.group_arn(group),
            "CreateDate": to_datetime(group.created_at),
        }

    def role_shape(self, role: IamRole, *, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Path": role.path,
            "RoleName": role.name,
            "RoleId": role.id,
            "Arn": self.role_arn(role),
            "CreateDate": to_datetime(role.created_at),
            "AssumeRolePolicyDocument": encode_document(role.trust_policy),
            "MaxSessionDuration": role.max_session_duration,
        }
        if role.description is not None:
            out["Description"] = role.description
        if full:
            boundary = self.boundary_shape(role.boundary_arn)
            if boundary:
                out["PermissionsBoundary"] = boundary
            if role.tags:
                out["Tags"] = list(role.tags)
            last: dict[str, Any] = {}
            if role.last_used_at is not None:
                last["LastUsedDate"] = to_datetime(role.last_used_at)
                last["Region"] = role.last_used_region
            out["RoleLastUsed"] = last
        return out
