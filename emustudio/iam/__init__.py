"""The IAM policy language: parse, validate, evaluate, explain. Pure: no I/O, no other room.

Modules, each stating the AWS semantics it implements:

``model``       the parsed policy (:class:`Policy`, :class:`Statement`...), :class:`PolicyError`
``document``    :func:`parse_policy`: JSON, grammar and IAM's write-time messages, size quotas
``patterns``    ``*``/``?`` wildcards for actions, resources, ``StringLike`` and ARN values
``variables``   ``${aws:username}``, defaults, ``${*}`` escapes
``keys``        the request context (case-insensitive condition keys) and tag keys
``conditions``  every condition operator, ``IfExists``, ``ForAllValues:``/``ForAnyValue:``
``principals``  ``Principal``/``NotPrincipal`` grammar and matching
``evaluate``    :func:`evaluate`: explicit deny > allow > implicit deny, boundaries, sessions
``explain``     :func:`deny_message`: AWS's ``AccessDenied`` text

Typical use by the gateway::

    policy = parse_policy(document_text, name="arn:aws:iam::000000000000:policy/Studio")
    decision = evaluate(
        AuthzRequest("elasticmapreduce:CreateStudio", "*", caller_arn, context),
        PolicySet(identity=[policy]),
    )
    if not decision.allowed:
        raise AccessDenied(deny_message(caller_arn, action, resource, decision))
"""

from emustudio.iam.document import (
    GROUP_INLINE_MAX_SIZE,
    MANAGED_POLICY_MAX_SIZE,
    ROLE_INLINE_MAX_SIZE,
    SESSION_POLICY_MAX_SIZE,
    TRUST_POLICY_MAX_SIZE,
    USER_INLINE_MAX_SIZE,
    max_policy_size,
    parse_policy,
    policy_size,
)
from emustudio.iam.evaluate import (
    AuthzRequest,
    Decision,
    Effect,
    Layer,
    MatchedStatement,
    PolicySet,
    evaluate,
    evaluate_trust,
    principal_matches,
)
from emustudio.iam.explain import deny_message, explain
from emustudio.iam.keys import ConditionContext, tag_context
from emustudio.iam.model import (
    ConditionClause,
    Policy,
    PolicyError,
    PolicyKind,
    PrincipalSpec,
    Statement,
)
from emustudio.iam.principals import Caller

__all__ = [
    "GROUP_INLINE_MAX_SIZE",
    "MANAGED_POLICY_MAX_SIZE",
    "ROLE_INLINE_MAX_SIZE",
    "SESSION_POLICY_MAX_SIZE",
    "TRUST_POLICY_MAX_SIZE",
    "USER_INLINE_MAX_SIZE",
    "AuthzRequest",
    "Caller",
    "ConditionClause",
    "ConditionContext",
    "Decision",
    "Effect",
    "Layer",
    "MatchedStatement",
    "Policy",
    "PolicyError",
    "PolicyKind",
    "PolicySet",
    "PrincipalSpec",
    "Statement",
    "deny_message",
    "evaluate",
    "evaluate_trust",
    "explain",
    "max_policy_size",
    "parse_policy",
    "policy_size",
    "principal_matches",
    "tag_context",
]
