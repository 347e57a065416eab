"""IAM users, groups, tags, pagination and login profiles, as boto3 and the AWS CLI see them."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from tests.services.iam.support import (
    ACCOUNT,
    InProcessGateway,
    allow,
    doc,
    error_of,
    status_of,
)


@pytest.fixture(scope="module")
def iam(gateway: GatewayProcess) -> Any:
    return gateway.client("iam")


def test_life_of_a_user(iam: Any) -> None:
    created = iam.create_user(
        UserName="Alice", Path="/eng/data/", Tags=[{"Key": "team", "Value": "data"}]
    )["User"]
    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", created["UserId"])
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/eng/data/Alice"
    assert (created["UserName"], created["Path"]) == ("Alice", "/eng/data/")
    assert created["Tags"] == [{"Key": "team", "Value": "data"}]
    assert created["CreateDate"].tzinfo is not None

    # Names are unique and found without regard to case; the stored spelling is kept.
    assert iam.get_user(UserName="alice")["User"]["UserName"] == "Alice"
    for name in ("Alice", "ALICE"):
        with pytest.raises(ClientError) as exc:
            iam.create_user(UserName=name)
        assert error_of(exc) == ("EntityAlreadyExists", f"User with name {name} already exists.")
        assert status_of(exc) == 409

    iam.update_user(UserName="Alice", NewUserName="alice2", NewPath="/ops/")
    user = iam.get_user(UserName="alice2")["User"]
    assert (user["UserId"], user["Arn"]) == (
        created["UserId"],
        f"arn:aws:iam::{ACCOUNT}:user/ops/alice2",
    )
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName="Alice")
    assert error_of(exc) == ("NoSuchEntity", "The user with name Alice cannot be found.")
    assert status_of(exc) == 404

    listed = {u["UserName"]: u for u in iam.list_users(PathPrefix="/ops/")["Users"]}
    assert set(listed) == {"alice2"} and "Tags" not in listed["alice2"]

    iam.delete_user(UserName="alice2")
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName="alice2")
    assert error_of(exc) == ("NoSuchEntity", "The user with name alice2 cannot be found.")


def test_get_user_without_a_name_is_the_caller(iam: Any) -> None:
    me = iam.get_user()["User"]
    assert (me["UserId"], me["Arn"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root")
    assert "UserName" not in me and me["CreateDate"]


def test_user_tags(iam: Any) -> None:
    iam.create_user(UserName="tagged", Tags=[{"Key": "a", "Value": "1"}])
    iam.tag_user(UserName="tagged", Tags=[{"Key": "b", "Value": "2"}, {"Key": "A", "Value": "3"}])
    assert iam.list_user_tags(UserName="tagged")["Tags"] == [
        {"Key": "b", "Value": "2"},
        {"Key": "A", "Value": "3"},
    ]
    iam.untag_user(UserName="tagged", TagKeys=["a"])
    assert iam.list_user_tags(UserName="tagged")["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as exc:
        iam.tag_user(UserName="tagged", Tags=[{"Key": "x", "Value": ""}, {"Key": "X", "Value": ""}])
    assert error_of(exc) == (
        "InvalidInput",
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    )
    with pytest.raises(ClientError) as exc:
        iam.tag_user(UserName="nobody", Tags=[{"Key": "x", "Value": "y"}])
    assert error_of(exc)[0] == "NoSuchEntity"


def test_pagination_with_max_items(iam: Any) -> None:
    names = [f"pager{i}" for i in range(5)]
    for name in names:
        iam.create_user(UserName=name, Path="/paging/")
    first = iam.list_users(PathPrefix="/paging/", MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == names[:2]
    assert first["IsTruncated"] is True and first["Marker"]
    second = iam.list_users(PathPrefix="/paging/", MaxItems=2, Marker=first["Marker"])
    assert [u["UserName"] for u in second["Users"]] == names[2:4]
    third = iam.list_users(PathPrefix="/paging/", MaxItems=2, Marker=second["Marker"])
    assert [u["UserName"] for u in third["Users"]] == names[4:]
    assert third["IsTruncated"] is False and "Marker" not in third
    pages = iam.get_paginator("list_users").paginate(
        PathPrefix="/paging/", PaginationConfig={"PageSize": 2}
    )
    assert [u["UserName"] for p in pages for u in p["Users"]] == names


def test_groups_and_memberships(iam: Any) -> None:
    group = iam.create_group(GroupName="Devs", Path="/teams/")["Group"]
    assert re.fullmatch(r"AGPA[A-Z0-9]{17}", group["GroupId"])
    assert group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/teams/Devs"
    with pytest.raises(ClientError) as exc:
        iam.create_group(GroupName="devs")
    assert error_of(exc) == ("EntityAlreadyExists", "Group with name devs already exists.")
    for name in ("gm1", "gm2"):
        iam.create_user(UserName=name)
        iam.add_user_to_group(GroupName="Devs", UserName=name)
    iam.add_user_to_group(GroupName="Devs", UserName="gm1")  # again: no error
    got = iam.get_group(GroupName="Devs")
    assert got["Group"]["GroupName"] == "Devs"
    assert [u["UserName"] for u in got["Users"]] == ["gm1", "gm2"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="gm1")["Groups"]] == ["Devs"]
    assert "Devs" in {g["GroupName"] for g in iam.list_groups(PathPrefix="/teams/")["Groups"]}

    with pytest.raises(ClientError) as exc:
        iam.delete_group(GroupName="Devs")
    assert error_of(exc) == (
        "DeleteConflict",
        "Cannot delete entity, must remove users from group first.",
    )
    assert status_of(exc) == 409
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName="gm1")
    assert error_of(exc) == (
        "DeleteConflict",
        "Cannot delete entity, must remove user from all groups first.",
    )
    for name in ("gm1", "gm2"):
        iam.remove_user_from_group(GroupName="Devs", UserName=name)
    assert iam.get_group(GroupName="Devs")["Users"] == []
    with pytest.raises(ClientError) as exc:
        iam.add_user_to_group(GroupName="Nope", UserName="gm1")
    assert error_of(exc) == ("NoSuchEntity", "The group with name Nope cannot be found.")
    iam.delete_group(GroupName="Devs")
    iam.delete_user(UserName="gm1")


def test_a_user_is_in_at_most_ten_groups(iam: Any) -> None:
    iam.create_user(UserName="joiner")
    for i in range(10):
        iam.create_group(GroupName=f"many{i}")
        iam.add_user_to_group(GroupName=f"many{i}", UserName="joiner")
    iam.create_group(GroupName="many10")
    with pytest.raises(ClientError) as exc:
        iam.add_user_to_group(GroupName="many10", UserName="joiner")
    assert error_of(exc) == ("LimitExceeded", "Cannot exceed quota for GroupsPerUser: 10")
    assert status_of(exc) == 409


def test_delete_user_refuses_while_things_hang_off_it(iam: Any) -> None:
    iam.create_user(UserName="busy")
    iam.create_group(GroupName="busy-group")
    iam.create_login_profile(UserName="busy", Password="Corr3ct-horse")
    key = iam.create_access_key(UserName="busy")["AccessKey"]["AccessKeyId"]
    iam.put_user_policy(UserName="busy", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    iam.attach_user_policy(UserName="busy", PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    iam.add_user_to_group(GroupName="busy-group", UserName="busy")
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("must delete login profile first.", lambda: iam.delete_login_profile(UserName="busy")),
        (
            "must delete access keys first.",
            lambda: iam.delete_access_key(UserName="busy", AccessKeyId=key),
        ),
        (
            "must delete policies first.",
            lambda: iam.delete_user_policy(UserName="busy", PolicyName="p"),
        ),
        (
            "must detach all policies first.",
            lambda: iam.detach_user_policy(
                UserName="busy", PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess"
            ),
        ),
        (
            "must remove user from all groups first.",
            lambda: iam.remove_user_from_group(GroupName="busy-group", UserName="busy"),
        ),
    ]
    for message, undo in steps:
        with pytest.raises(ClientError) as exc:
            iam.delete_user(UserName="busy")
        assert error_of(exc) == ("DeleteConflict", f"Cannot delete entity, {message}")
        undo()
    iam.delete_user(UserName="busy")


def test_login_profiles(iam: Any, gateway: GatewayProcess) -> None:
    iam.create_user(UserName="console")
    with pytest.raises(ClientError) as exc:
        iam.create_login_profile(UserName="console", Password="short")
    assert error_of(exc) == (
        "PasswordPolicyViolation",
        "Password does not conform to the account password policy.",
    )
    password = "Unguessable-Pa55word"
    profile = iam.create_login_profile(
        UserName="console", Password=password, PasswordResetRequired=True
    )["LoginProfile"]
    assert profile["UserName"] == "console" and profile["PasswordResetRequired"] is True
    with pytest.raises(ClientError) as exc:
        iam.create_login_profile(UserName="console", Password=password)
    assert error_of(exc) == (
        "EntityAlreadyExists",
        "Login Profile for user console already exists.",
    )
    iam.update_login_profile(
        UserName="console", Password="An0ther-Pa55word", PasswordResetRequired=False
    )
    assert (
        iam.get_login_profile(UserName="console")["LoginProfile"]["PasswordResetRequired"] is False
    )
    # Only a salted hash is stored.
    db = sqlite3.connect(gateway.data_dir / "emustudio.db")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert password not in dump and "An0ther-Pa55word" not in dump
    iam.delete_login_profile(UserName="console")
    with pytest.raises(ClientError) as exc:
        iam.get_login_profile(UserName="console")
    assert error_of(exc) == ("NoSuchEntity", "Login Profile for User console cannot be found.")


def test_check_password_for_sign_in() -> None:
    gw = InProcessGateway().start()
    try:
        iam = gw.client("iam")
        iam.create_user(UserName="signer", Path="/people/")
        iam.create_login_profile(UserName="signer", Password="Right-Pa55word")
        principal = gw.run(gw.iam.check_password("signer", "Right-Pa55word"))
        assert principal is not None
        assert (principal.kind, principal.name, principal.arn) == (
            "IAMUser",
            "signer",
            f"arn:aws:iam::{ACCOUNT}:user/people/signer",
        )
        assert gw.run(gw.iam.check_password("signer", "Wrong-Pa55word")) is None
        assert gw.run(gw.iam.check_password("nobody", "Right-Pa55word")) is None
        assert iam.get_user(UserName="signer")["User"]["PasswordLastUsed"]
    finally:
        gw.close()


def test_the_aws_cli(gateway: GatewayProcess) -> None:
    out = json.loads(aws_cli(gateway, "iam", "create-user", "--user-name", "cli-user").stdout)
    assert out["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/cli-user"
    failed = aws_cli(gateway, "iam", "get-user", "--user-name", "cli-nobody", check=False)
    assert failed.returncode != 0
    assert "NoSuchEntity" in failed.stderr
    assert "The user with name cli-nobody cannot be found." in failed.stderr
    me = json.loads(aws_cli(gateway, "sts", "get-caller-identity").stdout)
    assert me == {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
