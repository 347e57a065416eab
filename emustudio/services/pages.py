"""Pages of a listing, and the opaque tokens (``NextToken``, ``Marker``) that carry on from one.

Every paginated operation goes through here. A token is the URL-safe base64 (unpadded) of a
JSON array: the position the next page starts at (an offset into the listing, or for a keyset
listing such as CloudTrail's the sort key of the last row shown), then a fingerprint of the
parameters of the call that issued it (empty where the service does not bind its tokens).
A token is good only for a call with the same fingerprint: garbage, a wrong or negative
position, or another call's token is refused with the error the service words its own way
(``invalid``), never half-read.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from emustudio.aws.errors import AwsError

T = TypeVar("T")


def fingerprint(*parts: Any) -> str:
    """What binds a token to its call: a digest of the parameters that shape the listing."""
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_token(position: Sequence[int], bound_to: str = "") -> str:
    raw = json.dumps([*position, bound_to], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, length: int, bound_to: str, invalid: AwsError) -> tuple[int, ...]:
    """The ``length`` non-negative integers of a token issued with ``bound_to``, or ``invalid``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        *position, bound = json.loads(raw)
    except (ValueError, TypeError):  # not base64, not JSON (binascii.Error is a ValueError)
        raise invalid from None
    if (
        bound != bound_to
        or len(position) != length
        or not all(type(p) is int and p >= 0 for p in position)
    ):
        raise invalid
    return tuple(position)


def page(
    items: Sequence[T],
    token: str | None,
    size: int | None,
    invalid: AwsError,
    bound_to: str = "",
) -> tuple[list[T], str | None]:
    """``size`` items (all with ``None``) from where ``token`` points, and the next page's token
    (``None`` on the last page)."""
    start = decode_token(token, 1, bound_to, invalid)[0] if token else 0
    end = len(items) if size is None else start + size
    next_token = encode_token([end], bound_to) if end < len(items) else None
    return list(items[start:end]), next_token


def with_token(
    result: dict[str, Any], token: str | None, member: str = "NextToken"
) -> dict[str, Any]:
    """``result`` with ``member`` set to ``token`` when there is a next page."""
    if token:
        result[member] = token
    return result


__all__ = ["decode_token", "encode_token", "fingerprint", "page", "with_token"]
