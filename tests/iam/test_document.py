"""Parsing and write-time validation (emustudio/iam/document.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emustudio.iam import (
    MANAGED_POLICY_MAX_SIZE,
    PolicyError,
    max_policy_size,
    parse_policy,
    policy_size,
)
from emustudio.iam.document import resource_format_error


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17", **top: Any) -> str:
    body: dict[str, Any] = {"Statement": list(statements), **top}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps(body)


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def error_of(document: Any, kind: str = "identity", **options: Any) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document, kind, **options)  # type: ignore[arg-type]
    return caught.value


# ------------------------------------------------------------------ accepted documents


def test_parses_and_normalises() -> None:
    policy = parse_policy(
        doc(
            {
                "Sid": "One",
                "Effect": "Allow",
                "Action": "elasticmapreduce:DescribeStudio",
                "Resource": ["arn:aws:elasticmapreduce:*:*:studio/*"],
                "Condition": {
                    "Bool": {"aws:SecureTransport": True},
                    "NumericLessThan": {"s3:max-keys": 10},
                },
            },
            {"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "*"},
            Id="policy-1",
        ),
        name="arn:aws:iam::000000000000:policy/P",
    )
    first, second = policy.statements
    assert (first.sid, first.effect, first.actions, first.not_actions) == (
        "One",
        "Allow",
        ("elasticmapreduce:DescribeStudio",),
        False,
    )
    assert first.resources == ("arn:aws:elasticmapreduce:*:*:studio/*",)
    assert [(c.operator, c.key, c.values) for c in first.conditions] == [
        ("Bool", "aws:SecureTransport", ("true",)),
        ("NumericLessThan", "s3:max-keys", ("10",)),
    ]
    assert second.not_actions and second.not_resources and second.label == "#1"
    assert policy.policy_id == "policy-1"
    assert policy.name == "arn:aws:iam::000000000000:policy/P"
    assert policy.version == "2012-10-17" and policy.supports_variables
    assert json.loads(policy.text)["Id"] == "policy-1"


def test_statement_object_and_dict_input() -> None:
    policy = parse_policy({"Version": "2012-10-17", "Statement": ALLOW_ALL})
    assert len(policy.statements) == 1
    assert json.loads(policy.text) == {"Version": "2012-10-17", "Statement": ALLOW_ALL}


def test_version_absent_defaults_to_2008() -> None:
    policy = parse_policy(doc(ALLOW_ALL, version=None))
    assert policy.version == "2008-10-17" and not policy.supports_variables
    assert parse_policy(doc(ALLOW_ALL, version="2008-10-17")).version == "2008-10-17"


def test_named_copy() -> None:
    policy = parse_policy(doc(ALLOW_ALL))
    assert policy.named("x").name == "x" and policy.name is None


def test_empty_condition_and_empty_sid_are_fine() -> None:
    policy = parse_policy(doc({**ALLOW_ALL, "Sid": "", "Condition": {}}, {**ALLOW_ALL, "Sid": ""}))
    assert policy.statements[0].conditions == ()


def test_trust_policy_from_emr_studio_docs() -> None:
    policy = parse_policy(
        doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": "elasticmapreduce.amazonaws.com"},
                "Action": "sts:AssumeRole",
            },
            version="2008-10-17",
        ),
        "trust",
    )
    statement = policy.statements[0]
    assert statement.resources is None
    assert statement.principal is not None
    assert statement.principal.entries == (("Service", "elasticmapreduce.amazonaws.com"),)


def test_trust_policy_with_saml_and_conditions() -> None:
    parse_policy(
        doc(
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::000000000000:saml-provider/Okta"},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            }
        ),
        "trust",
    )


def test_resource_policy_may_use_free_form_sid() -> None:
    parse_policy(
        doc(
            {
                "Sid": "Allow read",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
            }
        ),
        "resource",
    )


# ------------------------------------------------------------------ syntax errors

SYNTAX = "Syntax errors in policy."


@pytest.mark.parametrize(
    "document",
    [
        "{",
        "[]",
        '"text"',
        '{"Version": "2012-10-17", "Statement": [], }',
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        json.dumps({"Version": "2012-10-17", "Statement": "x"}),
        json.dumps({"Version": "2012-10-18", "Statement": ALLOW_ALL}),
        json.dumps({"Version": "2012-10-17", "Statement": ALLOW_ALL, "Extra": 1}),
        json.dumps({"Version": "2012-10-17", "Statement": ALLOW_ALL, "Id": 5}),
        '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}',
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericEquals": {"a:b": NaN}}}}',
        doc({**ALLOW_ALL, "Actions": "s3:*"}),
        doc({"Action": "*", "Resource": "*"}),
        doc({**ALLOW_ALL, "Effect": "Permit"}),
        doc({**ALLOW_ALL, "Effect": True}),
        doc({**ALLOW_ALL, "NotAction": "s3:*"}),
        doc({**ALLOW_ALL, "NotResource": "*"}),
        doc({**ALLOW_ALL, "Action": ["s3:*", 3]}),
        doc({**ALLOW_ALL, "Resource": {"arn": "x"}}),
        doc({**ALLOW_ALL, "Sid": 1}),
        doc({**ALLOW_ALL, "Condition": []}),
        doc({**ALLOW_ALL, "Condition": {"StringEquals": "x"}}),
        doc({**ALLOW_ALL, "Condition": {"StringEquals": {"aws:username": None}}}),
        doc({**ALLOW_ALL, "Condition": {"StringEquals": {"aws:username": {"a": "b"}}}}),
        doc({**ALLOW_ALL, "Condition": {"StringEqualz": {"aws:username": "a"}}}),
        doc({**ALLOW_ALL, "Condition": {"stringequals": {"aws:username": "a"}}}),
        doc({**ALLOW_ALL, "Condition": {"ForSomeValues:StringEquals": {"aws:username": "a"}}}),
        "not json at all",
    ],
)
def test_syntax_errors(document: str) -> None:
    error = error_of(document)
    assert (error.code, str(error)) == ("MalformedPolicyDocument", SYNTAX)


def test_unknown_operator_with_empty_block_is_accepted_but_inert() -> None:
    policy = parse_policy(doc({**ALLOW_ALL, "Condition": {"StringEqualz": {}}}))
    (clause,) = policy.statements[0].conditions
    assert not clause.known


def test_non_document_input() -> None:
    assert str(error_of(42)) == SYNTAX
    assert str(error_of({"Statement": ALLOW_ALL, "x": {1, 2}})) == SYNTAX


# ------------------------------------------------------------------ kind-specific grammar


def test_identity_policy_should_not_specify_principal() -> None:
    statement = {**ALLOW_ALL, "Principal": {"AWS": "*"}}
    assert str(error_of(doc(statement))) == "Policy document should not specify a principal."
    assert (
        str(error_of(doc(statement), "session"))
        == "Policy document should not specify a principal."
    )


def test_trust_policy_grammar() -> None:
    trust = {"Effect": "Allow", "Principal": {"AWS": "000000000000"}, "Action": "sts:AssumeRole"}
    assert (
        str(error_of(doc({**trust, "Resource": "*"}), "trust")) == "Has prohibited field Resource"
    )
    assert (
        str(error_of(doc({**trust, "NotResource": "*"}), "trust"))
        == "Has prohibited field NotResource"
    )
    no_principal = {"Effect": "Allow", "Action": "sts:AssumeRole"}
    assert str(error_of(doc(no_principal), "trust")) == "Missing required field Principal"
    assert str(error_of(doc({**trust, "Action": "s3:GetObject"}), "trust")) == (
        "AssumeRole policy may only specify STS AssumeRole actions."
    )
    parse_policy(doc({**trust, "Action": ["sts:*"]}), "trust")


def test_resource_policy_needs_principal() -> None:
    assert str(error_of(doc(ALLOW_ALL), "resource")) == "Missing required field Principal"


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        (
            {"AWS": "arn:aws:iam::12345678901:user/x"},
            'Invalid principal in policy: "AWS":"arn:aws:iam::12345678901:user/x"',
        ),
        (
            {"AWS": "arn:aws:iam::000000000000:user/*"},
            'Invalid principal in policy: "AWS":"arn:aws:iam::000000000000:user/*"',
        ),
        ({"AWS": "alice"}, 'Invalid principal in policy: "AWS":"alice"'),
        ({"Service": "not a service"}, 'Invalid principal in policy: "SERVICE":"not a service"'),
        (
            {"Federated": "arn:aws:iam::000000000000:user/x"},
            'Invalid principal in policy: "FEDERATED":"arn:aws:iam::000000000000:user/x"',
        ),
        ({"CanonicalUser": "abc"}, 'Invalid principal in policy: "CANONICALUSER":"abc"'),
        ({"Group": "x"}, SYNTAX),
        ({"AWS": []}, SYNTAX),
        ({"AWS": [1]}, SYNTAX),
        ({}, SYNTAX),
        ("arn:aws:iam::000000000000:root", SYNTAX),
    ],
)
def test_invalid_principals(principal: object, message: str) -> None:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    assert str(error_of(doc(statement), "trust")) == message


def test_valid_principals() -> None:
    principal = {
        "AWS": [
            "*",
            "000000000000",
            "arn:aws:iam::000000000000:root",
            "arn:aws:iam::000000000000:user/path/alice",
            "arn:aws:iam::000000000000:role/R",
            "arn:aws:sts::000000000000:assumed-role/R/session",
        ],
        "Service": ["elasticmapreduce.amazonaws.com"],
        "Federated": [
            "arn:aws:iam::000000000000:saml-provider/IdP",
            "cognito-identity.amazonaws.com",
        ],
        "CanonicalUser": "a" * 64,
    }
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    policy = parse_policy(doc(statement), "trust")
    assert len(policy.statements[0].principal.entries) == 10  # type: ignore[union-attr]
    both = {**statement, "NotPrincipal": {"AWS": "*"}}
    assert str(error_of(doc(both), "trust")) == SYNTAX


# ------------------------------------------------------------------ version, legacy, sid, presence


def test_managed_policies_need_2012_version() -> None:
    message = "Policy document must be version 2012-10-17 or greater."
    assert str(error_of(doc(ALLOW_ALL, version=None), managed=True)) == message
    assert str(error_of(doc(ALLOW_ALL, version="2008-10-17"), managed=True)) == message
    parse_policy(doc(ALLOW_ALL), managed=True)


@pytest.mark.parametrize(
    "statement",
    [
        {**ALLOW_ALL, "Effect": "allow"},
        {**ALLOW_ALL, "Effect": "DENY"},
        {**ALLOW_ALL, "Condition": {"DateGreaterThan": {"aws:CurrentTime": "yesterday"}}},
        {
            **ALLOW_ALL,
            "Condition": {
                "ForAnyValue:DateEqualsIfExists": {"aws:CurrentTime": ["2020-01-01", "x"]}
            },
        },
        {**ALLOW_ALL, "Resource": "arn:aws:s3::bucket"},
    ],
)
def test_legacy_parsing_failures(statement: dict[str, Any]) -> None:
    assert str(error_of(doc(statement))) == "The policy failed legacy parsing"


def test_sid_rules() -> None:
    duplicate = doc({**ALLOW_ALL, "Sid": "A"}, {**ALLOW_ALL, "Sid": "A"})
    assert str(error_of(duplicate)) == "Statement IDs (SID) in a single policy must be unique."
    assert str(error_of(doc({**ALLOW_ALL, "Sid": "Atomic_Red_Team"}))) == (
        "Statement IDs (SID) must be alpha-numeric. "
        "Check that your input satisfies the regular expression [0-9A-Za-z]*"
    )


def test_actions_and_resources_must_be_present() -> None:
    assert (
        str(error_of(doc({"Effect": "Allow", "Resource": "*"})))
        == "Policy statement must contain actions."
    )
    assert (
        str(error_of(doc({**ALLOW_ALL, "Action": []}))) == "Policy statement must contain actions."
    )
    assert (
        str(error_of(doc({"Effect": "Allow", "Action": "*"})))
        == "Policy statement must contain resources."
    )
    assert (
        str(error_of(doc({**ALLOW_ALL, "Resource": []})))
        == "Policy statement must contain resources."
    )


# ------------------------------------------------------------------ resources and actions


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("*", None),
        ("arn:aws:s3:::bucket/*", None),
        ("arn:aws:iam::*:role/EMR_DefaultRole", None),
        ("arn:aws:iam::000000000000:*", None),
        ("arn:aws:elasticmapreduce:us-east-1:000000000000:studio/*", None),
        ("arn:aws-cn:s3:::bucket", None),
        (
            "174313347505.dkr.ecr.us-west-2.amazonaws.com/mhart-experimental",
            'Resource 174313347505.dkr.ecr.us-west-2.amazonaws.com/mhart-experimental must be in ARN format or "*".',
        ),
        ("bucket", 'Resource bucket must be in ARN format or "*".'),
        ("foo:bar", 'Resource foo:bar must be in ARN format or "*".'),
        ("arn:aww:s3:::b", 'Partition "aww" is not valid for resource "arn:aww:s3:::b".'),
        ("arn:x", 'Partition "x" is not valid for resource "arn:x:*:*:*:*".'),
        (
            "arn:aws::us-east-1:1:x",
            "Resource vendor must be fully qualified and cannot contain regexes.",
        ),
        (
            "arn:aws:*:us-east-1:1:x",
            "Resource vendor must be fully qualified and cannot contain regexes.",
        ),
        (
            "arn:aws:iam:us-east-1:000000000000:role/x",
            "IAM resource arn:aws:iam:us-east-1:000000000000:role/x cannot contain region information.",
        ),
        (
            "arn:aws:s3:us-east-1::b",
            "Resource arn:aws:s3:us-east-1::b can not contain region information.",
        ),
    ],
)
def test_resource_format(resource: str, message: str | None) -> None:
    assert resource_format_error(resource) == message
    if message is not None:
        assert str(error_of(doc({**ALLOW_ALL, "Resource": resource}))) == message


def test_iam_resource_path() -> None:
    message = resource_format_error("arn:aws:iam::000000000000:thing/x")
    assert message is not None and message.startswith(
        'IAM resource path must either be "*" or start with user/'
    )


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            "s3GetObject",
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        ("s3:Get:Object", "Actions/Condition can contain only one colon."),
        ("s 3:GetObject", "Vendor s 3 is not valid"),
        ("s*:GetObject", "Vendor s* is not valid"),
        ("*:Get*", None),
        ("emr-containers:DescribeJobRun", None),
        ("elasticmapreduce:Get?nClusterAppUIPresignedURL", None),
    ],
)
def test_action_format(action: str, message: str | None) -> None:
    document = doc({**ALLOW_ALL, "Action": ["s3:GetObject", action]})
    if message is None:
        parse_policy(document)
    else:
        assert str(error_of(document)) == message


def test_condition_keys_need_a_vendor() -> None:
    document = doc({**ALLOW_ALL, "Condition": {"StringEquals": {"SourceIp": "x"}}})
    assert (
        str(error_of(document))
        == "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    )


# ------------------------------------------------------------------ sizes


def test_policy_size_ignores_white_space_outside_strings() -> None:
    assert policy_size('{ "a" : "b c" }') == len('{"a":"b c"}')
    assert policy_size('{"a\\"  b": 1}') == len('{"a\\"  b":1}')


def test_size_quota() -> None:
    assert max_policy_size("managed") == MANAGED_POLICY_MAX_SIZE == 6144
    assert (max_policy_size("user"), max_policy_size("group"), max_policy_size("role")) == (
        2048,
        5120,
        10240,
    )
    big = doc({**ALLOW_ALL, "Action": [f"s3:Action{i:04d}" for i in range(400)]})
    error = error_of(big, max_size=6144)
    assert (error.code, str(error)) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144")
    indented = json.dumps(json.loads(doc(ALLOW_ALL)), indent=40)
    assert len(indented) > 300
    parse_policy(indented, max_size=policy_size(indented))
    assert error_of(json.loads(big), max_size=2048).code == "LimitExceeded"
