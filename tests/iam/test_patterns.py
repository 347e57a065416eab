"""Wildcard matching (emustudio/iam/patterns.py): examples and properties."""

from __future__ import annotations

import fnmatch
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emustudio.iam.patterns import (
    QMARK,
    STAR,
    _Automaton,
    _items,
    _Regex,
    action_matches,
    matches,
    tokenize_plain,
    tokens_match,
)

# ------------------------------------------------------------------ actions


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("elasticmapreduce:CreateStudio", "elasticmapreduce:CreateStudio", True),
        ("elasticmapreduce:CreateStudio", "ELASTICMAPREDUCE:createstudio", True),
        ("elasticmapreduce:Create*", "elasticmapreduce:CreateStudioPresignedUrl", True),
        ("elasticmapreduce:*Editor", "elasticmapreduce:StartEditor", True),
        ("elasticmapreduce:*Editor", "elasticmapreduce:StartEditors", False),
        ("iam:*AccessKey*", "iam:CreateAccessKey", True),
        ("iam:*AccessKey*", "iam:ListAccessKeys", True),
        ("*", "s3:GetObject", True),
        ("s3:*", "s3:GetObject", True),
        ("s3:*", "s3-object-lambda:GetObject", False),
        ("s3:Get?bject", "s3:GetObject", True),
        ("s3:Get?bject", "s3:GetObbject", False),
        ("elasticmapreduce:Describe*", "elasticmapreduce:ListStudios", False),
        ("ec2:Describe.*", "ec2:DescribeInstances", False),  # '.' is literal, not regex
        ("s3:Get+", "s3:Gett", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


# ------------------------------------------------------------------ resources


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "arn:aws:s3:::bucket", True),
        ("*", "*", True),
        ("arn:aws:s3:::*", "arn:aws:s3:::bucket/key", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b/c", True),  # trailing * crosses ':'
        ("arn:aws:s3:::bucket/*/c", "arn:aws:s3:::bucket/a:b/c", False),  # inner * does not
        ("arn:aws:s3:::bucket/*/c", "arn:aws:s3:::bucket/a/b/c", True),
        (
            "arn:aws:iam::*:role/EMR_DefaultRole",
            "arn:aws:iam::000000000000:role/EMR_DefaultRole",
            True,
        ),
        (
            "arn:aws:iam::*:role/EMR_DefaultRole",
            "arn:aws:iam::000000000000:role/emr_defaultrole",
            False,
        ),
        (
            "arn:aws:elasticmapreduce:*:*:studio/*",
            "arn:aws:elasticmapreduce:us-east-1:000000000000:studio/es-ABC",
            True,
        ),
        (
            "arn:aws:elasticmapreduce:*:*:studio/*",
            "arn:aws:elasticmapreduce:us-east-1:000000000000:editor/e-ABC",
            False,
        ),
        (
            "arn:aws:secretsmanager:*:*:secret:emr-studio-*",
            "arn:aws:secretsmanager:us-east-1:1:secret:emr-studio-x",
            True,
        ),
        (
            "arn:aws:secretsmanager:*:*:secret:emr-studio-*",
            "arn:aws:secretsmanager:us-east-1:1:secret:other",
            False,
        ),
        ("arn:aws:s3:::bucket", "*", False),
        ("arn:aws:s3:::buck?t", "arn:aws:s3:::bucket", True),
        ("arn:aws:s3:::a?b", "arn:aws:s3:::a:b", False),  # ? stays inside its segment
        ("arn:aws:s3:::my.bucket", "arn:aws:s3:::myXbucket", False),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert matches(pattern, resource, "resource") is expected


# ------------------------------------------------------------------ ARN condition values


@pytest.mark.parametrize(
    ("pattern", "value", "string_like", "arn_like"),
    [
        # The IAM User Guide's example of StringLike and ArnLike disagreeing.
        (
            "arn:aws:someservice:*:111122223333:finance/*",
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            True,
            False,
        ),
        (
            "arn:aws:sns:*:123456789012:topic",
            "arn:aws:sns:us-east-1:123456789012:topic",
            True,
            True,
        ),
        ("arn:aws:sns:*:123456789012:*", "arn:aws:sns:us-east-1:123456789012:a:b", True, True),
        ("*", "not-an-arn", True, True),
        ("arn:aws:sns:*", "arn:aws:sns:us-east-1:123456789012:topic", True, False),
        ("arn:aws:sns:us-east-1:123456789012:topic", "topic", False, False),
    ],
)
def test_arn_vs_string_like(pattern: str, value: str, string_like: bool, arn_like: bool) -> None:
    assert matches(pattern, value, "string") is string_like
    assert matches(pattern, value, "arn") is arn_like


def test_string_mode_is_case_sensitive_and_crosses_newlines() -> None:
    assert not matches("Team*", "team-a", "string")
    assert matches("a*b", "a\nx\nb", "string")


def test_literal_tokens_are_never_wildcards() -> None:
    # what ${*} produces: a literal '*', which matches only a '*'
    assert tokens_match(("arn:aws:s3:::b/", "*"), "arn:aws:s3:::b/*", "resource")
    assert not tokens_match(("arn:aws:s3:::b/", "*"), "arn:aws:s3:::b/x", "resource")
    assert tokens_match(("arn:aws:s3:::b/", STAR), "arn:aws:s3:::b/x", "resource")


def test_tokenize_plain() -> None:
    assert tokenize_plain("a*b?c") == ("a", STAR, "b", QMARK, "c")
    assert tokenize_plain("") == ()
    assert tokenize_plain("**") == (STAR, STAR)


# ------------------------------------------------------------------ properties

TEXT = st.text(alphabet="ab:/-.*?[]\\$x", max_size=16)
MODES = st.sampled_from(["action", "string"])


@st.composite
def starred(draw: st.DrawFn) -> tuple[str, str]:
    """A string and a pattern made from it by replacing random spans with '*'."""
    value = draw(st.text(alphabet="ab:/-.x", max_size=20))
    cuts = sorted(draw(st.lists(st.integers(0, len(value)), max_size=6)))
    pieces: list[str] = []
    previous = 0
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        pieces.append(value[previous:start].replace("*", "").replace("?", ""))
        pieces.append("*")
        previous = end
    pieces.append(value[previous:])
    return value, "".join(pieces)


@given(starred(), MODES)
def test_starred_pattern_matches_its_source(case: tuple[str, str], mode: str) -> None:
    value, pattern = case
    assert matches(pattern, value, mode)  # type: ignore[arg-type]


@st.composite
def starred_resource(draw: st.DrawFn) -> tuple[str, str]:
    """An ARN-like string and a pattern replacing spans that a Resource '*' may cover:
    a span without ':' anywhere, or any span that ends where its segment ends."""
    value = draw(st.text(alphabet="ab:/x", max_size=20))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(value)), max_size=6))))
    pieces: list[str] = []
    previous = 0
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        span = value[start:end]
        ends_segment = end == len(value) or value[end] == ":"
        if start == previous and pieces and pieces[-1] == "*":
            continue  # never two stars in a row
        if ":" in span and not ends_segment:
            continue
        pieces.append(value[previous:start])
        pieces.append("*")
        previous = end
    pieces.append(value[previous:])
    return value, "".join(pieces)


