"""The parsed form of an IAM policy document.

A :class:`Policy` is what :func:`emustudio.iam.document.parse_policy` returns once a document has
passed IAM's write-time validation. It keeps the text it was parsed from (IAM hands the document
back as written) and its statements in a normalised shape:

* every list-or-string element (``Action``, ``Resource``, condition values, ...) is a tuple;
* ``Action``/``NotAction`` become ``actions`` plus ``not_actions``, and likewise for resources and
  principals, so evaluation never has to ask which spelling a statement used;
* each ``{operator: {key: values}}`` pair of a ``Condition`` block becomes one
  :class:`ConditionClause`, with the set prefix (``ForAllValues:``/``ForAnyValue:``) and the
  ``IfExists`` suffix already split off the operator name. Condition values are strings, the way
  IAM compares them: JSON ``true`` is ``"true"`` and ``10`` is ``"10"``.

Nothing here evaluates anything; see ``evaluate.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

PolicyKind = Literal["identity", "trust", "resource", "session"]
"""What a document is written as, which decides its grammar.

``identity`` (user/group/role policies, managed policies, permissions boundaries) and ``session``
(the ``Policy``/``PolicyArns`` of an STS call) have ``Resource`` and no ``Principal``; ``trust``
(a role's assume-role policy) has ``Principal`` and no ``Resource``; ``resource`` (a resource-based
policy such as a bucket policy) has both.
"""

EffectName = Literal["Allow", "Deny"]
SetOperator = Literal["ForAllValues", "ForAnyValue"]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"

MALFORMED = "MalformedPolicyDocument"
LIMIT_EXCEEDED = "LimitExceeded"


class PolicyError(ValueError):
    """A document IAM would refuse to store.

    ``str(error)`` is the message IAM puts in its error response; ``code`` is the error code:
    ``MalformedPolicyDocument`` for grammar errors, ``LimitExceeded`` for size.
    """

    def __init__(self, message: str, code: str = MALFORMED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class PrincipalSpec:
    """A ``Principal`` or ``NotPrincipal`` element.

    ``"Principal": "*"`` is ``anyone=True`` with no entries. Otherwise ``entries`` holds one
    ``(type, value)`` pair per listed principal, ``type`` being ``AWS``, ``Service``,
    ``Federated`` or ``CanonicalUser`` as written in the policy. An ``{"AWS": "*"}`` entry is kept
    as an entry; matching treats it like ``anyone``.
    """

    anyone: bool
    entries: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ConditionClause:
    """One ``operator: {key: values}`` pair of a ``Condition`` block.

    ``operator`` is the full name as written (``ForAnyValue:StringLikeIfExists``); ``base`` is
    what is left once the set prefix and ``IfExists`` are removed (``StringLike``). A clause whose
    ``base`` is not a known operator is kept with ``known=False`` (it can only come from a policy
    built without validation) and never matches.
    """

    operator: str
    base: str
    key: str
    values: tuple[str, ...]
    set_operator: SetOperator | None = None
    if_exists: bool = False
    known: bool = True


@dataclass(frozen=True)
class Statement:
    """One statement, normalised.

    ``resources`` is ``None`` when the statement has neither ``Resource`` nor ``NotResource``
    (trust policies), which means "whatever the request names". ``principal`` is ``None`` when
    it has neither ``Principal`` nor ``NotPrincipal`` (identity and session policies).
    """

    index: int
    effect: EffectName
    actions: tuple[str, ...]
    not_actions: bool = False
    resources: tuple[str, ...] | None = None
    not_resources: bool = False
    principal: PrincipalSpec | None = None
    not_principal: bool = False
    conditions: tuple[ConditionClause, ...] = ()
    sid: str | None = None

    @property
    def label(self) -> str:
        """``Sid`` if the statement has a non-empty one, else ``#<index>`` (0-based)."""
        return self.sid if self.sid else f"#{self.index}"


@dataclass(frozen=True)
class Policy:
    """A validated policy document.

    ``version`` is the effective language version: ``2008-10-17`` when the document has no
    ``Version`` (as AWS defaults it). Policy variables are only substituted under
    ``2012-10-17``. ``name`` is whatever the caller wants decisions to cite (a managed policy's
    ARN, ``user/alice/inline-name``...); it is not part of the document.
    """

    statements: tuple[Statement, ...]
    kind: PolicyKind = "identity"
    version: str = VERSION_2012
    policy_id: str | None = None
    text: str = ""
    name: str | None = None

    @property
    def supports_variables(self) -> bool:
        return self.version == VERSION_2012

    def named(self, name: str | None) -> Policy:
        """The same policy, cited as ``name`` in decisions."""
        return dataclasses.replace(self, name=name)
