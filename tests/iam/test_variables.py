"""Policy variables (emustudio/iam/variables.py)."""

from __future__ import annotations

import pytest

from emustudio.iam.keys import ConditionContext
from emustudio.iam.patterns import STAR, tokens_match
from emustudio.iam.variables import as_text, has_variables, substitute, substitute_text

CONTEXT = ConditionContext(
    {
        "aws:username": "alice",
        "aws:userid": "AIDAEXAMPLE",
        "aws:PrincipalTag/Team": "data",
        "aws:PrincipalTag/Cost Center": "42",
        "aws:SourceIdentity": "alice@example.com",
        "saml:sub": "alice-sub",
        "aws:TagKeys": ["a", "b"],
        "aws:SecureTransport": True,
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("home/${aws:username}/", "home/alice/"),
        ("${AWS:UserName}", "alice"),  # key names are case-insensitive
        ("${aws:userid}", "AIDAEXAMPLE"),
        ("${aws:userId}", "AIDAEXAMPLE"),
        ("team-${aws:PrincipalTag/team}", "team-data"),  # the tag key part too
        ("${aws:SourceIdentity}", "alice@example.com"),
        ("${saml:sub}", "alice-sub"),
        ("${aws:SecureTransport}", "true"),
        ("${ aws:username }", "alice"),
        ("${aws:PrincipalTag/cost center}", "42"),
        ("${*}${?}${$}", "*?$"),
        ("${aws:missing, 'anonymous'}", "anonymous"),
        ("${aws:username, 'anonymous'}", "alice"),
        ("${aws:missing, 'it''s'}", "it's"),
        ("${aws:missing,'x'}", "x"),
        ("price: $5 ${", "price: $5 ${"),  # not a variable: literal
        ("${aws:missing, '${aws:username}'}", "${aws:username}"),  # one pass only
        ("no variables", "no variables"),
    ],
)
def test_substitute_text(text: str, expected: str) -> None:
    assert substitute_text(text, CONTEXT) == expected


@pytest.mark.parametrize(
    "text",
    ["${aws:missing}", "a/${aws:username}/${aws:PrincipalTag/Nope}", "${aws:TagKeys}"],
)
def test_unresolvable_is_none(text: str) -> None:
    """Absent keys, and multivalued keys, do not resolve."""
    assert substitute_text(text, CONTEXT) is None
    assert substitute(text, CONTEXT) is None


def test_disabled_for_old_versions() -> None:
    assert substitute_text("${aws:username}", CONTEXT, enabled=False) == "${aws:username}"
    tokens = substitute("${aws:missing}/*", CONTEXT, enabled=False)
    assert tokens is not None
    assert tokens_match(tokens, "${aws:missing}/x", "resource")


def test_substituted_text_is_literal_in_patterns() -> None:
    context = ConditionContext({"aws:username": "a*b"})
    tokens = substitute("arn:aws:s3:::bucket/${aws:username}/*", context)
    assert tokens is not None
    assert tokens_match(tokens, "arn:aws:s3:::bucket/a*b/x", "resource")
    assert not tokens_match(tokens, "arn:aws:s3:::bucket/aXXb/x", "resource")
    assert tokens[-1] is STAR


def test_escapes_are_literal() -> None:
    tokens = substitute("arn:aws:s3:::bucket/${*}", CONTEXT)
    assert tokens is not None
    assert as_text(tokens) == "arn:aws:s3:::bucket/*"
    assert tokens_match(tokens, "arn:aws:s3:::bucket/*", "resource")
    assert not tokens_match(tokens, "arn:aws:s3:::bucket/key", "resource")


def test_has_variables() -> None:
    assert has_variables("a/${aws:username}")
    assert has_variables("${*}")
    assert not has_variables("a/$/{}")
