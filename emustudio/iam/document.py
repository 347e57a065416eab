"""Parsing and write-time validation of policy documents, with IAM's error messages.

IAM validates a document when it is stored (``CreatePolicy``, ``PutUserPolicy``,
``CreateRole``'s ``AssumeRolePolicyDocument``, an STS session policy...) and answers
``MalformedPolicyDocument`` with one message. :func:`parse_policy` runs the checks in the order
IAM reports them, so the first problem found is the one IAM would name:

1. size, when ``max_size`` is given: characters outside JSON strings that are not white space
   are not counted ("IAM doesn't count white space"); over the limit is ``LimitExceeded``
   ``Cannot exceed quota for PolicySize: <n>``;
2. syntax -- ``Syntax errors in policy.``: not JSON (duplicate keys and NaN included), not an
   object, an unknown top-level or statement element, ``Version`` other than ``2012-10-17`` or
   ``2008-10-17``, no ``Statement`` or an empty one, both ``Action`` and ``NotAction`` (likewise
   ``Resource``, ``Principal``), ``Effect`` missing or not allow/deny, wrongly typed elements, a
   ``Condition`` that is not ``{operator: {key: value | [values]}}`` (values are strings,
   numbers or booleans) or names an unknown operator. Kind-specific: a ``Principal`` in an
   identity or session policy is ``Policy document should not specify a principal.``; in a trust
   policy ``Resource`` is ``Has prohibited field Resource`` and a missing principal
   ``Missing required field Principal`` (also for resource-based policies);
3. ``managed=True`` (managed policies): ``Version`` must be ``2012-10-17``
   (``Policy document must be version 2012-10-17 or greater.``). Inline, trust and session
   policies may omit it, and it then defaults to ``2008-10-17``;
4. ``The policy failed legacy parsing``: ``Effect`` not spelled ``Allow``/``Deny``, a date
   condition value that is neither ISO 8601 nor epoch seconds, a resource with ``::`` and fewer
   than five colons;
5. ``Statement IDs (SID) in a single policy must be unique.``, then (IAM policies, not
   resource-based ones) ``Statement IDs (SID) must be alpha-numeric. Check that your input
   satisfies the regular expression [0-9A-Za-z]*``;
6. ``Policy statement must contain actions.``, then ``... must contain resources.`` (not for
   trust policies);
7. resource format: ``Resource X must be in ARN format or "*".``, unknown partition, an
   unqualified vendor, region information in IAM/S3 ARNs, IAM resource paths;
8. actions: ``Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.``,
   ``Actions/Condition can contain only one colon.``, ``Vendor X is not valid``; condition keys
   must carry a vendor prefix too; a trust policy may only name ``sts:`` actions
   (``AssumeRole policy may only specify STS AssumeRole actions.``);
9. principals: ``Invalid principal in policy: "AWS":"..."`` (see ``principals.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from emustudio.iam.conditions import OPERATORS, parse_date, split_operator
from emustudio.iam.model import (
    LIMIT_EXCEEDED,
    VERSION_2008,
    VERSION_2012,
    ConditionClause,
    EffectName,
    Policy,
    PolicyError,
    PolicyKind,
    PrincipalSpec,
    Statement,
)
from emustudio.iam.principals import check_principal_values, parse_principal

MANAGED_POLICY_MAX_SIZE = 6144
USER_INLINE_MAX_SIZE = 2048
GROUP_INLINE_MAX_SIZE = 5120
ROLE_INLINE_MAX_SIZE = 10240
TRUST_POLICY_MAX_SIZE = 2048
SESSION_POLICY_MAX_SIZE = 2048

PolicyOwner = Literal["managed", "user", "group", "role", "trust", "session"]

_MAX_SIZES: dict[str, int] = {
    "managed": MANAGED_POLICY_MAX_SIZE,
    "user": USER_INLINE_MAX_SIZE,
    "group": GROUP_INLINE_MAX_SIZE,
    "role": ROLE_INLINE_MAX_SIZE,
    "trust": TRUST_POLICY_MAX_SIZE,
    "session": SESSION_POLICY_MAX_SIZE,
}

SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
VERSION_REQUIRED = "Policy document must be version 2012-10-17 or greater."
SHOULD_NOT_SPECIFY_PRINCIPAL = "Policy document should not specify a principal."
MISSING_PRINCIPAL = "Missing required field Principal"
SID_NOT_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
SID_NOT_ALPHANUMERIC = (
    "Statement IDs (SID) must be alpha-numeric. "
    "Check that your input satisfies the regular expression [0-9A-Za-z]*"
)
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
NO_VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
TRUST_ACTIONS = "AssumeRole policy may only specify STS AssumeRole actions."

_TOP_ELEMENTS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)
_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e"})
_IAM_PATHS = (
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
)
_VENDOR = re.compile(r"[A-Za-z0-9.-]+")
_SID = re.compile(r"[0-9A-Za-z]*")


def max_policy_size(owner: PolicyOwner) -> int:
    """IAM's default size quota for a policy of this owner (inline quotas are per entity)."""
    return _MAX_SIZES[owner]


