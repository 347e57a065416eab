"""AWS's access-denied messages (emustudio/iam/explain.py)."""

from __future__ import annotations

import pytest

from emustudio.iam import (
    AuthzRequest,
    Decision,
    Effect,
    PolicySet,
    deny_message,
    evaluate,
    explain,
    parse_policy,
)

ALICE = "arn:aws:iam::000000000000:user/alice"
STUDIO = "arn:aws:elasticmapreduce:us-east-1:000000000000:studio/es-1"
ACTION = "elasticmapreduce:CreateStudio"
HEAD = f"User: {ALICE} is not authorized to perform: {ACTION} on resource: {STUDIO}"


def denied(effect: Effect, layer: str) -> Decision:
    return Decision(effect, (), "", layer)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layer", "implicit", "explicit"),
    [
        (
            "identity",
            "because no identity-based policy allows",
            "with an explicit deny in an identity-based policy",
        ),
        (
            "session",
            "because no session policy allows",
            "with an explicit deny in a session policy",
        ),
        (
            "boundary",
            "because no permissions boundary allows",
            "with an explicit deny in a permissions boundary",
        ),
        (
            "resource",
            "because no resource-based policy allows",
            "with an explicit deny in a resource-based policy",
        ),
        (
            "trust",
            "because no role trust policy allows",
            "with an explicit deny in the role trust policy",
        ),
    ],
)
def test_message_forms(layer: str, implicit: str, explicit: str) -> None:
    assert deny_message(ALICE, ACTION, STUDIO, denied(Effect.IMPLICIT_DENY, layer)) == (
        f"{HEAD} {implicit} the {ACTION} action"
    )
    assert (
        deny_message(ALICE, ACTION, STUDIO, denied(Effect.EXPLICIT_DENY, layer))
        == f"{HEAD} {explicit}"
    )


def test_message_from_a_real_decision() -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "elasticmapreduce:Describe*",
                "Resource": "*",
            },
        }
    )
    decision = evaluate(AuthzRequest(ACTION, STUDIO, ALICE), PolicySet(identity=[policy]))
    assert deny_message(ALICE, ACTION, STUDIO, decision) == (
        f"{HEAD} because no identity-based policy allows the {ACTION} action"
    )


def test_resource_star_and_empty() -> None:
    decision = denied(Effect.IMPLICIT_DENY, "identity")
    assert deny_message(ALICE, "elasticmapreduce:ListStudios", "*", decision) == (
        f"User: {ALICE} is not authorized to perform: elasticmapreduce:ListStudios on resource: * "
        "because no identity-based policy allows the elasticmapreduce:ListStudios action"
    )
    assert deny_message(ALICE, "codecommit:ListRepositories", "", decision) == (
        f"User: {ALICE} is not authorized to perform: codecommit:ListRepositories "
        "because no identity-based policy allows the codecommit:ListRepositories action"
    )


def test_assumed_role_caller_is_still_user() -> None:
    session = "arn:aws:sts::000000000000:assumed-role/Studio/alice"
    message = deny_message(session, ACTION, STUDIO, denied(Effect.IMPLICIT_DENY, "session"))
    assert message.startswith(f"User: {session} is not authorized to perform: ")


def test_allow_has_no_message() -> None:
    with pytest.raises(ValueError):
        deny_message(ALICE, ACTION, STUDIO, Decision(Effect.ALLOW, (), "allowed"))


def test_explain_lists_statements() -> None:
    allow_all = parse_policy(
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}},
        name="Admin",
    )
    deny = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {"Sid": "NoCreate", "Effect": "Deny", "Action": ACTION, "Resource": "*"},
        },
        name="Guard",
    )
    decision = evaluate(AuthzRequest(ACTION, STUDIO, ALICE), PolicySet(identity=[allow_all, deny]))
    assert explain(decision) == (
        "ExplicitDeny: explicit deny in identity-based policy Guard (statement NoCreate)\n"
        "  Deny identity-based policy Guard (statement NoCreate)"
    )
