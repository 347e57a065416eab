"""What the Identity Store operations share: errors, ids, the store check, request helpers."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlmodel import Session

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import Service, operation
from emustudio.store import Store

DEFAULT_MAX_RESULTS = 100
RESERVED_NAMES = frozenset({"administrator", "awsadministrators"})
STORE_ARN = re.compile(r"arn:aws[a-z-]*:identitystore::(\d{12}):identitystore/(.+)")
RESOURCE_ARN = re.compile(r"arn:aws[a-z-]*:identitystore:::(user|group|membership)/(.+)")

T = TypeVar("T")


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


def epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def resource_id(value: str) -> str:
    """An id given as itself or as its ARN."""
    found = RESOURCE_ARN.fullmatch(value)
    return found.group(2) if found else value


def check_name(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Validation(f"{kind} must be a non-empty string.")
    if value.lower() in RESERVED_NAMES:
        raise Validation(f"{kind} '{value}' is reserved.")
    return value


def page(items: list[T], params: dict[str, Any], fingerprint: str) -> tuple[list[T], str | None]:
    size = params.get("MaxResults") or DEFAULT_MAX_RESULTS
    invalid = Validation("The NextToken is invalid.")
    return pages.page(items, params.get("NextToken"), size, invalid, fingerprint)


def _pascal(value: Any) -> Any:
    """A document's keys in the model's PascalCase (``{"value": …}`` → ``{"Value": …}``)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def set_member(
    attributes: dict[str, Any],
    member: str,
    op: dict[str, Any],
    valid: Callable[[Any], bool],
    must_be: str,
) -> None:
    """One member set from an ``AttributeOperation`` (removed when it has no value)."""
    value = op.get("AttributeValue")
    if value is None:
        attributes.pop(member, None)
    elif valid(value):
        attributes[member] = _pascal(value)
    else:
        raise Validation(f"The value of {op['AttributePath']} must be {must_be}.")


def filter_value(params: dict[str, Any], path: str) -> str | None:
    """The value of a List call's one filter, which must be on ``path``."""
    filters = params.get("Filters") or []
    if not filters:
        return None
    f = filters[0]
    if f["AttributePath"] != path:
        raise Validation(f"AttributePath '{f['AttributePath']}' is not a valid filter.")
    value: str = f["AttributeValue"]
    return value


def who(ctx: RequestContext) -> str:
    """``CreatedBy``/``UpdatedBy``: the caller's ARN."""
    return ctx.principal.arn if ctx.principal is not None else "unknown"


class IdentityStoreBase(Service):
    name = "identitystore"

    def __init__(self, store: Store, *, region: str, account_id: str) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.store_id = identity_store_id(account_id)
        self.id_prefix = self.store_id[2:]

    @property
    def store_arn(self) -> str:
        return f"arn:aws:identitystore::{self.account_id}:identitystore/{self.store_id}"

    def check_store(self, params: dict[str, Any]) -> None:
        given = params.get("IdentityStoreId", "")
        found = STORE_ARN.fullmatch(given)
        if found:
            account, given = found.groups()
            if account != self.account_id:
                raise ResourceNotFound("IDENTITY_STORE", given)
        if given != self.store_id:
            raise ResourceNotFound("IDENTITY_STORE", given)

    def new_id(self) -> str:
        return f"{self.id_prefix}-{uuid.uuid4()}"

    async def tx(self, params: dict[str, Any], fn: Callable[[Session], T]) -> T:
        """``fn`` in one transaction, once the request's store is known to be this one."""
        self.check_store(params)
        return await self.store.tx(fn)

    @operation("ListIdentityStores")
    async def list_identity_stores(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        stores = [{"IdentityStoreId": self.store_id, "IdentityStoreArn": self.store_arn}]
        found, token = page(stores, params, pages.fingerprint("ListIdentityStores"))
        return pages.with_token({"IdentityStores": found}, token)

    @operation("DescribeIdentityStore")
    async def describe_identity_store(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self.check_store(params)
        return {"IdentityStoreId": self.store_id, "IdentityStoreArn": self.store_arn}