def policy_size(text: str) -> int:
    """Characters IAM counts against a size quota: all but white space outside strings."""
    size = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            size += 1
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif not char.isspace():
            size += 1
            in_string = char == '"'
    return size


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(SYNTAX)
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise PolicyError(SYNTAX)


def _load(document: str | Mapping[str, Any]) -> tuple[str, Any]:
    if isinstance(document, str):
        try:
            return document, json.loads(
                document, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
            )
        except ValueError as error:  # JSONDecodeError, or PolicyError raised by the hooks
            if isinstance(error, PolicyError):
                raise
            raise PolicyError(SYNTAX) from error
    if isinstance(document, Mapping):
        try:
            return json.dumps(document, allow_nan=False), dict(document)
        except (TypeError, ValueError) as error:
            raise PolicyError(SYNTAX) from error
    raise PolicyError(SYNTAX)


def _strings(value: object) -> tuple[str, ...] | None:
    """A string or list of strings as a tuple; ``None`` if it is neither."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _condition_value(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _parse_conditions(block: object) -> tuple[ConditionClause, ...]:
    if not isinstance(block, dict):
        raise PolicyError(SYNTAX)
    clauses: list[ConditionClause] = []
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise PolicyError(SYNTAX)
        base, set_operator, if_exists = split_operator(operator)
        known = base in OPERATORS
        if not known and keys:
            raise PolicyError(SYNTAX)
        if not known:
            clauses.append(ConditionClause(operator, base, "", (), set_operator, if_exists, False))
        for key, raw in keys.items():
            items = raw if isinstance(raw, list) else [raw]
            values = tuple(_condition_value(item) for item in items)
            if any(value is None for value in values):
                raise PolicyError(SYNTAX)
            clauses.append(
                ConditionClause(
                    operator,
                    base,
                    key,
                    tuple(v for v in values if v is not None),
                    set_operator,
                    if_exists,
                )
            )
    return tuple(clauses)


def _check_statement_shape(raw: object, kind: PolicyKind) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PolicyError(SYNTAX)
    if any(element not in _STATEMENT_ELEMENTS for element in raw):
        raise PolicyError(SYNTAX)
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if kind in ("identity", "session") and has_principal:
        raise PolicyError(SHOULD_NOT_SPECIFY_PRINCIPAL)
    if kind == "trust":
        for element in ("Resource", "NotResource"):
            if element in raw:
                raise PolicyError(f"Has prohibited field {element}")
    if kind in ("trust", "resource") and not has_principal:
        raise PolicyError(MISSING_PRINCIPAL)
    for first, second in (
        ("Action", "NotAction"),
        ("Resource", "NotResource"),
        ("Principal", "NotPrincipal"),
    ):
        if first in raw and second in raw:
            raise PolicyError(SYNTAX)
    effect = raw.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        raise PolicyError(SYNTAX)
    for element in ("Action", "NotAction", "Resource", "NotResource"):
        if element in raw and _strings(raw[element]) is None:
            raise PolicyError(SYNTAX)
    if "Sid" in raw and not isinstance(raw["Sid"], str):
        raise PolicyError(SYNTAX)
    return raw


def _arn_partition_error(resource: str, partition: str, rest: list[str]) -> str:
    first = rest[0] if rest and (rest[0] != "" or len(rest) > 1) else "*"
    second = rest[1] if len(rest) > 1 else "*"
    third = rest[2] if len(rest) > 2 else "*"
    fourth = ":".join(rest[3:]) if len(rest) > 3 else "*"
    return (
        f'Partition "{partition}" is not valid for resource '
        f'"arn:{partition}:{first}:{second}:{third}:{fourth}".'
    )


def resource_format_error(resource: str) -> str | None:
    """IAM's complaint about one ``Resource`` value, or ``None`` if it is acceptable."""
    if resource == "*":
        return None
    parts = resource.split(":")
    if len(parts) < 2 or parts[0] != "arn":
        return f'Resource {resource} must be in ARN format or "*".'
    if parts[1] not in _PARTITIONS:
        return _arn_partition_error(resource, parts[1], parts[2:])
    if len(parts) < 3 or not parts[2] or "*" in parts[2] or "?" in parts[2]:
        return "Resource vendor must be fully qualified and cannot contain regexes."
    service = parts[2]
    region = parts[3] if len(parts) > 3 else ""
    if service == "iam" and region:
        return f"IAM resource {resource} cannot contain region information."
    if service == "s3" and region:
        return f"Resource {resource} can not contain region information."
    if service == "iam":
        path = ":".join(parts[5:])
        if path != "*" and not path.startswith(_IAM_PATHS):
            return f'IAM resource path must either be "*" or start with {", ".join(_IAM_PATHS)}.'
    return None


def _action_error(action: str) -> str | None:
    parts = action.split(":")
    if len(parts) == 1 and parts[0] != "*":
        return NO_VENDOR
    if len(parts) > 2:
        return ONE_COLON
    if parts[0] != "*" and not _VENDOR.fullmatch(parts[0]):
        return f"Vendor {parts[0]} is not valid"
    return None