@given(starred_resource())
def test_starred_resource_pattern_matches_its_source(case: tuple[str, str]) -> None:
    value, pattern = case
    assert matches(pattern, value, "resource")


@given(st.text(alphabet="ab:/x", min_size=1, max_size=12), st.data())
def test_question_mark_matches_exactly_one_character(value: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(value) - 1))
    pattern = value[:position] + "?" + value[position + 1 :]
    assert matches(pattern, value, "string")
    assert matches(pattern, value[:position] + "Z" + value[position + 1 :], "string")
    assert not matches(pattern, value + "a", "string")
    assert not matches(pattern, value[:position] + value[position + 1 :], "string")


@given(st.integers(0, 8), st.text(alphabet="ab:", max_size=10))
def test_question_marks_match_length(count: int, value: str) -> None:
    assert matches("?" * count, value, "string") is (len(value) == count)


@given(st.text(alphabet="ab:/-.[]$^x", max_size=12), st.text(alphabet="ab:/-.[]$^x", max_size=12))
def test_literal_pattern_matches_only_equal_string(pattern: str, value: str) -> None:
    assert matches(pattern, value, "string") is (pattern == value)
    assert matches(pattern, value, "resource") is (pattern == value)
    assert matches(pattern, value, "action") is (pattern.lower() == value.lower())


def _fnmatch_model(pattern: str, value: str) -> bool:
    """fnmatch with '[' escaped is exactly IAM's glob: * and ? only."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


@given(TEXT, st.text(alphabet="ab:/-.[]\\$x", max_size=16))
def test_string_like_agrees_with_fnmatch(pattern: str, value: str) -> None:
    assert matches(pattern, value, "string") is _fnmatch_model(pattern, value)


@given(TEXT, st.text(alphabet="ab:/-.[]x", max_size=16))
def test_string_like_agrees_with_fnmatch_on_matching_inputs(pattern: str, filler: str) -> None:
    # build a value the pattern should match, so the property is not vacuous
    value = pattern.replace("*", filler).replace("?", "x")
    assert matches(pattern, value, "string")
    assert _fnmatch_model(pattern, value)


# ------------------------------------------------------------------ automaton vs regex

PATTERN_TEXT = st.text(alphabet="ab:*?", max_size=12)
VALUE_TEXT = st.text(alphabet="abAB:", max_size=14)


@given(PATTERN_TEXT, VALUE_TEXT, st.sampled_from(["action", "string", "resource", "arn"]))
def test_automaton_agrees_with_regex(pattern: str, value: str, mode: str) -> None:
    items = _items(tokenize_plain(pattern), mode)  # type: ignore[arg-type]
    if items is None:
        return
    fold = mode == "action"
    assert _Automaton(items, fold).fullmatch(value) is _Regex(items, fold).fullmatch(value)


def test_many_stars_do_not_backtrack_exponentially() -> None:
    pattern = "*a" * 12 + "b"
    value = "a" * 4000
    started = time.perf_counter()
    for mode in ("string", "action", "resource"):
        assert not matches(pattern, value, mode)
        assert matches(pattern, value + "b", mode)
    assert time.perf_counter() - started < 2.0
