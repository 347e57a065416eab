"""Condition operators (emustudio/iam/conditions.py), through parsed policies.

Examples are the IAM User Guide's ("Condition operators", "Multivalued context keys").
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emustudio.iam import parse_policy
from emustudio.iam.conditions import (
    NEGATED,
    OPERATORS,
    evaluate_clause,
    evaluate_conditions,
    parse_date,
    split_operator,
)
from emustudio.iam.keys import ConditionContext
from emustudio.iam.model import ConditionClause


def holds(
    condition: Mapping[str, Any], context: Mapping[str, object], *, version: str = "2012-10-17"
) -> bool:
    document = {
        "Version": version,
        "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": condition},
    }
    policy = parse_policy(document)
    return evaluate_conditions(
        policy.statements[0].conditions, ConditionContext(context), policy.supports_variables
    )


# ------------------------------------------------------------------ operator names


def test_split_operator() -> None:
    assert split_operator("StringEquals") == ("StringEquals", None, False)
    assert split_operator("StringLikeIfExists") == ("StringLike", None, True)
    assert split_operator("ForAllValues:StringEquals") == ("StringEquals", "ForAllValues", False)
    assert split_operator("ForAnyValue:ArnLikeIfExists") == ("ArnLike", "ForAnyValue", True)
    assert split_operator("IfExists") == ("IfExists", None, False)
    assert len(OPERATORS) == 27


def test_unknown_operator_never_matches() -> None:
    clause = ConditionClause("StringEqualz", "StringEqualz", "aws:username", ("a",), known=False)
    context = ConditionContext({"aws:username": "a"})
    assert not evaluate_clause(clause, context)
    # even if someone builds it claiming to be known
    forged = ConditionClause("StringEqualz", "StringEqualz", "aws:username", ("a",))
    assert not evaluate_clause(forged, context)
    assert not evaluate_clause(forged, ConditionContext({}))


# ------------------------------------------------------------------ string


def test_string_equals_principal_tag_example() -> None:
    condition = {"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}
    assert holds(condition, {"aws:PrincipalTag/job-category": "iamuser-admin"})
    assert not holds(condition, {"aws:PrincipalTag/job-category": "IAMUSER-ADMIN"})
    assert not holds(condition, {})  # absent key: false


def test_string_equals_multiple_values_are_ored() -> None:
    condition = {"StringEquals": {"aws:PrincipalTag/team": ["a", "b"]}}
    assert holds(condition, {"aws:PrincipalTag/team": "b"})
    assert not holds(condition, {"aws:PrincipalTag/team": "c"})


def test_multiple_keys_and_operators_are_anded() -> None:
    condition = {
        "StringEquals": {"aws:PrincipalTag/team": "a", "aws:RequestedRegion": "us-east-1"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    good = {
        "aws:PrincipalTag/team": "a",
        "aws:RequestedRegion": "us-east-1",
        "aws:SecureTransport": True,
    }
    assert holds(condition, good)
    assert not holds(condition, {**good, "aws:RequestedRegion": "eu-west-1"})
    assert not holds(condition, {**good, "aws:SecureTransport": False})


def test_string_not_equals() -> None:
    condition = {"StringNotEquals": {"aws:PrincipalTag/team": ["a", "b"]}}
    assert holds(condition, {"aws:PrincipalTag/team": "c"})
    assert not holds(condition, {"aws:PrincipalTag/team": "a"})
    # AWS: a negated operator on an absent key is true
    assert holds(condition, {})


def test_string_ignore_case() -> None:
    assert holds({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"})
    assert not holds(
        {"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "Alice"}
    )
    assert holds({"StringNotEqualsIgnoreCase": {"aws:username": "bob"}}, {"aws:username": "Alice"})


def test_string_like_home_directory_example() -> None:
    condition = {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/"]}}
    context = {"aws:username": "alice"}
    assert holds(condition, {**context, "s3:prefix": ""})
    assert holds(condition, {**context, "s3:prefix": "home/alice/"})
    assert not holds(condition, {**context, "s3:prefix": "home/bob/"})
    # the variable is unresolvable for a caller without a user name: the clause fails
    assert not holds(condition, {"s3:prefix": "home/"})


def test_string_like_wildcards_and_not_like() -> None:
    assert holds(
        {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*"]}}, {"ec2:InstanceType": "t2.micro"}
    )
    assert not holds(
        {"StringLike": {"ec2:InstanceType": "t?.micro"}}, {"ec2:InstanceType": "t22.micro"}
    )
    assert holds({"StringNotLike": {"ec2:InstanceType": "t2.*"}}, {"ec2:InstanceType": "m5.large"})
    assert not holds(
        {"StringNotLike": {"ec2:InstanceType": "t2.*"}}, {"ec2:InstanceType": "t2.nano"}
    )
    assert holds({"StringNotLike": {"ec2:InstanceType": "t2.*"}}, {})


def test_string_equals_takes_wildcards_literally() -> None:
    assert not holds({"StringEquals": {"aws:username": "a*"}}, {"aws:username": "alice"})
    assert holds({"StringEquals": {"aws:username": "a*"}}, {"aws:username": "a*"})


def test_variables_only_in_2012_documents() -> None:
    condition = {"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}}
    context = {"aws:username": "alice", "aws:PrincipalTag/owner": "alice"}
    assert holds(condition, context)
    assert not holds(condition, context, version="2008-10-17")
    assert holds(
        condition, {**context, "aws:PrincipalTag/owner": "${aws:username}"}, version="2008-10-17"
    )


def test_unresolvable_variable_invalidates_negated_clause_too() -> None:
    condition = {"StringNotEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}
    assert holds(condition, {"aws:ResourceTag/team": "a", "aws:PrincipalTag/team": "b"})
    assert not holds(condition, {"aws:ResourceTag/team": "a"})


def test_default_value_of_variable() -> None:
    condition = {"StringEquals": {"aws:ResourceTag/owner": "${aws:userid, 'anonymous'}"}}
    assert holds(condition, {"aws:ResourceTag/owner": "anonymous"})
    assert holds(condition, {"aws:ResourceTag/owner": "AID1", "aws:userid": "AID1"})


# ------------------------------------------------------------------ numeric


def test_numeric_max_keys_example() -> None:
    condition = {"NumericLessThanEquals": {"s3:max-keys": "10"}}
    assert holds(condition, {"s3:max-keys": 10})
    assert holds(condition, {"s3:max-keys": "9"})
    assert not holds(condition, {"s3:max-keys": "11"})
    assert not holds(condition, {})


@pytest.mark.parametrize(
    ("operator_name", "policy", "value", "expected"),
    [
        ("NumericEquals", 10, "10.0", True),
        ("NumericEquals", "1e1", 10, True),
        ("NumericNotEquals", 10, 11, True),
        ("NumericLessThan", "2.5", 2, True),
        ("NumericGreaterThan", -1, 0, True),
        ("NumericGreaterThanEquals", 3, 3, True),
        ("NumericEquals", "abc", "abc", False),  # not numbers: never equal
        ("NumericNotEquals", "abc", 1, True),  # ... so the negation holds
        ("NumericLessThan", 5, "NaN", False),
        ("NumericEquals", "${aws:x}", 1, False),  # no variables in numeric operators
    ],
)
def test_numeric_operators(
    operator_name: str, policy: object, value: object, expected: bool
) -> None:
    assert holds({operator_name: {"aws:x": policy}}, {"aws:x": value}) is expected


# ------------------------------------------------------------------ date


def test_date_token_issue_time_example() -> None:
    condition = {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}
    assert holds(condition, {"aws:TokenIssueTime": "2020-06-01T00:00:00Z"})
    assert holds(condition, {"aws:TokenIssueTime": dt.datetime(2021, 1, 1, tzinfo=dt.UTC)})
    assert not holds(condition, {"aws:TokenIssueTime": "2019-12-31T23:59:59Z"})
    assert not holds(condition, {})  # an IAM user's long-term keys have no TokenIssueTime


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2020-01-01T00:00:00Z", 1577836800),
        ("2020-01-01", 1577836800),
        ("2020-01", 1577836800),
        ("2020-01-01T02:00:00+02:00", 1577836800),
        ("2020-01-01T00:00Z", 1577836800),
        ("2020-01-01T00:00:00.5Z", 1577836800.5),
        ("2020-01-01t00:00:00z", 1577836800),
        ("1577836800", 1577836800),
    ],
)
def test_parse_date_formats(text: str, epoch: float) -> None:
    assert parse_date(text) == epoch


@pytest.mark.parametrize(
    "text", ["yesterday", "2020-13-01", "2020-02-30", "2020-01-01T25:00:00Z", ""]
)
def test_parse_date_rejects(text: str) -> None:
    assert parse_date(text) is None


def test_date_operators_mix_epoch_and_iso() -> None:
    assert holds(
        {"DateEquals": {"aws:EpochTime": "2020-01-01T00:00:00Z"}}, {"aws:EpochTime": 1577836800}
    )
    assert holds(
        {"DateLessThan": {"aws:CurrentTime": "1577836800"}}, {"aws:CurrentTime": "2019-01-01"}
    )
    assert holds(
        {"DateNotEquals": {"aws:CurrentTime": "2020-01-01"}}, {"aws:CurrentTime": "2020-01-02"}
    )
    assert holds(
        {"DateLessThanEquals": {"aws:CurrentTime": "2020-01-01"}}, {"aws:CurrentTime": "2020-01-01"}
    )
    assert holds(
        {"DateGreaterThanEquals": {"aws:CurrentTime": "2020-01-01"}},
        {"aws:CurrentTime": "2020-01-01"},
    )


# ------------------------------------------------------------------ bool, binary, ip, arn, null


def test_bool_secure_transport_example() -> None:
    condition = {"Bool": {"aws:SecureTransport": "false"}}
    assert holds(condition, {"aws:SecureTransport": False})
    assert holds(condition, {"aws:SecureTransport": "FALSE"})
    assert not holds(condition, {"aws:SecureTransport": True})
    assert not holds(condition, {})
    assert holds({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"})
    assert not holds({"Bool": {"aws:SecureTransport": "yes"}}, {"aws:SecureTransport": "yes"})


def test_bool_accepts_variables() -> None:
    condition = {"Bool": {"aws:MultiFactorAuthPresent": "${aws:PrincipalTag/mfa}"}}
    assert holds(condition, {"aws:MultiFactorAuthPresent": True, "aws:PrincipalTag/mfa": "true"})


def test_binary_equals_example() -> None:
    condition = {"BinaryEquals": {"aws:key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}
    assert holds(condition, {"aws:key": b"BinaryValueInBase64"})
    assert holds(condition, {"aws:key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="})
    assert not holds(condition, {"aws:key": b"other"})
    assert not holds({"BinaryEquals": {"aws:key": "!!notbase64"}}, {"aws:key": "!!notbase64"})


def test_ip_address_example() -> None:
    condition = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}
    assert holds(condition, {"aws:SourceIp": "203.0.113.7"})
    assert holds(condition, {"aws:SourceIp": "2001:db8:1234:5678::1"})
    assert not holds(condition, {"aws:SourceIp": "198.51.100.1"})
    assert not holds(condition, {"aws:SourceIp": "not an ip"})
    assert not holds(condition, {})
    assert holds({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.5"})
    assert not holds(
        {"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.6"}
    )
    assert holds({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.0.1"})
    assert not holds({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"})
    # IPv4 never matches an IPv6 range (::/0 is not 0.0.0.0/0)
    assert not holds({"IpAddress": {"aws:SourceIp": "::/0"}}, {"aws:SourceIp": "10.1.2.3"})


def test_arn_equals_source_arn_example() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:TOPIC-ID"
    condition = {"ArnEquals": {"aws:SourceArn": topic}}
    assert holds(condition, {"aws:SourceArn": topic})
    assert not holds(condition, {"aws:SourceArn": topic.lower()})
    assert not holds(condition, {})
    wild = {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}}
    assert holds(wild, {"aws:SourceArn": topic})
    assert holds(
        {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}}, {"aws:SourceArn": topic}
    )
    assert holds({"ArnNotLike": {"aws:SourceArn": "arn:aws:sqs:*:*:*"}}, {"aws:SourceArn": topic})
    assert not holds({"ArnNotEquals": {"aws:SourceArn": topic}}, {"aws:SourceArn": topic})
    # the service-role recommendation: aws:SourceArn like arn:aws:elasticmapreduce:<region>:<account>:*
    studio = "arn:aws:elasticmapreduce:us-east-1:000000000000:studio/es-1"
    emr = {"ArnLike": {"aws:SourceArn": "arn:aws:elasticmapreduce:us-east-1:000000000000:*"}}
    assert holds(emr, {"aws:SourceArn": studio})


def test_arn_like_with_principal_variable() -> None:
    condition = {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/${aws:username}"}}
    assert holds(
        condition, {"aws:PrincipalArn": "arn:aws:iam::1:user/alice", "aws:username": "alice"}
    )
    assert not holds(
        condition, {"aws:PrincipalArn": "arn:aws:iam::1:user/bob", "aws:username": "alice"}
    )


def test_null_example() -> None:
    condition = {"Null": {"aws:TokenIssueTime": "true"}}
    assert holds(condition, {})
    assert not holds(condition, {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"})
    assert holds({"Null": {"aws:TokenIssueTime": False}}, {"aws:TokenIssueTime": "2020-01-01"})
    assert not holds({"Null": {"aws:TokenIssueTime": "false"}}, {})
    assert holds({"Null": {"aws:TagKeys": "true"}}, {"aws:TagKeys": []})  # empty list: absent
    assert not holds({"Null": {"aws:x": "maybe"}}, {})


# ------------------------------------------------------------------ IfExists


def test_if_exists_instance_type_example() -> None:
    condition = {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}
    assert holds(condition, {})  # images, key pairs... have no InstanceType
    assert holds(condition, {"ec2:InstanceType": "t2.micro"})
    assert not holds(condition, {"ec2:InstanceType": "p4d.24xlarge"})


def test_negated_if_exists() -> None:
    condition = {"StringNotEqualsIfExists": {"aws:ResourceTag/team": "a"}}
    assert holds(condition, {})
    assert not holds(condition, {"aws:ResourceTag/team": "a"})


# ------------------------------------------------------------------ set operators


def test_for_all_values_tag_keys_example() -> None:
    condition = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert holds(condition, {"aws:TagKeys": ["environment"]})
    assert holds(condition, {"aws:TagKeys": ["environment", "cost-center"]})
    assert not holds(condition, {"aws:TagKeys": ["environment", "owner"]})
    assert holds(condition, {})  # absent: true
    assert holds(condition, {"aws:TagKeys": []})  # empty: true


def test_for_any_value_tag_keys_example() -> None:
    condition = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert holds(condition, {"aws:TagKeys": ["environment", "owner"]})
    assert not holds(condition, {"aws:TagKeys": ["owner"]})
    assert not holds(condition, {})  # absent: false
    assert holds({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "x"}}, {})


def test_negated_set_operators() -> None:
    all_not = {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}}
    assert holds(all_not, {"aws:TagKeys": ["a", "b"]})
    assert not holds(all_not, {"aws:TagKeys": ["a", "secret"]})
    any_not = {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["secret"]}}
    assert holds(any_not, {"aws:TagKeys": ["a", "secret"]})
    assert not holds(any_not, {"aws:TagKeys": ["secret"]})
    assert holds({"ForAllValues:StringNotLike": {"aws:TagKeys": "aws:*"}}, {})
    assert not holds({"ForAnyValue:StringNotLike": {"aws:TagKeys": "aws:*"}}, {})


def test_multivalued_key_without_set_operator() -> None:
    assert holds({"StringEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["b", "a"]})
    assert not holds({"StringNotEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["b", "a"]})


# ------------------------------------------------------------------ properties

NUMERIC_OPS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "NumericEquals": operator.eq,
    "NumericNotEquals": operator.ne,
    "NumericLessThan": operator.lt,
    "NumericLessThanEquals": operator.le,
    "NumericGreaterThan": operator.gt,
    "NumericGreaterThanEquals": operator.ge,
}
NUMBERS = st.one_of(
    st.integers(-(10**12), 10**12),
    st.decimals(min_value=-(10**6), max_value=10**6, allow_nan=False, places=3),
)


@given(st.sampled_from(sorted(NUMERIC_OPS)), NUMBERS, NUMBERS)
def test_numeric_operators_agree_with_python(
    name: str, value: Decimal | int, policy: Decimal | int
) -> None:
    expected = NUMERIC_OPS[name](Decimal(value), Decimal(policy))
    assert holds({name: {"aws:n": str(policy)}}, {"aws:n": str(value)}) is expected


DATE_OPS = {name.replace("Numeric", "Date"): test for name, test in NUMERIC_OPS.items()}


@given(st.sampled_from(sorted(DATE_OPS)), st.integers(0, 4 * 10**9), st.integers(0, 4 * 10**9))
def test_date_operators_agree_with_python(name: str, value: int, policy: int) -> None:
    iso = dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = DATE_OPS[name](Decimal(value), Decimal(policy))
    assert holds({name: {"aws:CurrentTime": str(policy)}}, {"aws:CurrentTime": iso}) is expected


WORDS = st.sampled_from(["a", "b", "c", "d"])


@given(
    st.lists(WORDS, max_size=4),
    st.lists(WORDS, min_size=1, max_size=3),
    st.sampled_from(["StringEquals", "StringNotEquals"]),
)
def test_set_operators_agree_with_set_semantics(
    request_values: list[str], policy: list[str], name: str
) -> None:
    context = {"aws:TagKeys": request_values}
    wanted, given_ = set(policy), set(request_values)
    if name == "StringEquals":
        for_all, for_any = given_ <= wanted, bool(given_ & wanted)
    else:
        for_all, for_any = not (given_ & wanted), bool(given_ - wanted)
    assert holds({f"ForAllValues:{name}": {"aws:TagKeys": policy}}, context) is for_all
    assert holds({f"ForAnyValue:{name}": {"aws:TagKeys": policy}}, context) is for_any


EXAMPLE_VALUES = {
    "String": "x",
    "Numeric": "1",
    "Date": "2020-01-01",
    "Bool": "true",
    "Binary": "AA==",
    "IpAddress": "10.0.0.0/8",
    "NotIpAddress": "10.0.0.0/8",
    "Arn": "arn:aws:s3:::b",
}


def _example_value(base: str) -> str:
    return next(value for prefix, value in EXAMPLE_VALUES.items() if base.startswith(prefix))


@given(
    st.sampled_from(sorted(OPERATORS - {"Null"})),
    st.sampled_from([None, "ForAllValues", "ForAnyValue"]),
)
def test_absent_key_semantics(base: str, set_operator: str | None) -> None:
    prefix = f"{set_operator}:" if set_operator else ""
    value = _example_value(base)
    assert holds({f"{prefix}{base}IfExists": {"aws:absent": value}}, {"aws:other": "x"})
    plain = holds({f"{prefix}{base}": {"aws:absent": value}}, {"aws:other": "x"})
    if set_operator == "ForAllValues":
        assert plain
    elif set_operator == "ForAnyValue":
        assert not plain
    else:
        assert plain is (base in NEGATED)


@given(st.text(alphabet="ab*?.[x", max_size=8), st.text(alphabet="ab.[x", max_size=8))
def test_string_like_agrees_with_fnmatch_model(pattern: str, value: str) -> None:
    expected = fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))
    assert holds({"StringLike": {"aws:k": pattern}}, {"aws:k": value}) is expected
    assert holds({"StringNotLike": {"aws:k": pattern}}, {"aws:k": value}) is (not expected)


def test_escapes_in_string_like_are_literal() -> None:
    condition = {"StringLike": {"s3:prefix": "reports/${*}/${?}"}}
    assert holds(condition, {"s3:prefix": "reports/*/?"})
    assert not holds(condition, {"s3:prefix": "reports/x/y"})
    assert holds({"StringLike": {"s3:prefix": "price-${$}*"}}, {"s3:prefix": "price-$100"})
