"""AWS's access-denied messages, and a longer explanation of any decision.

The message format is the one the IAM User Guide documents ("Troubleshooting access denied error
messages"): ``User: <principal arn> is not authorized to perform: <action> on resource:
<resource> <context>``, where the context is

* ``with an explicit deny in <a policy type>`` for an explicit deny, or
* ``because no <policy type> allows the <action> action`` for an implicit one,

and the policy type is ``an identity-based policy``, ``a session policy``, ``a permissions
boundary``, ``a resource-based policy`` or ``the role trust policy``. "If multiple policy types
deny an authorization request, AWS includes only one of those policy types": the one
:class:`~emustudio.iam.evaluate.Decision` names in ``denied_by``. The ``on resource:`` part is
left out when ``resource`` is empty (AWS leaves it out for some actions); ``"*"`` is printed as
``*``.
"""

from __future__ import annotations

from emustudio.iam.evaluate import Decision, Effect, Layer

_EXPLICIT: dict[Layer, str] = {
    "identity": "an identity-based policy",
    "session": "a session policy",
    "boundary": "a permissions boundary",
    "resource": "a resource-based policy",
    "trust": "the role trust policy",
}

_IMPLICIT: dict[Layer, str] = {
    "identity": "identity-based policy",
    "session": "session policy",
    "boundary": "permissions boundary",
    "resource": "resource-based policy",
    "trust": "role trust policy",
}


def deny_message(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's ``AccessDenied`` message for a denied ``decision``.

    Raises ``ValueError`` for an allow: there is nothing to explain to the caller.
    """
    if decision.allowed:
        raise ValueError("deny_message() needs a denied decision")
    head = f"User: {principal_arn} is not authorized to perform: {action}"
    if resource:
        head += f" on resource: {resource}"
    layer: Layer = decision.denied_by or "identity"
    if decision.effect is Effect.EXPLICIT_DENY:
        return f"{head} with an explicit deny in {_EXPLICIT[layer]}"
    return f"{head} because no {_IMPLICIT[layer]} allows the {action} action"


def explain(decision: Decision) -> str:
    """A multi-line account of a decision, for logs and ``--debug`` output.

    The first line is the effect and reason; one line follows per statement that applied.
    """
    lines = [f"{decision.effect.value}: {decision.reason}"]
    for matched in decision.matched:
        lines.append(f"  {matched.effect} {matched.describe()}")
    return "\n".join(lines)
