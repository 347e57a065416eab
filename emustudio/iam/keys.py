"""The request context: condition keys and their values, as the policy language sees them.

AWS: "Key names are case-insensitive", so ``aws:PrincipalTag/Team`` and
``AWS:principaltag/team`` are the same key (the tag-key part included). A
:class:`ConditionContext` is built once per request from the gateway's plain mapping and folds
every value to strings, the form IAM compares them in:

* ``str`` stays as it is; ``bool`` becomes ``"true"``/``"false"``; ``int``/``float``/``Decimal``
  their decimal text; ``datetime`` ISO 8601 in UTC (a naive datetime is taken as UTC);
  ``bytes`` base64 (what ``BinaryEquals`` compares against);
* a list, tuple or set is a multivalued key (``aws:TagKeys``); each item is folded as above;
* ``None`` or an empty list means the key is absent. An empty *string* is a present value.

:func:`tag_context` builds the tag keys for a request, under both the global (``aws:``) and the
service's own prefix (``elasticmapreduce:ResourceTag/...``), since EMR policies use either.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

ContextValue = str | bool | int | float | Decimal | dt.datetime | bytes


def _fold_scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"unsupported condition key value {value!r} ({type(value).__name__})")


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the form ``aws:CurrentTime`` takes."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    spec = "seconds" if value.microsecond == 0 else "microseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def fold_values(value: object) -> tuple[str, ...] | None:
    """A context value as IAM compares it: a tuple of strings, or ``None`` if absent."""
    if value is None:
        return None
    if isinstance(value, list | tuple | set | frozenset):
        items = tuple(_fold_scalar(item) for item in value)
        return items or None
    return (_fold_scalar(value),)


class ConditionContext:
    """Condition keys of one request, looked up case-insensitively.

    ``values(key)`` is ``None`` for an absent key and otherwise a non-empty tuple of strings;
    ``is_multivalued(key)`` tells whether the gateway gave a list (such keys cannot be used as
    policy variables).
    """

    __slots__ = ("_multi", "_values")

    def __init__(self, raw: Mapping[str, object] | None = None) -> None:
        self._values: dict[str, tuple[str, ...]] = {}
        self._multi: set[str] = set()
        for key, value in (raw or {}).items():
            folded = fold_values(value)
            if folded is None:
                continue
            lowered = key.lower()
            self._values[lowered] = folded
            if isinstance(value, list | tuple | set | frozenset):
                self._multi.add(lowered)

    def values(self, key: str) -> tuple[str, ...] | None:
        return self._values.get(key.lower())

    def is_multivalued(self, key: str) -> bool:
        return key.lower() in self._multi

    def single(self, key: str) -> str | None:
        """The key's value for policy-variable substitution: ``None`` if absent or multivalued."""
        values = self._values.get(key.lower())
        if values is None or key.lower() in self._multi or len(values) != 1:
            return None
        return values[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._values

    def __repr__(self) -> str:
        return f"ConditionContext({self._values!r})"


def tag_context(
    *,
    service: str | None = None,
    resource_tags: Mapping[str, str] | None = None,
    request_tags: Mapping[str, str] | None = None,
    principal_tags: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The tag condition keys of a request.

    ``resource_tags`` become ``aws:ResourceTag/<k>``, ``request_tags`` ``aws:RequestTag/<k>`` and
    ``aws:TagKeys`` (the list of keys), ``principal_tags`` ``aws:PrincipalTag/<k>``. With
    ``service`` (``"elasticmapreduce"``), the resource and request tags are repeated under that
    prefix too (``elasticmapreduce:ResourceTag/<k>``, ``elasticmapreduce:TagKeys``).
    """
    prefixes = ["aws"] + ([service] if service else [])
    context: dict[str, object] = {}
    for prefix in prefixes:
        for key, value in (resource_tags or {}).items():
            context[f"{prefix}:ResourceTag/{key}"] = value
        if request_tags is not None:
            for key, value in request_tags.items():
                context[f"{prefix}:RequestTag/{key}"] = value
            context[f"{prefix}:TagKeys"] = list(request_tags)
    for key, value in (principal_tags or {}).items():
        context[f"aws:PrincipalTag/{key}"] = value
    return context


def merge_contexts(*parts: Mapping[str, object] | None) -> dict[str, object]:
    """Later mappings win; keys compared case-insensitively."""
    merged: dict[str, object] = {}
    spelled: dict[str, str] = {}
    for part in parts:
        for key, value in (part or {}).items():
            previous = spelled.get(key.lower())
            if previous is not None:
                del merged[previous]
            spelled[key.lower()] = key
            merged[key] = value
    return merged
