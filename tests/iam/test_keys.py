"""The request context (emustudio/iam/keys.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from emustudio.iam.keys import (
    ConditionContext,
    fold_values,
    format_datetime,
    merge_contexts,
    tag_context,
)


def test_keys_are_case_insensitive() -> None:
    context = ConditionContext({"aws:PrincipalTag/Team": "data"})
    assert context.values("AWS:principaltag/team") == ("data",)
    assert "aws:principaltag/TEAM" in context
    assert context.values("aws:PrincipalTag/Other") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", ("x",)),
        ("", ("",)),
        (True, ("true",)),
        (False, ("false",)),
        (10, ("10",)),
        (1.5, ("1.5",)),
        (Decimal("2.50"), ("2.50",)),
        (b"\x00\x01", ("AAE=",)),
        (["a", "b"], ("a", "b")),
        ([], None),
        (None, None),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), ("2024-01-02T03:04:05Z",)),
    ],
)
def test_fold_values(value: object, expected: tuple[str, ...] | None) -> None:
    assert fold_values(value) == expected


def test_unsupported_value_type() -> None:
    with pytest.raises(TypeError):
        ConditionContext({"k": object()})


def test_format_datetime_naive_is_utc_and_offsets_convert() -> None:
    assert format_datetime(dt.datetime(2024, 1, 1, 12)) == "2024-01-01T12:00:00Z"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_datetime(dt.datetime(2024, 1, 1, 12, tzinfo=plus_two)) == "2024-01-01T10:00:00Z"
    assert format_datetime(dt.datetime(2024, 1, 1, 0, 0, 0, 5)) == "2024-01-01T00:00:00.000005Z"


def test_single_refuses_multivalued() -> None:
    context = ConditionContext({"aws:TagKeys": ["a"], "aws:username": "u"})
    assert context.single("aws:TagKeys") is None
    assert context.is_multivalued("aws:tagkeys")
    assert context.single("aws:username") == "u"


def test_tag_context_both_prefixes() -> None:
    context = tag_context(
        service="elasticmapreduce",
        resource_tags={"Team": "a"},
        request_tags={"Env": "dev", "Owner": "x"},
        principal_tags={"Team": "a"},
    )
    assert context["aws:ResourceTag/Team"] == "a"
    assert context["elasticmapreduce:ResourceTag/Team"] == "a"
    assert context["aws:RequestTag/Env"] == "dev"
    assert context["elasticmapreduce:RequestTag/Owner"] == "x"
    assert context["aws:TagKeys"] == ["Env", "Owner"]
    assert context["elasticmapreduce:TagKeys"] == ["Env", "Owner"]
    assert context["aws:PrincipalTag/Team"] == "a"
    assert "aws:TagKeys" not in tag_context(resource_tags={"a": "b"})


def test_merge_contexts_later_wins_case_insensitively() -> None:
    merged = merge_contexts({"aws:UserName": "a", "x:y": "1"}, None, {"AWS:username": "b"})
    assert merged == {"x:y": "1", "AWS:username": "b"}
