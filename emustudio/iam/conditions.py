"""Condition operators: one ``operator: {key: values}`` clause against the request context.

Semantics (IAM User Guide, "Condition operators" and "Multivalued context keys"):

* Operators: ``String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike}``,
  ``Numeric{Equals,NotEquals,LessThan,LessThanEquals,GreaterThan,GreaterThanEquals}``, the same
  six for ``Date``, ``Bool``, ``BinaryEquals``, ``IpAddress``/``NotIpAddress``,
  ``Arn{Equals,Like,NotEquals,NotLike}`` and ``Null``; any of them with an ``IfExists`` suffix and
  a ``ForAllValues:``/``ForAnyValue:`` prefix. An unknown operator never matches (fail-closed).
* Several values for one key are ORed: the clause's positive test holds for a request value
  when it matches *any* policy value. A negated operator is the negation of its positive twin
  (``StringNotEquals`` with ``[a, b]`` holds when the value is neither ``a`` nor ``b``).
  Several keys, and several operators, are ANDed (``evaluate_conditions``).
* Absent key. AWS: "If the key that you specify in a policy condition is not present in the
  request context, the values do not match and the condition is false. If the policy condition
  requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is
  not present, the condition is true." ``...IfExists`` makes an absent key true for every
  operator; ``ForAllValues:`` is true and ``ForAnyValue:`` false for an absent (or empty) key.
  ``IfExists`` is checked first, so ``ForAnyValue:...IfExists`` on an absent key is true.
* ``Null``: ``"true"`` holds when the key is absent, ``"false"`` when it is present.
* Set operators on a multivalued key: ``ForAllValues`` holds when every request value passes
  (for negated operators: passes the negated test), ``ForAnyValue`` when at least one does.
  Without a set operator a multivalued key is tested as "any request value matches", and a
  negated operator negates that.
* Policy variables are substituted in string, ARN and ``Bool`` values only. A value whose
  variable does not resolve makes the clause false whatever the operator: AWS says the
  statement becomes invalid, so it does not apply (for an Allow or a Deny alike).
* Values that do not parse (a non-numeric ``NumericEquals`` value, a bad CIDR, a date that is
  not ISO 8601 or epoch seconds, ``Bool`` other than true/false, bad base64) match nothing, on
  either side; negated operators negate that as usual.
* ``StringEqualsIgnoreCase`` compares ``str.lower()`` forms.
* Dates compare as instants: W3C ISO 8601 (``2020-01`` down to fractions of a second; no zone
  means UTC), and a value of digits only is epoch seconds on either side, as in IAM's parser (so
  ``"2020"`` is 1970-01-01T00:33:40Z, not the year).
* ``IpAddress`` takes CIDRs or bare addresses (``/32``, ``/128``) and never matches across
  IPv4/IPv6. ``BinaryEquals`` compares the decoded bytes of the base64 policy value with the
  context value (bytes given to the context are base64-encoded by ``keys.py``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from emustudio.iam.keys import ConditionContext
from emustudio.iam.model import ConditionClause, SetOperator
from emustudio.iam.patterns import Mode, Tokens, tokenize_plain, tokens_match
from emustudio.iam.variables import substitute, substitute_text

SET_OPERATORS: tuple[SetOperator, ...] = ("ForAllValues", "ForAnyValue")

#: negated operator -> the positive operator it negates
NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}

POSITIVE: frozenset[str] = frozenset(
    {
        "StringEquals",
        "StringEqualsIgnoreCase",
        "StringLike",
        "NumericEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "ArnEquals",
        "ArnLike",
        "Null",
    }
)

OPERATORS: frozenset[str] = POSITIVE | frozenset(NEGATED)
"""Every base operator name IAM accepts (before ``IfExists`` and set prefixes)."""

_VARIABLE_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool"}
)


def split_operator(operator: str) -> tuple[str, SetOperator | None, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ``("StringLike", "ForAnyValue", True)``.

    Names are case-sensitive, as in IAM. The base may be unknown; check it against
    :data:`OPERATORS`.
    """
    set_operator: SetOperator | None = None
    base = operator
    for prefix in SET_OPERATORS:
        if base.startswith(prefix + ":"):
            set_operator = prefix
            base = base[len(prefix) + 1 :]
            break
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    return base, set_operator, if_exists


# ---------------------------------------------------------------- value parsing


@lru_cache(maxsize=4096)
def parse_number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


_DATE = re.compile(
    r"""(?P<year>\d{4})
    (?:-(?P<month>\d{2})
      (?:-(?P<day>\d{2})
        (?:[Tt](?P<hour>\d{2}):(?P<minute>\d{2})
          (?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?
          (?P<zone>[Zz]|[+-]\d{2}:?\d{2})?
        )?
      )?
    )?""",
    re.VERBOSE,
)


