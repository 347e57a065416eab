"""Input validation against an operation's input shape, with AWS's error wording.

:func:`collect_violations` walks typed parameters (already shaped like boto3 input) and
returns every violated constraint in model order: required members, string/blob/list/map
length, numeric range, enum and (Java) pattern. :func:`validate` raises the protocol's error:

* ``json``  -> ``ValidationException``, Coral's ``N validation error(s) detected: ...`` text;
* ``query`` -> ``ValidationError`` with the same text;
* ``ec2``   -> ``MissingParameter`` ("The request must contain the parameter VpcId") for the
  first missing required member, else ``InvalidParameterValue`` for the first violation.

Member paths in Coral messages are the lowerCamelCase member names joined with ``.``; list
elements add their 1-based index (``tags.1.key``, where Coral itself would write
``tags.1.member.key``) and map entries their key (``configurations.1.properties.<key>``).
EC2 messages use wire names instead (``TagSpecification.1.ResourceType``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from botocore.model import OperationModel, Shape

from emustudio.aws.errors import ValidationFailed
from emustudio.aws.protocol.naming import ec2_name, lower_camel
from emustudio.aws.protocol.patterns import matches

_MISSING: Any = object()
_CONTAINER_REPR_LIMIT = 256


class Step(NamedTuple):
    """One step of a member path: a structure member, a list index (1-based) or a map key."""

    kind: str  # "member" | "index" | "key"
    name: str | int
    shape: Shape | None = None


@dataclass(frozen=True)
class Violation:
    path: tuple[Step, ...]
    value: Any
    constraint: str
    sensitive: bool = False

    @property
    def missing(self) -> bool:
        return self.value is _MISSING


# --- collection ---------------------------------------------------------------------------


def collect_violations(
    shape: Shape | None, params: Any, *, check_patterns: bool = True
) -> list[Violation]:
    """Every constraint ``params`` violates, in model order."""
    out: list[Violation] = []
    if shape is not None:
        _check(shape, params, (), out, check_patterns)
    return out


def _length(value: str) -> int:
    # Java measures strings in UTF-16 code units.
    if value.isascii():
        return len(value)
    return len(value.encode("utf-16-le")) // 2


def _check(
    shape: Shape, value: Any, path: tuple[Step, ...], out: list[Violation], patterns: bool
) -> None:
    type_name = shape.type_name
    metadata = shape.metadata
    sensitive = bool(metadata.get("sensitive"))

    def fail(constraint: str) -> None:
        out.append(Violation(path, value, constraint, sensitive))

    if type_name == "structure":
        if shape.is_document_type or not isinstance(value, dict):
            return
        order, required, checked = _structure(shape)
        members = shape.members
        # The members given and the required ones, in model order: a request names a few of
        # an operation's members (S3's PutObject has forty), so those are all looked at.
        names = sorted(
            {n for n in value if n in order} | required, key=order.__getitem__
        )  # fmt: skip
        for name in names:
            member = members[name]
            step = Step("member", name, member)
            member_value = value.get(name)
            if member_value is None:
                if name in required:
                    out.append(
                        Violation(
                            (*path, step),
                            _MISSING,
                            "Member must not be null",
                            bool(member.metadata.get("sensitive")),
                        )
                    )
                continue
            if name in checked:
                _check(member, member_value, (*path, step), out, patterns)
        return
    if type_name == "list":
        if not isinstance(value, list):
            return
        _check_length(metadata, len(value), fail)
        for i, item in enumerate(value, 1):
            if item is not None:
                _check(shape.member, item, (*path, Step("index", i)), out, patterns)
        return
    if type_name == "map":
        if not isinstance(value, dict):
            return
        _check_length(metadata, len(value), fail)
        for key, item in value.items():
            step = Step("key", str(key))
            _check(shape.key, key, (*path, step), out, patterns)
            if item is not None:
                _check(shape.value, item, (*path, step), out, patterns)
        return
    if type_name == "string":
        if not isinstance(value, str):
            return
        _check_length(metadata, _length(value), fail)
        enum = metadata.get("enum")
        if enum and value not in enum:
            fail(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = metadata.get("pattern")
        if patterns and pattern is not None and not matches(pattern, value):
            fail(f"Member must satisfy regular expression pattern: {pattern}")
        return
    if type_name == "blob":
        if isinstance(value, bytes | bytearray):
            _check_length(metadata, len(value), fail)
        return
    if type_name in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        low, high = metadata.get("min"), metadata.get("max")
        if low is not None and value < low:
            fail(f"Member must have value greater than or equal to {_number(low)}")
        if high is not None and value > high:
            fail(f"Member must have value less than or equal to {_number(high)}")


_STRUCTURES: dict[int, tuple[Shape, dict[str, int], frozenset[str], frozenset[str]]] = {}
_CONSTRAINTS = ("min", "max", "enum", "pattern")


def _structure(shape: Shape) -> tuple[dict[str, int], frozenset[str], frozenset[str]]:
    """A structure's member order, required members, and the members a value of can violate
    something (a scalar without min, max, enum or pattern cannot: S3's PutObject has a dozen
    such, each a call tree of its own before), read from the model once per shape."""
    found = _STRUCTURES.get(id(shape))
    if found is None or found[0] is not shape:
        order = {name: i for i, name in enumerate(shape.members)}
        checked = frozenset(
            name
            for name, member in shape.members.items()
            if member.type_name in ("structure", "list", "map")
            or any(key in member.metadata for key in _CONSTRAINTS)
        )
        found = (shape, order, frozenset(shape.required_members), checked)
        _STRUCTURES[id(shape)] = found
    return found[1], found[2], found[3]


def _check_length(metadata: dict[str, Any], length: int, fail: Any) -> None:
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and length < low:
        fail(f"Member must have length greater than or equal to {_number(low)}")
    if high is not None and length > high:
        fail(f"Member must have length less than or equal to {_number(high)}")


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- rendering ----------------------------------------------------------------------------


def java_repr(value: Any) -> str:
    """Roughly Java's ``toString`` of the deserialized value, as Coral prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(java_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_repr(v)}" for k, v in value.items()) + "}"
    return str(value)


