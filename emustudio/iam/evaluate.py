"""The authorization decision: explicit deny, allow, or implicit deny, and why.

Follows the IAM User Guide's "Policy evaluation logic" for one request:

* A statement *applies* when the action matches ``Action`` (or is outside ``NotAction``), the
  resource matches ``Resource`` (or is outside ``NotResource``; trust statements have neither and
  match any resource), its ``Principal`` names the caller (or ``NotPrincipal`` does not exclude
  it), and every condition clause holds. An Allow whose condition fails is simply not
  applicable; nothing here turns it into a deny.
* Policy variables: a ``Resource`` entry whose variable does not resolve matches nothing; in
  ``NotResource`` it makes the statement inapplicable (AWS: the statement "is invalid"), and in a
  condition value the clause is false (``conditions.py``).
* An applicable Deny in any policy -- identity, session, permissions boundary or resource-based --
  wins: ``EXPLICIT_DENY``.
* Otherwise, within one account:

  - a resource-based policy that names the caller's exact ARN (an IAM user, a role *session*)
    allows, whatever the identity policies, boundary or session policies say;
  - else the request needs a grant -- an identity-based Allow, or a resource-based Allow naming
    the caller's role ARN or ``*`` (an Allow naming only the *account* delegates to identity
    policies and is no grant by itself) -- and then the permissions boundary, if any, must allow
    too, and so must the session policies, if any (the intersection);
  - a role trust policy (resource policies of kind ``trust``) is always required: assuming a
    role needs the trust policy to allow, and the caller's identity policies as well when the
    trust policy names only the account.

* Across accounts (the resource's account, from ``PolicySet.resource_account`` or the resource
  ARN, differs from the caller's) both sides must allow: identity (within boundary and session)
  and a resource-based policy. Only a 12-digit account field counts: ``arn:aws:iam::aws:policy/..``
  (AWS managed policies) and ARNs without an account (S3) are the caller's own.
* ``PolicySet.session`` is ``None`` when no session policy is in effect. A sequence, even an
  empty one, means session policies were passed, and an action must be allowed by one of them.

No I/O and no defaults are filled in: the gateway supplies every condition key in
``AuthzRequest.context`` (``aws:PrincipalArn`` names the role of a session, for matching
``Principal`` elements that name the role).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from emustudio.iam.conditions import evaluate_conditions
from emustudio.iam.keys import ConditionContext
from emustudio.iam.model import EffectName, Policy, Statement
from emustudio.iam.patterns import any_action_matches, tokens_match
from emustudio.iam.principals import (
    Caller,
    MatchKind,
    account_of,
    excluded_by_not_principal,
    match_principal,
)
from emustudio.iam.variables import substitute

Layer = Literal["identity", "session", "boundary", "resource", "trust"]

LAYER_NAMES: dict[Layer, str] = {
    "identity": "identity-based policy",
    "session": "session policy",
    "boundary": "permissions boundary",
    "resource": "resource-based policy",
    "trust": "role trust policy",
}


class Effect(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class AuthzRequest:
    """One authorization question.

    ``action`` is ``service:Action`` (matched case-insensitively); ``resource`` one ARN or
    ``"*"``; ``principal_arn`` the caller (a user, root, or ``assumed-role`` session ARN);
    ``context`` the condition keys (see ``keys.py`` for the value types).
    """

    action: str
    resource: str
    principal_arn: str
    context: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicySet:
    """Every policy that bears on a request (see the module docstring for how they combine).

    ``identity``: the user's inline and managed policies and its groups', or the role's.
    ``session``: ``None`` if no session policy is in effect, else the session policies.
    ``boundary``: the permissions boundary, if any. ``resource``: resource-based policies; a
    role's trust policy goes here for ``sts:AssumeRole``. ``resource_account``: the account
    that owns the resource, if the resource ARN does not say.
    """

    identity: Sequence[Policy] = ()
    session: Sequence[Policy] | None = None
    boundary: Policy | None = None
    resource: Sequence[Policy] = ()
    resource_account: str | None = None


@dataclass(frozen=True)
class MatchedStatement:
    """A statement that applied: which layer and policy (``Policy.name``), which statement."""

    layer: Layer
    policy: str | None
    index: int
    sid: str | None
    effect: EffectName
    principal_match: MatchKind | None = None

    @property
    def label(self) -> str:
        return self.sid if self.sid else f"#{self.index}"

    def describe(self) -> str:
        name = f" {self.policy}" if self.policy else ""
        return f"{LAYER_NAMES[self.layer]}{name} (statement {self.label})"


@dataclass(frozen=True)
class Decision:
    """The outcome: ``effect``, the statements behind it, a readable ``reason``.

    ``denied_by`` names the layer that denied (the explicit Deny's, or the one that failed to
    allow); it is ``None`` when allowed. ``matched`` holds the applicable Deny statements of an
    explicit deny, the Allow statements that granted an allow, and for an implicit deny the
    Allow statements that did apply in other layers (useful to explain a narrowing).
    """

    effect: Effect
    matched: tuple[MatchedStatement, ...]
    reason: str
    denied_by: Layer | None = None

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


@dataclass
class _Scan:
    allows: list[MatchedStatement] = field(default_factory=list)
    denies: list[MatchedStatement] = field(default_factory=list)


def _resource_hit(
    statement: Statement, resource: str, context: ConditionContext, variables: bool
) -> bool | None:
    """Whether a listed pattern matches the resource; ``None`` if the statement is invalid."""
    hit = False
    for pattern in statement.resources or ():
        tokens = substitute(pattern, context, variables)
        if tokens is None:
            if statement.not_resources:
                return None
            continue
        if tokens_match(tokens, resource, "resource"):
            hit = True
    return hit


def statement_applies(
    statement: Statement,
    request: AuthzRequest,
    context: ConditionContext,
    caller: Caller,
    *,
    variables: bool,
    principal_required: bool = False,
) -> tuple[bool, MatchKind | None]:
    """Whether ``statement`` applies to the request, and how its ``Principal`` named the caller."""
    named = any_action_matches(statement.actions, request.action)
    if named == statement.not_actions:
        return False, None
    if statement.resources is not None:
        hit = _resource_hit(statement, request.resource, context, variables)
        if hit is None or hit == statement.not_resources:
            return False, None
    kind: MatchKind | None = None
    if statement.principal is not None:
        if statement.not_principal:
            if excluded_by_not_principal(statement.principal, caller):
                return False, None
            kind = "anyone"
        else:
            kind = match_principal(statement.principal, caller)
            if kind is None:
                return False, None
    elif principal_required:
        return False, None
    if not evaluate_conditions(statement.conditions, context, variables):
        return False, None
    return True, kind


def _scan(
    policies: Iterable[Policy],
    layer: Layer,
    request: AuthzRequest,
    context: ConditionContext,
    caller: Caller,
) -> _Scan:
    found = _Scan()
    required = layer in ("resource", "trust")
    for policy in policies:
        for statement in policy.statements:
            applies, kind = statement_applies(
                statement,
                request,
                context,
                caller,
                variables=policy.supports_variables,
                principal_required=required,
            )
            if not applies:
                continue
            matched = MatchedStatement(
                layer, policy.name, statement.index, statement.sid, statement.effect, kind
            )
            (found.allows if statement.effect == "Allow" else found.denies).append(matched)
    return found


def _explicit(denies: Sequence[MatchedStatement]) -> Decision:
    first = denies[0]
    return Decision(
        Effect.EXPLICIT_DENY, tuple(denies), f"explicit deny in {first.describe()}", first.layer
    )


def _implicit(layer: Layer, applied: Iterable[MatchedStatement]) -> Decision:
    reason = f"no {LAYER_NAMES[layer]} allows the action"
    return Decision(Effect.IMPLICIT_DENY, tuple(applied), reason, layer)


def _allow(matched: Sequence[MatchedStatement]) -> Decision:
    return Decision(Effect.ALLOW, tuple(matched), f"allowed by {matched[0].describe()}")


def _caller(request: AuthzRequest, context: ConditionContext) -> Caller:
    return Caller.from_arn(request.principal_arn, context.single("aws:PrincipalArn"))


def evaluate(request: AuthzRequest, policies: PolicySet) -> Decision:
    """Decide ``request`` against ``policies`` (see the module docstring)."""
    context = ConditionContext(request.context)
    caller = _caller(request, context)
    trust = bool(policies.resource) and all(p.kind == "trust" for p in policies.resource)
    resource_layer: Layer = "trust" if trust else "resource"
    identity = _scan(policies.identity, "identity", request, context, caller)
    resource = _scan(policies.resource, resource_layer, request, context, caller)
    boundary = _scan(
        [policies.boundary] if policies.boundary else [], "boundary", request, context, caller
    )
    session = _scan(policies.session or (), "session", request, context, caller)

    denies = identity.denies + resource.denies + boundary.denies + session.denies
    if denies:
        return _explicit(denies)

    applied = identity.allows + resource.allows + boundary.allows + session.allows
    requester = account_of(request.principal_arn)
    owner = policies.resource_account
    if owner is None and request.resource != "*":
        owner = account_of(request.resource)
    cross_account = (
        requester is not None and owner is not None and owner.isdigit() and owner != requester
    )

    direct = [m for m in resource.allows if m.principal_match == "direct"]
    if direct and not cross_account:
        return _allow(direct)
    if (cross_account or trust) and not resource.allows:
        return _implicit(resource_layer, applied)
    delegated = [m for m in resource.allows if m.principal_match in ("role", "anyone")]
    granted = bool(identity.allows) or (bool(delegated) and not cross_account)
    if not granted:
        return _implicit("identity", applied)
    if policies.boundary is not None and not boundary.allows:
        return _implicit("boundary", applied)
    if policies.session is not None and not session.allows:
        return _implicit("session", applied)
    return _allow(applied)


def evaluate_trust(
    request: AuthzRequest,
    trust_policy: Policy,
    principal: Mapping[str, Sequence[str]] | None = None,
) -> Decision:
    """Whether ``trust_policy`` alone lets the caller do ``request.action`` (``sts:Assume*``).

    For callers with no identity policies of their own: a service (``{"Service": [...]}``), a
    SAML or OIDC federated user (``{"Federated": [provider arn]}``). ``principal`` defaults to
    the identities of ``request.principal_arn``. For an IAM user or role assuming a role, use
    :func:`evaluate` with the trust policy in ``PolicySet.resource``, which also weighs the
    caller's identity policies.
    """
    context = ConditionContext(request.context)
    caller = Caller.from_mapping(principal) if principal is not None else _caller(request, context)
    found = _scan([trust_policy], "trust", request, context, caller)
    if found.denies:
        return _explicit(found.denies)
    if found.allows:
        return _allow(found.allows)
    return _implicit("trust", ())


def principal_matches(policy: Policy, principal: Mapping[str, Sequence[str]]) -> bool:
    """Whether some Allow statement of ``policy`` names ``principal`` (actions and conditions
    are not considered)."""
    caller = Caller.from_mapping(principal)
    for statement in policy.statements:
        if statement.effect != "Allow" or statement.principal is None:
            continue
        if statement.not_principal:
            if not excluded_by_not_principal(statement.principal, caller):
                return True
        elif match_principal(statement.principal, caller) is not None:
            return True
    return False