@lru_cache(maxsize=4096)
def parse_date(text: str) -> float | None:
    """Seconds since the epoch of a W3C ISO 8601 date (or epoch seconds), else ``None``."""
    text = text.strip()
    if re.fullmatch(r"\d{1,19}", text):
        return float(int(text))
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    part = match.groupdict()
    try:
        zone = dt.UTC
        if part["zone"] and part["zone"] not in "Zz":
            sign = -1 if part["zone"][0] == "-" else 1
            digits = part["zone"][1:].replace(":", "")
            offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            zone = dt.timezone(sign * offset)
        fraction = (part["fraction"] or "0")[:6].ljust(6, "0")
        moment = dt.datetime(
            int(part["year"]),
            int(part["month"] or 1),
            int(part["day"] or 1),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            int(fraction),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return moment.timestamp()


@lru_cache(maxsize=1024)
def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def parse_bool(text: str) -> str | None:
    lowered = text.strip().lower()
    return lowered if lowered in ("true", "false") else None


def parse_binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# ---------------------------------------------------------------- comparisons
# Each takes (request value, policy value) and answers the *positive* operator.


def _numeric(test: Callable[[Decimal, Decimal], bool]) -> Callable[[str, str], bool]:
    def compare(value: str, policy: str) -> bool:
        left, right = parse_number(value), parse_number(policy)
        return left is not None and right is not None and test(left, right)

    return compare


def _date(test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def compare(value: str, policy: str) -> bool:
        left, right = parse_date(value), parse_date(policy)
        return left is not None and right is not None and test(left, right)

    return compare


def _bool(value: str, policy: str) -> bool:
    left, right = parse_bool(value), parse_bool(policy)
    return left is not None and left == right


def _binary(value: str, policy: str) -> bool:
    left, right = parse_binary(value), parse_binary(policy)
    return left is not None and left == right


def _ip(value: str, policy: str) -> bool:
    network = parse_network(policy)
    if network is None:
        return False
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return address.version == network.version and address in network


_TEXT_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, policy: value == policy,
    "StringEqualsIgnoreCase": lambda value, policy: value.lower() == policy.lower(),
    "NumericEquals": _numeric(lambda a, b: a == b),
    "NumericLessThan": _numeric(lambda a, b: a < b),
    "NumericLessThanEquals": _numeric(lambda a, b: a <= b),
    "NumericGreaterThan": _numeric(lambda a, b: a > b),
    "NumericGreaterThanEquals": _numeric(lambda a, b: a >= b),
    "DateEquals": _date(lambda a, b: a == b),
    "DateLessThan": _date(lambda a, b: a < b),
    "DateLessThanEquals": _date(lambda a, b: a <= b),
    "DateGreaterThan": _date(lambda a, b: a > b),
    "DateGreaterThanEquals": _date(lambda a, b: a >= b),
    "Bool": _bool,
    "BinaryEquals": _binary,
    "IpAddress": _ip,
}

_PATTERN_MODES: dict[str, Mode] = {"StringLike": "string", "ArnLike": "arn", "ArnEquals": "arn"}


def _policy_matcher(
    positive: str, values: Iterable[str], context: ConditionContext, variables: bool
) -> Callable[[str], bool] | None:
    """A test "does this request value match any policy value"; ``None`` if unresolvable."""
    substitute_here = variables and positive in _VARIABLE_OPERATORS
    mode = _PATTERN_MODES.get(positive)
    if mode is not None:
        patterns: list[Tokens] = []
        for value in values:
            tokens = substitute(value, context) if substitute_here else tokenize_plain(value)
            if tokens is None:
                return None
            patterns.append(tokens)
        return lambda candidate: any(tokens_match(t, candidate, mode) for t in patterns)
    texts: list[str] = []
    for value in values:
        text = substitute_text(value, context) if substitute_here else value
        if text is None:
            return None
        texts.append(text)
    compare = _TEXT_COMPARISONS[positive]
    return lambda candidate: any(compare(candidate, text) for text in texts)


def _null(clause: ConditionClause, present: tuple[str, ...] | None) -> bool:
    wanted = "true" if present is None else "false"
    return any(parse_bool(value) == wanted for value in clause.values)


def evaluate_clause(
    clause: ConditionClause, context: ConditionContext, variables: bool = True
) -> bool:
    """Whether one clause holds; ``variables`` is whether the policy's Version enables them."""
    if not clause.known or clause.base not in OPERATORS:
        return False
    present = context.values(clause.key)
    if present is None and clause.if_exists:
        return True
    if clause.base == "Null":
        return _null(clause, present)
    negated = clause.base in NEGATED
    if present is None:
        if clause.set_operator == "ForAllValues":
            return True
        if clause.set_operator == "ForAnyValue":
            return False
        return negated
    positive = NEGATED.get(clause.base, clause.base)
    hit = _policy_matcher(positive, clause.values, context, variables)
    if hit is None:
        return False
    if clause.set_operator is None:
        found = any(hit(value) for value in present)
        return not found if negated else found
    passes = [hit(value) != negated for value in present]
    return all(passes) if clause.set_operator == "ForAllValues" else any(passes)


def evaluate_conditions(
    clauses: Iterable[ConditionClause], context: ConditionContext, variables: bool = True
) -> bool:
    """All clauses hold (an empty ``Condition`` holds)."""
    return all(evaluate_clause(clause, context, variables) for clause in clauses)
