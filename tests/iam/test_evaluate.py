"""The decision (emustudio/iam/evaluate.py): deny > allow > implicit deny, and the layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from emustudio.iam import (
    AuthzRequest,
    Decision,
    Effect,
    Policy,
    PolicySet,
    evaluate,
    evaluate_trust,
    parse_policy,
    principal_matches,
    tag_context,
)

ACCOUNT = "000000000000"
OTHER = "111111111111"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/StudioUser"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/StudioUser/alice"
STUDIO = f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/es-1234567890ABCDEFGHIJKLMNO"
OTHER_STUDIO = f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/es-ZZZZZZZZZZZZZZZZZZZZZZZZZ"


def policy(
    *statements: dict[str, Any],
    kind: str = "identity",
    name: str | None = None,
    version: str = "2012-10-17",
) -> Policy:
    return parse_policy({"Version": version, "Statement": list(statements)}, kind, name=name)  # type: ignore[arg-type]


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(
    action: str,
    target: str = "*",
    *,
    identity: list[Policy] | None = None,
    principal: str = ALICE,
    context: Mapping[str, object] | None = None,
    **layers: Any,
) -> Decision:
    request = AuthzRequest(action, target, principal, context or {})
    return evaluate(request, PolicySet(identity=identity or [], **layers))


# ------------------------------------------------------------------ basics


def test_identity_allow_and_implicit_deny() -> None:
    readers = policy(
        allow("elasticmapreduce:Describe*", Sid="Read"),
        name="arn:aws:iam::000000000000:policy/Read",
    )
    granted = decide("elasticmapreduce:DescribeStudio", STUDIO, identity=[readers])
    assert granted.allowed and granted.effect is Effect.ALLOW
    assert (
        granted.reason
        == "allowed by identity-based policy arn:aws:iam::000000000000:policy/Read (statement Read)"
    )
    assert [(m.layer, m.sid) for m in granted.matched] == [("identity", "Read")]
    refused = decide("elasticmapreduce:DeleteStudio", STUDIO, identity=[readers])
    assert not refused.allowed and refused.effect is Effect.IMPLICIT_DENY
    assert refused.reason == "no identity-based policy allows the action"
    assert refused.denied_by == "identity"
    assert not decide("elasticmapreduce:DescribeStudio").allowed  # no policies at all


def test_action_case_insensitive_resource_case_sensitive() -> None:
    policies = [policy(allow("ElasticMapReduce:describestudio", STUDIO))]
    assert decide("elasticmapreduce:DescribeStudio", STUDIO, identity=policies).allowed
    assert not decide("elasticmapreduce:DescribeStudio", STUDIO.lower(), identity=policies).allowed


def test_explicit_deny_beats_allow_anywhere() -> None:
    allow_all = policy(allow("*"), name="AdminAccess")
    deny_delete = policy(
        deny("elasticmapreduce:Delete*", Sid="DenyAll"),
        name="arn:aws:iam::000000000000:policy/Deny",
    )
    decision = decide("elasticmapreduce:DeleteStudio", STUDIO, identity=[allow_all, deny_delete])
    assert decision.effect is Effect.EXPLICIT_DENY
    assert decision.reason == (
        "explicit deny in identity-based policy arn:aws:iam::000000000000:policy/Deny (statement DenyAll)"
    )
    assert [m.effect for m in decision.matched] == ["Deny"]
    assert decide(
        "elasticmapreduce:DescribeStudio", STUDIO, identity=[allow_all, deny_delete]
    ).allowed


def test_allow_whose_condition_fails_is_not_a_deny() -> None:
    conditional = policy(allow("s3:*", Condition={"Bool": {"aws:SecureTransport": "true"}}))
    everything = policy(allow("s3:GetObject"))
    decision = decide(
        "s3:GetObject", identity=[conditional, everything], context={"aws:SecureTransport": False}
    )
    assert decision.allowed
    alone = decide("s3:PutObject", identity=[conditional], context={"aws:SecureTransport": False})
    assert alone.effect is Effect.IMPLICIT_DENY


def test_deny_with_condition() -> None:
    policies = [
        policy(allow("s3:*")),
        policy(deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}})),
    ]
    assert decide("s3:GetObject", identity=policies, context={"aws:SecureTransport": True}).allowed
    insecure = decide("s3:GetObject", identity=policies, context={"aws:SecureTransport": False})
    assert insecure.effect is Effect.EXPLICIT_DENY


def test_not_action_and_not_resource() -> None:
    power_user = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide("elasticmapreduce:CreateStudio", identity=[power_user]).allowed
    assert not decide("iam:CreateUser", identity=[power_user]).allowed
    except_studio = policy(
        {"Effect": "Allow", "Action": "elasticmapreduce:*", "NotResource": STUDIO}
    )
    assert decide("elasticmapreduce:DescribeStudio", OTHER_STUDIO, identity=[except_studio]).allowed
    assert not decide("elasticmapreduce:DescribeStudio", STUDIO, identity=[except_studio]).allowed
    deny_outside = policy(
        allow("s3:*"),
        {
            "Effect": "Deny",
            "NotAction": ["s3:Get*", "s3:List*"],
            "NotResource": "arn:aws:s3:::scratch/*",
        },
    )
    assert decide("s3:GetObject", "arn:aws:s3:::data/x", identity=[deny_outside]).allowed
    assert decide("s3:PutObject", "arn:aws:s3:::scratch/x", identity=[deny_outside]).allowed
    assert (
        decide("s3:PutObject", "arn:aws:s3:::data/x", identity=[deny_outside]).effect
        is Effect.EXPLICIT_DENY
    )


def test_wildcard_resource_actions_need_star() -> None:
    scoped = policy(allow("elasticmapreduce:ListStudios", "arn:aws:elasticmapreduce:*:*:studio/*"))
    assert not decide("elasticmapreduce:ListStudios", "*", identity=[scoped]).allowed
    assert decide(
        "elasticmapreduce:ListStudios", "*", identity=[policy(allow("elasticmapreduce:List*"))]
    ).allowed


# ------------------------------------------------------------------ policy variables in Resource


HOME = allow(
    "s3:*",
    ["arn:aws:s3:::bucket/home/${aws:username}", "arn:aws:s3:::bucket/home/${aws:username}/*"],
)


def test_resource_variable() -> None:
    policies = [policy(HOME)]
    context = {"aws:username": "alice"}
    assert decide(
        "s3:GetObject", "arn:aws:s3:::bucket/home/alice/a.txt", identity=policies, context=context
    ).allowed
    assert not decide(
        "s3:GetObject", "arn:aws:s3:::bucket/home/bob/a.txt", identity=policies, context=context
    ).allowed
    # a role session has no aws:username: the entry matches nothing
    assert not decide(
        "s3:GetObject", "arn:aws:s3:::bucket/home/alice/a.txt", identity=policies
    ).allowed


def test_resource_variable_not_substituted_in_2008_documents() -> None:
    old = [policy(HOME, version="2008-10-17")]
    context = {"aws:username": "alice"}
    assert not decide(
        "s3:GetObject", "arn:aws:s3:::bucket/home/alice/a", identity=old, context=context
    ).allowed
    literal = "arn:aws:s3:::bucket/home/${aws:username}/a"
    assert decide("s3:GetObject", literal, identity=old, context=context).allowed


def test_unresolvable_not_resource_makes_statement_invalid() -> None:
    policies = [
        policy(allow("s3:*")),
        policy(
            {
                "Effect": "Deny",
                "Action": "s3:*",
                "NotResource": "arn:aws:s3:::home/${aws:username}/*",
            }
        ),
    ]
    with_name = {"aws:username": "alice"}
    assert decide(
        "s3:GetObject", "arn:aws:s3:::home/alice/x", identity=policies, context=with_name
    ).allowed
    assert not decide(
        "s3:GetObject", "arn:aws:s3:::home/bob/x", identity=policies, context=with_name
    ).allowed
    assert decide("s3:GetObject", "arn:aws:s3:::home/bob/x", identity=policies).allowed


def test_escaped_wildcard_in_resource() -> None:
    policies = [policy(allow("s3:GetObject", "arn:aws:s3:::bucket/${*}"))]
    assert decide("s3:GetObject", "arn:aws:s3:::bucket/*", identity=policies).allowed
    assert not decide("s3:GetObject", "arn:aws:s3:::bucket/key", identity=policies).allowed


# ------------------------------------------------------------------ ABAC on Studio ARNs


ABAC = policy(
    allow(
        "elasticmapreduce:CreateStudioPresignedUrl",
        f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/*",
        Sid="OpenOwnTeamsStudios",
        Condition={
            "StringEquals": {"elasticmapreduce:ResourceTag/Team": "${aws:PrincipalTag/Team}"}
        },
    ),
    name="StudioAbac",
)


@pytest.mark.parametrize(
    ("principal_tags", "studio_tags", "expected"),
    [
        ({"Team": "Data Analytics"}, {"Team": "Data Analytics"}, True),
        ({"team": "Data Analytics"}, {"TEAM": "Data Analytics"}, True),  # keys case-insensitive
        ({"Team": "Data Analytics"}, {"Team": "data analytics"}, False),  # values are not
        ({"Team": "Finance"}, {"Team": "Data Analytics"}, False),
        ({}, {"Team": "Data Analytics"}, False),  # principal untagged: variable unresolvable
        ({"Team": "Data Analytics"}, {}, False),  # studio untagged: key absent
    ],
)
def test_abac_resource_tag_equals_principal_tag(
    principal_tags: dict[str, str], studio_tags: dict[str, str], expected: bool
) -> None:
    context = tag_context(
        service="elasticmapreduce", resource_tags=studio_tags, principal_tags=principal_tags
    )
    decision = decide(
        "elasticmapreduce:CreateStudioPresignedUrl", STUDIO, identity=[ABAC], context=context
    )
    assert decision.allowed is expected


def test_abac_with_aws_prefixed_resource_tag_and_role_session() -> None:
    abac = policy(
        allow(
            "elasticmapreduce:CreateStudioPresignedUrl",
            "arn:aws:elasticmapreduce:*:*:studio/*",
            Condition={"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}},
        )
    )
    context = {
        **tag_context(resource_tags={"Team": "a"}, principal_tags={"Team": "a"}),
        "aws:PrincipalArn": ROLE,
    }
    assert decide(
        "elasticmapreduce:CreateStudioPresignedUrl",
        STUDIO,
        identity=[abac],
        principal=SESSION,
        context=context,
    ).allowed


def test_studio_access_by_tag_and_by_source_identity() -> None:
    by_tag = policy(
        allow(
            "elasticmapreduce:CreateStudioPresignedUrl",
            f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/*",
            Condition={
                "StringEquals": {"elasticmapreduce:ResourceTag/Team": ["Data Analytics", "ML"]}
            },
        )
    )
    tagged = tag_context(service="elasticmapreduce", resource_tags={"Team": "ML"})
    assert decide(
        "elasticmapreduce:CreateStudioPresignedUrl", STUDIO, identity=[by_tag], context=tagged
    ).allowed
    by_identity = policy(
        allow(
            "elasticmapreduce:CreateStudioPresignedUrl",
            STUDIO,
            Condition={"StringLike": {"aws:SourceIdentity": "*@example.com"}},
        )
    )
    assert decide(
        "elasticmapreduce:CreateStudioPresignedUrl",
        STUDIO,
        identity=[by_identity],
        principal=SESSION,
        context={"aws:SourceIdentity": "alice@example.com"},
    ).allowed
    assert not decide(
        "elasticmapreduce:CreateStudioPresignedUrl",
        STUDIO,
        identity=[by_identity],
        principal=SESSION,
    ).allowed


def test_workspace_creator_condition_uses_userid() -> None:
    collaboration = policy(
        allow(
            ["elasticmapreduce:PutWorkspaceAccess", "elasticmapreduce:UpdateEditor"],
            Condition={
                "StringEquals": {"elasticmapreduce:ResourceTag/creatorUserId": "${aws:userId}"}
            },
        )
    )
    editor = f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:editor/e-1"
    mine = {
        "aws:userid": "AROAEXAMPLE:alice",
        **tag_context(
            service="elasticmapreduce", resource_tags={"creatorUserId": "AROAEXAMPLE:alice"}
        ),
    }
    theirs = {**mine, "elasticmapreduce:ResourceTag/creatorUserId": "AROAEXAMPLE:bob"}
    assert decide(
        "elasticmapreduce:PutWorkspaceAccess", editor, identity=[collaboration], context=mine
    ).allowed
    assert not decide(
        "elasticmapreduce:PutWorkspaceAccess", editor, identity=[collaboration], context=theirs
    ).allowed


# ------------------------------------------------------------------ session policies and boundaries


EMR_ALL = policy(allow("elasticmapreduce:*"), name="EmrAll")
DESCRIBE_ONLY = policy(allow("elasticmapreduce:Describe*"), name="SessionDescribe", kind="session")


def test_session_policy_narrows() -> None:
    assert decide(
        "elasticmapreduce:DescribeStudio", STUDIO, identity=[EMR_ALL], session=[DESCRIBE_ONLY]
    ).allowed
    narrowed = decide("elasticmapreduce:CreateStudio", identity=[EMR_ALL], session=[DESCRIBE_ONLY])
    assert narrowed.effect is Effect.IMPLICIT_DENY and narrowed.denied_by == "session"
    assert narrowed.reason == "no session policy allows the action"
    assert [m.policy for m in narrowed.matched] == ["EmrAll"]  # what did allow, for explanation


def test_session_policy_cannot_grant_more() -> None:
    wide_session = policy(allow("*"), kind="session")
    decision = decide("iam:CreateUser", identity=[EMR_ALL], session=[wide_session])
    assert decision.denied_by == "identity"


def test_session_none_versus_empty() -> None:
    assert decide("elasticmapreduce:CreateStudio", identity=[EMR_ALL], session=None).allowed
    empty = decide("elasticmapreduce:CreateStudio", identity=[EMR_ALL], session=[])
    assert empty.denied_by == "session"


def test_session_policy_deny() -> None:
    session = policy(allow("*"), deny("elasticmapreduce:Delete*"), kind="session", name="S")
    decision = decide("elasticmapreduce:DeleteStudio", identity=[EMR_ALL], session=[session])
    assert decision.effect is Effect.EXPLICIT_DENY and decision.denied_by == "session"


def test_permissions_boundary() -> None:
    boundary = policy(allow("elasticmapreduce:Describe*", Sid="Bound"), name="Boundary")
    assert decide("elasticmapreduce:DescribeStudio", identity=[EMR_ALL], boundary=boundary).allowed
    limited = decide("elasticmapreduce:CreateStudio", identity=[EMR_ALL], boundary=boundary)
    assert (
        limited.denied_by == "boundary"
        and limited.reason == "no permissions boundary allows the action"
    )
    # a boundary never grants by itself
    assert decide("elasticmapreduce:DescribeStudio", boundary=boundary).denied_by == "identity"
    denying = policy(allow("*"), deny("elasticmapreduce:CreateStudio"))
    assert (
        decide("elasticmapreduce:CreateStudio", identity=[EMR_ALL], boundary=denying).denied_by
        == "boundary"
    )


def test_boundary_and_session_together() -> None:
    boundary = policy(allow(["elasticmapreduce:Describe*", "elasticmapreduce:List*"]))
    session = policy(allow(["elasticmapreduce:List*"]), kind="session")
    layers: dict[str, Any] = {"identity": [EMR_ALL], "boundary": boundary, "session": [session]}
    assert decide("elasticmapreduce:ListStudios", **layers).allowed
    assert decide("elasticmapreduce:DescribeStudio", **layers).denied_by == "session"
    assert decide("elasticmapreduce:CreateStudio", **layers).denied_by == "boundary"


# ------------------------------------------------------------------ resource-based policies


def bucket_policy(principal: object, action: str = "s3:GetObject", effect: str = "Allow") -> Policy:
    return policy(
        {
            "Effect": effect,
            "Principal": principal,
            "Action": action,
            "Resource": "arn:aws:s3:::b/*",
        },
        kind="resource",
        name="BucketPolicy",
    )


OBJECT = "arn:aws:s3:::b/key"


def test_resource_policy_naming_user_grants_alone() -> None:
    decision = decide("s3:GetObject", OBJECT, resource=[bucket_policy({"AWS": ALICE})])
    assert decision.allowed and decision.matched[0].principal_match == "direct"
    # an implicit deny in the boundary does not limit it
    boundary = policy(allow("ec2:*"))
    assert decide(
        "s3:GetObject", OBJECT, resource=[bucket_policy({"AWS": ALICE})], boundary=boundary
    ).allowed
    assert not decide(
        "s3:GetObject",
        OBJECT,
        resource=[bucket_policy({"AWS": "arn:aws:iam::000000000000:user/bob"})],
    ).allowed


def test_resource_policy_naming_account_delegates_to_identity() -> None:
    by_account = [bucket_policy({"AWS": ACCOUNT})]
    assert decide("s3:GetObject", OBJECT, resource=by_account).denied_by == "identity"
    assert decide(
        "s3:GetObject", OBJECT, resource=by_account, identity=[policy(allow("s3:GetObject"))]
    ).allowed


def test_resource_policy_naming_role_is_limited_by_session_policy() -> None:
    by_role = [bucket_policy({"AWS": ROLE})]
    context = {"aws:PrincipalArn": ROLE}
    assert decide(
        "s3:GetObject", OBJECT, principal=SESSION, context=context, resource=by_role
    ).allowed
    session = [policy(allow("ec2:*"), kind="session")]
    limited = decide(
        "s3:GetObject",
        OBJECT,
        principal=SESSION,
        context=context,
        resource=by_role,
        session=session,
    )
    assert limited.denied_by == "session"
    by_session = [bucket_policy({"AWS": SESSION})]
    assert decide(
        "s3:GetObject",
        OBJECT,
        principal=SESSION,
        context=context,
        resource=by_session,
        session=session,
    ).allowed


def test_resource_policy_explicit_deny() -> None:
    decision = decide(
        "s3:GetObject",
        OBJECT,
        identity=[policy(allow("s3:*"))],
        resource=[bucket_policy("*", effect="Deny")],
    )
    assert decision.effect is Effect.EXPLICIT_DENY and decision.denied_by == "resource"
    # a Deny that does not name the caller does not apply
    other = bucket_policy({"AWS": "arn:aws:iam::000000000000:user/bob"}, effect="Deny")
    assert decide(
        "s3:GetObject", OBJECT, identity=[policy(allow("s3:*"))], resource=[other]
    ).allowed


def test_cross_account_needs_both_sides() -> None:
    foreign = f"arn:aws:elasticmapreduce:us-east-1:{OTHER}:studio/es-1"
    identity = [policy(allow("elasticmapreduce:DescribeStudio"))]
    assert (
        decide("elasticmapreduce:DescribeStudio", foreign, identity=identity).denied_by
        == "resource"
    )
    grant = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT},
            "Action": "elasticmapreduce:*",
            "Resource": "*",
        },
        kind="resource",
    )
    assert decide(
        "elasticmapreduce:DescribeStudio", foreign, identity=identity, resource=[grant]
    ).allowed
    direct = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ALICE},
            "Action": "elasticmapreduce:*",
            "Resource": "*",
        },
        kind="resource",
    )
    assert (
        decide("elasticmapreduce:DescribeStudio", foreign, resource=[direct]).denied_by
        == "identity"
    )
    via_owner = decide(
        "elasticmapreduce:DescribeStudio", "*", identity=identity, resource_account=OTHER
    )
    assert via_owner.denied_by == "resource"


def test_aws_managed_policy_arn_is_not_another_account() -> None:
    managed = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert decide("iam:GetPolicy", managed, identity=[policy(allow("iam:GetPolicy"))]).allowed
    assert decide(
        "s3:GetObject", "arn:aws:s3:::someone-elses-bucket/x", identity=[policy(allow("s3:*"))]
    ).allowed


# ------------------------------------------------------------------ trust policies


def trust(principal: object, action: str | list[str] = "sts:AssumeRole", **extra: Any) -> Policy:
    return policy(
        {"Effect": "Allow", "Principal": principal, "Action": action, **extra},
        kind="trust",
        name=ROLE,
    )


def test_assume_role_same_account() -> None:
    identity = [policy(allow("sts:AssumeRole", ROLE))]
    direct = decide("sts:AssumeRole", ROLE, resource=[trust({"AWS": ALICE})])
    assert direct.allowed
    by_account = [trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})]
    assert decide("sts:AssumeRole", ROLE, resource=by_account).denied_by == "identity"
    assert decide("sts:AssumeRole", ROLE, resource=by_account, identity=identity).allowed
    not_trusted = decide(
        "sts:AssumeRole", ROLE, resource=[trust({"AWS": OTHER})], identity=identity
    )
    assert not_trusted.denied_by == "trust"
    assert not_trusted.reason == "no role trust policy allows the action"


def test_assume_role_cross_account() -> None:
    foreign_role = f"arn:aws:iam::{OTHER}:role/Shared"
    trusting = [trust({"AWS": ACCOUNT})]
    assert decide("sts:AssumeRole", foreign_role, resource=trusting).denied_by == "identity"
    identity = [policy(allow("sts:AssumeRole", foreign_role))]
    assert decide("sts:AssumeRole", foreign_role, resource=trusting, identity=identity).allowed
    assert (
        decide("sts:AssumeRole", foreign_role, resource=[trust({"AWS": ALICE})]).denied_by
        == "identity"
    )


def test_trust_explicit_deny() -> None:
    denying = policy(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"},
        kind="trust",
    )
    decision = decide("sts:AssumeRole", ROLE, resource=[denying], identity=[policy(allow("*"))])
    assert decision.effect is Effect.EXPLICIT_DENY and decision.denied_by == "trust"


def test_evaluate_trust_service_and_saml() -> None:
    emr = trust({"Service": "elasticmapreduce.amazonaws.com"}, ["sts:AssumeRole", "sts:SetContext"])
    request = AuthzRequest("sts:AssumeRole", ROLE, "elasticmapreduce.amazonaws.com")
    assert evaluate_trust(request, emr, {"Service": ["elasticmapreduce.amazonaws.com"]}).allowed
    refused = evaluate_trust(request, emr, {"Service": ["ec2.amazonaws.com"]})
    assert refused.denied_by == "trust" and not refused.allowed

    provider = f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"
    saml = trust(
        {"Federated": provider},
        "sts:AssumeRoleWithSAML",
        Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
    )
    good = AuthzRequest(
        "sts:AssumeRoleWithSAML", ROLE, provider, {"saml:aud": "https://signin.aws.amazon.com/saml"}
    )
    assert evaluate_trust(good, saml, {"Federated": [provider]}).allowed
    bad_audience = AuthzRequest(
        "sts:AssumeRoleWithSAML", ROLE, provider, {"saml:aud": "https://evil"}
    )
    assert not evaluate_trust(bad_audience, saml, {"Federated": [provider]}).allowed
    assert not evaluate_trust(
        good, saml, {"Federated": [f"arn:aws:iam::{ACCOUNT}:saml-provider/Other"]}
    ).allowed
    assert not evaluate_trust(
        AuthzRequest("sts:AssumeRole", ROLE, provider, good.context),
        saml,
        {"Federated": [provider]},
    ).allowed


def test_evaluate_trust_defaults_to_request_principal_and_source_conditions() -> None:
    guarded = trust(
        {"Service": "elasticmapreduce.amazonaws.com"},
        Condition={
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:*"},
        },
    )
    service = {"Service": ["elasticmapreduce.amazonaws.com"]}
    context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": STUDIO}
    request = AuthzRequest("sts:AssumeRole", ROLE, "elasticmapreduce.amazonaws.com", context)
    assert evaluate_trust(request, guarded, service).allowed
    confused_deputy = AuthzRequest(
        "sts:AssumeRole", ROLE, "x", {**context, "aws:SourceAccount": OTHER}
    )
    assert not evaluate_trust(confused_deputy, guarded, service).allowed
    user_trust = trust({"AWS": ALICE})
    assert evaluate_trust(AuthzRequest("sts:AssumeRole", ROLE, ALICE), user_trust).allowed


def test_not_principal_deny_in_resource_policy() -> None:
    lockdown = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [ALICE, ACCOUNT]},
            "Action": "s3:*",
            "Resource": "*",
        },
        kind="resource",
    )
    assert decide("s3:GetObject", OBJECT, resource=[lockdown]).allowed
    bob = "arn:aws:iam::000000000000:user/bob"
    assert (
        decide("s3:GetObject", OBJECT, principal=bob, resource=[lockdown]).effect
        is Effect.EXPLICIT_DENY
    )


def test_principal_matches_helper() -> None:
    emr = trust({"Service": "elasticmapreduce.amazonaws.com"})
    assert principal_matches(emr, {"Service": ["elasticmapreduce.amazonaws.com"]})
    assert not principal_matches(emr, {"AWS": [ALICE]})
    everyone_but = policy(
        {"Effect": "Allow", "NotPrincipal": {"AWS": [ALICE, ACCOUNT]}, "Action": "sts:AssumeRole"},
        kind="trust",
    )
    assert principal_matches(everyone_but, {"AWS": ["arn:aws:iam::000000000000:user/bob"]})
    assert not principal_matches(everyone_but, {"AWS": [ALICE]})
    assert not principal_matches(policy(allow("*")), {"AWS": [ALICE]})


def test_identity_layer_ignores_statements_needing_principals_it_lacks() -> None:
    misplaced = trust({"AWS": "arn:aws:iam::000000000000:user/bob"})
    assert not decide("sts:AssumeRole", ROLE, identity=[misplaced]).allowed