def _is_sts_action(action: str) -> bool:
    return action == "*" or action.lower().startswith("sts:")


def _validate_semantics(
    raws: list[dict[str, Any]], statements: list[Statement], kind: PolicyKind
) -> None:
    """Steps 4-9 of the module docstring, on statements that passed the syntax check."""
    for raw, statement in zip(raws, statements, strict=True):
        if raw["Effect"] not in ("Allow", "Deny"):
            raise PolicyError(LEGACY)
        for clause in statement.conditions:
            if clause.base.startswith("Date") and any(parse_date(v) is None for v in clause.values):
                raise PolicyError(LEGACY)
        for resource in statement.resources or ():
            if resource != "*" and "::" in resource and resource.count(":") < 5:
                raise PolicyError(LEGACY)
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise PolicyError(SID_NOT_UNIQUE)
    if kind != "resource" and any(not _SID.fullmatch(sid) for sid in sids):
        raise PolicyError(SID_NOT_ALPHANUMERIC)
    if any(not s.actions for s in statements):
        raise PolicyError(NO_ACTIONS)
    if kind != "trust" and any(not s.resources for s in statements):
        raise PolicyError(NO_RESOURCES)
    for statement in statements:
        for resource in sorted(statement.resources or (), reverse=True):
            message = resource_format_error(resource)
            if message is not None:
                raise PolicyError(message)
    for statement in statements:
        for action in statement.actions:
            message = _action_error(action)
            if message is not None:
                raise PolicyError(message)
        for clause in statement.conditions:
            if clause.known and ":" not in clause.key:
                raise PolicyError(NO_VENDOR)
        if kind == "trust" and not all(_is_sts_action(a) for a in statement.actions):
            raise PolicyError(TRUST_ACTIONS)


def _build_statement(index: int, raw: dict[str, Any]) -> Statement:
    effect: EffectName = "Allow" if raw["Effect"].lower() == "allow" else "Deny"
    not_actions = "NotAction" in raw
    actions = _strings(raw.get("NotAction" if not_actions else "Action", [])) or ()
    not_resources = "NotResource" in raw
    resources: tuple[str, ...] | None = None
    if "Resource" in raw or not_resources:
        resources = _strings(raw["NotResource" if not_resources else "Resource"]) or ()
    not_principal = "NotPrincipal" in raw
    principal: PrincipalSpec | None = None
    if "Principal" in raw or not_principal:
        element = raw["NotPrincipal" if not_principal else "Principal"]
        principal = parse_principal(element, check_values=False)
    conditions = _parse_conditions(raw["Condition"]) if "Condition" in raw else ()
    return Statement(
        index=index,
        effect=effect,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        principal=principal,
        not_principal=not_principal,
        conditions=conditions,
        sid=raw.get("Sid"),
    )


def parse_policy(
    document: str | Mapping[str, Any],
    kind: PolicyKind = "identity",
    *,
    name: str | None = None,
    max_size: int | None = None,
    managed: bool = False,
) -> Policy:
    """Validate ``document`` as IAM does on write and return its parsed form.

    ``kind`` picks the grammar (see :data:`emustudio.iam.model.PolicyKind`); ``max_size``
    enforces a size quota (see :func:`max_policy_size`); ``managed`` requires
    ``Version: 2012-10-17`` as ``CreatePolicy`` does. Raises :class:`PolicyError`.
    """
    if isinstance(document, str) and max_size is not None and policy_size(document) > max_size:
        raise PolicyError(f"Cannot exceed quota for PolicySize: {max_size}", LIMIT_EXCEEDED)
    text, data = _load(document)
    if max_size is not None and policy_size(text) > max_size:
        raise PolicyError(f"Cannot exceed quota for PolicySize: {max_size}", LIMIT_EXCEEDED)
    if not isinstance(data, dict) or any(key not in _TOP_ELEMENTS for key in data):
        raise PolicyError(SYNTAX)
    version = data.get("Version")
    if version is not None and version not in (VERSION_2012, VERSION_2008):
        raise PolicyError(SYNTAX)
    if "Id" in data and not isinstance(data["Id"], str):
        raise PolicyError(SYNTAX)
    body = data.get("Statement")
    raws_in = [body] if isinstance(body, dict) else body
    if not isinstance(raws_in, list) or not raws_in:
        raise PolicyError(SYNTAX)
    raws = [_check_statement_shape(raw, kind) for raw in raws_in]
    statements = [_build_statement(index, raw) for index, raw in enumerate(raws)]
    if managed and version != VERSION_2012:
        raise PolicyError(VERSION_REQUIRED)
    _validate_semantics(raws, statements, kind)
    for statement in statements:
        if statement.principal is not None:
            check_principal_values(statement.principal)
    return Policy(
        statements=tuple(statements),
        kind=kind,
        version=version or VERSION_2008,
        policy_id=data.get("Id"),
        text=text,
        name=name,
    )