def _shown_value(violation: Violation) -> str:
    if violation.sensitive:
        # Coral leaves sensitive values out of its messages altogether.
        return ""
    if violation.missing:
        return " null"
    text = java_repr(violation.value)
    if isinstance(violation.value, list | dict) and len(text) > _CONTAINER_REPR_LIMIT:
        text = text[: _CONTAINER_REPR_LIMIT - 3] + "..."
    return f" '{text}'"


def coral_path(path: tuple[Step, ...]) -> str:
    parts: list[str] = []
    for step in path:
        parts.append(lower_camel(str(step.name)) if step.kind == "member" else str(step.name))
    return ".".join(parts)


def ec2_path(path: tuple[Step, ...]) -> str:
    parts: list[str] = []
    for step in path:
        if step.kind == "member" and step.shape is not None:
            parts.append(ec2_name(str(step.name), step.shape))
        else:
            parts.append(str(step.name))
    return ".".join(parts)


def coral_message(violations: list[Violation]) -> str:
    """``1 validation error detected: Value 'x' at 'name' failed to satisfy constraint: ...``"""
    count = len(violations)
    head = f"{count} validation error{'s' if count != 1 else ''} detected: "
    details = [
        f"Value{_shown_value(v)} at '{coral_path(v.path)}' failed to satisfy constraint: "
        f"{v.constraint}"
        for v in violations
    ]
    return head + "; ".join(details)


def _ec2_error(violations: list[Violation]) -> ValidationFailed:
    for v in violations:
        if v.missing:
            return ValidationFailed(
                f"The request must contain the parameter {ec2_path(v.path)}",
                code="MissingParameter",
            )
    first = violations[0]
    shown = "***" if first.sensitive else java_repr(first.value)
    return ValidationFailed(
        f"Value ({shown}) for parameter {ec2_path(first.path)} is invalid. {first.constraint}",
        code="InvalidParameterValue",
    )


def validation_error(protocol: str, violations: list[Violation]) -> ValidationFailed:
    """The error a service of ``protocol`` answers for these (non-empty) violations."""
    if protocol == "ec2":
        return _ec2_error(violations)
    code = "ValidationError" if protocol == "query" else "ValidationException"
    return ValidationFailed(coral_message(violations), code=code)


def validate(op_model: OperationModel, params: dict[str, Any]) -> None:
    """Raise the protocol's validation error if ``params`` violate the input shape."""
    protocol: str = op_model.metadata.get("protocol", "json")
    # EC2 does not enforce its models' patterns, some of which no string can match.
    violations = collect_violations(op_model.input_shape, params, check_patterns=protocol != "ec2")
    if violations:
        raise validation_error(protocol, violations)
