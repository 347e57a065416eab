"""What every EC2 operation shares: the error type, tag rows, filters and pagination.

EC2 filters follow the EC2 API: each filter is ``{"Name": ..., "Values": [...]}``; values of one
filter are ORed, filters are ANDed, ``*`` and ``?`` are wildcards, ``tag:<key>`` matches a tag's
value, ``tag-key`` a tag's key. An unknown filter name is an ``InvalidParameterValue``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, Protocol, TypeVar

from sqlmodel import Session, col, select

from emustudio.aws.errors import AwsError
from emustudio.services import pages
from emustudio.store.tables import Tag

T = TypeVar("T")
FieldGetter = Callable[[T], Iterable[str]]


class Ec2Error(AwsError):
    """An EC2 error: its code is the EC2 error code (``InvalidVpcID.NotFound``...)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


def invalid_value(value: object, parameter: str, why: str = "") -> Ec2Error:
    text = f"Value ({value}) for parameter {parameter} is invalid."
    return Ec2Error("InvalidParameterValue", f"{text} {why}".strip())


def parse_cidr(value: str, parameter: str = "cidrBlock") -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise invalid_value(value, parameter, "This is not a valid CIDR block.") from None


# --- tags ---------------------------------------------------------------------------------------


def tags_of(session: Session, resource_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {rid: {} for rid in resource_ids}
    if not resource_ids:
        return out
    for tag in session.exec(select(Tag).where(col(Tag.resource_id).in_(resource_ids))):
        out.setdefault(tag.resource_id, {})[tag.key] = tag.value
    return out


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def check_tags(tags: Sequence[dict[str, Any]]) -> None:
    for tag in tags:
        key = tag.get("Key", "")
        if not key:
            raise Ec2Error("InvalidParameterValue", "Tag key cannot be null or empty.")
        if len(key) > 128:
            raise Ec2Error(
                "InvalidParameterValue",
                f"Tag key exceeds the maximum length of 128 characters: {key}",
            )
        if len(tag.get("Value", "")) > 256:
            raise Ec2Error(
                "InvalidParameterValue",
                f"Tag value exceeds the maximum length of 256 characters: {tag.get('Value')}",
            )
        if key.lower().startswith("aws:"):
            raise Ec2Error(
                "InvalidParameterValue",
                "Tag keys starting with 'aws:' are reserved for internal use",
            )


def spec_tags(params: dict[str, Any], resource_type: str) -> list[dict[str, str]]:
    """The tags of ``TagSpecifications`` meant for ``resource_type``."""
    out: list[dict[str, str]] = []
    for spec in params.get("TagSpecifications", []):
        if spec.get("ResourceType") not in (None, resource_type):
            raise Ec2Error(
                "InvalidParameterValue",
                f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this"
                " operation.",
            )
        out.extend(spec.get("Tags", []))
    check_tags(out)
    return out


def put_tags(
    session: Session, resource_id: str, resource_type: str, tags: Sequence[dict[str, Any]]
) -> None:
    for tag in tags:
        session.merge(
            Tag(
                resource_id=resource_id,
                key=tag["Key"],
                value=tag.get("Value", ""),
                resource_type=resource_type,
            )
        )


def drop_tags(session: Session, resource_id: str) -> None:
    for tag in session.exec(select(Tag).where(Tag.resource_id == resource_id)):
        session.delete(tag)


# --- filters and pages --------------------------------------------------------------------------


class HasId(Protocol):
    id: str


Identified = TypeVar("Identified", bound=HasId)


def only_ids(
    items: Sequence[Identified], wanted: Sequence[str] | None, code: str, noun: str
) -> list[Identified]:
    """``items`` limited to the ids a Describe call named; EC2 refuses the first unknown one."""
    if not wanted:
        return list(items)
    found = {item.id for item in items}
    for item_id in wanted:
        if item_id not in found:
            raise Ec2Error(code, f"The {noun} '{item_id}' does not exist")
    return [item for item in items if item.id in wanted]


@cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    # EC2 filter values know only ``*`` and ``?``; everything else is literal.
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"(?s:{body})\\Z")


def _matches(values: Iterable[str], wanted: Sequence[str]) -> bool:
    have = list(values)
    return any(_wildcard(w).match(v) for w in wanted for v in have)


def apply_filters(
    items: Sequence[T],
    filters: Sequence[dict[str, Any]],
    fields: dict[str, FieldGetter[T]],
    tags: Callable[[T], dict[str, str]],
) -> list[T]:
    out = list(items)
    for flt in filters:
        name = flt.get("Name", "")
        wanted = [str(v) for v in flt.get("Values", [])]
        getter: FieldGetter[T]
        if name.startswith("tag:"):
            key = name[4:]

            def getter(item: T, key: str = key) -> list[str]:
                value = tags(item).get(key)
                return [] if value is None else [value]

        elif name == "tag-key":

            def getter(item: T) -> list[str]:
                return list(tags(item))

        elif name == "tag-value":

            def getter(item: T) -> list[str]:
                return list(tags(item).values())

        elif name in fields:
            getter = fields[name]
        else:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
        out = [item for item in out if _matches(getter(item), wanted)]
    return out


def paginate(
    items: Sequence[T], params: dict[str, Any], *, low: int = 5, high: int = 1000
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the ``NextToken`` of the next, EC2-style: all of them unless
    the call gives ``MaxResults`` (``low`` to ``high``)."""
    size = params.get("MaxResults")
    if size is not None and not low <= size <= high:
        raise invalid_value(size, "MaxResults", f"Value must be between {low} and {high}.")
    invalid = Ec2Error("InvalidNextToken", "The token is invalid.")
    return pages.page(items, params.get("NextToken"), size, invalid)
