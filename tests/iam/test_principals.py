"""Principal matching (emustudio/iam/principals.py)."""

from __future__ import annotations

import pytest

from emustudio.iam.model import PrincipalSpec
from emustudio.iam.principals import (
    Caller,
    account_of,
    excluded_by_not_principal,
    match_principal,
    parse_principal,
    role_of_session,
)

ACCOUNT = "000000000000"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/team/Analyst"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Analyst/alice"


def spec(**entries: object) -> PrincipalSpec:
    return parse_principal(entries)


def test_role_of_session_and_account_of() -> None:
    assert role_of_session(SESSION) == f"arn:aws:iam::{ACCOUNT}:role/Analyst"
    assert role_of_session(ALICE) is None
    assert account_of(ALICE) == ACCOUNT
    assert account_of("arn:aws:s3:::bucket") is None
    assert account_of("*") is None


def test_caller_from_arn() -> None:
    caller = Caller.from_arn(SESSION, ROLE)
    assert caller.aws == (SESSION, ROLE, f"arn:aws:iam::{ACCOUNT}:role/Analyst")
    assert caller.account == ACCOUNT
    assert Caller.from_arn(ALICE).aws == (ALICE,)


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ({"AWS": ALICE}, Caller.from_arn(ALICE), "direct"),
        ({"AWS": [ROLE, ALICE]}, Caller.from_arn(ALICE), "direct"),
        ({"AWS": ACCOUNT}, Caller.from_arn(ALICE), "account"),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Caller.from_arn(ALICE), "account"),
        ({"AWS": "111111111111"}, Caller.from_arn(ALICE), None),
        ({"AWS": "*"}, Caller.from_arn(ALICE), "anyone"),
        ({"AWS": ROLE}, Caller.from_arn(SESSION, ROLE), "role"),
        ({"AWS": SESSION}, Caller.from_arn(SESSION, ROLE), "direct"),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Analyst"}, Caller.from_arn(SESSION), "role"),
        ({"AWS": ROLE}, Caller.from_arn(ALICE), None),
        ({"AWS": [ACCOUNT, ROLE]}, Caller.from_arn(SESSION, ROLE), "role"),  # strongest wins
        (
            {"Service": "elasticmapreduce.amazonaws.com"},
            Caller(service=("elasticmapreduce.amazonaws.com",)),
            "direct",
        ),
        (
            {"Service": "ec2.amazonaws.com"},
            Caller(service=("elasticmapreduce.amazonaws.com",)),
            None,
        ),
        ({"AWS": ALICE}, Caller(service=("elasticmapreduce.amazonaws.com",)), None),
        (
            {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/IdP"},
            Caller.from_mapping({"Federated": [f"arn:aws:iam::{ACCOUNT}:saml-provider/IdP"]}),
            "direct",
        ),
        ({"CanonicalUser": "A" * 64}, Caller(canonical_user=("a" * 64,)), "direct"),
    ],
)
def test_match_principal(
    principal: dict[str, object], caller: Caller, expected: str | None
) -> None:
    assert match_principal(parse_principal(principal), caller) == expected


def test_star_principal() -> None:
    assert match_principal(parse_principal("*"), Caller()) == "anyone"


def test_not_principal_needs_every_identity_listed() -> None:
    session = Caller.from_arn(SESSION, ROLE)
    assert not excluded_by_not_principal(spec(AWS=[SESSION]), session)
    assert not excluded_by_not_principal(spec(AWS=[SESSION, ROLE]), session)
    everything = spec(AWS=[SESSION, ROLE, f"arn:aws:iam::{ACCOUNT}:role/Analyst", ACCOUNT])
    assert excluded_by_not_principal(everything, session)
    user = Caller.from_arn(ALICE)
    assert excluded_by_not_principal(spec(AWS=[ALICE, ACCOUNT]), user)
    assert not excluded_by_not_principal(spec(AWS=[ALICE]), user)
    assert excluded_by_not_principal(spec(AWS="*"), user)
    assert excluded_by_not_principal(parse_principal("*"), user)
    service = Caller.from_mapping({"Service": "elasticmapreduce.amazonaws.com"})
    assert excluded_by_not_principal(spec(Service="elasticmapreduce.amazonaws.com"), service)
    assert not excluded_by_not_principal(spec(AWS=ALICE), Caller())
