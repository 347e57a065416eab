"""An identity administrator manages Identity Center users, groups and memberships."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.services.identitystore import identity_store_id
from emustudio.testing.gateway import GatewayProcess, aws_cli

ACCOUNT = "000000000000"
STORE = identity_store_id(ACCOUNT)
ID = re.compile(r"[0-9a-f]{10}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")
OTHER_STORE = "d-ffffffffff"
MISSING_ID = f"{STORE[2:]}-00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def ids(gateway: GatewayProcess) -> Any:
    return gateway.client("identitystore")


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    """A gateway of its own: its users' names (alice, bob, carol) are the session mappings'."""
    return {}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    return dict(exc.value.response["Error"]) | {
        k: v for k, v in exc.value.response.items() if k in ("ResourceType", "ResourceId")
    }


def make_user(ids: Any, name: str, **extra: Any) -> str:
    user_id: str = ids.create_user(
        IdentityStoreId=STORE,
        UserName=name,
        DisplayName=extra.pop("DisplayName", name.title()),
        Name={"GivenName": name.title(), "FamilyName": "Tester"},
        **extra,
    )["UserId"]
    return user_id


def make_group(ids: Any, name: str, **extra: Any) -> str:
    group_id: str = ids.create_group(IdentityStoreId=STORE, DisplayName=name, **extra)["GroupId"]
    return group_id


def test_store_id_is_stable_and_aws_shaped() -> None:
    assert re.fullmatch(r"d-[0-9a-f]{10}", STORE)
    assert identity_store_id(ACCOUNT) == STORE


def test_the_one_store(ids: Any) -> None:
    arn = f"arn:aws:identitystore::{ACCOUNT}:identitystore/{STORE}"
    listed = ids.list_identity_stores()["IdentityStores"]
    assert listed == [{"IdentityStoreId": STORE, "IdentityStoreArn": arn}]
    described = ids.describe_identity_store(IdentityStoreId=STORE)
    assert (described["IdentityStoreId"], described["IdentityStoreArn"]) == (STORE, arn)
    with pytest.raises(ClientError) as exc:
        ids.describe_identity_store(IdentityStoreId=OTHER_STORE)
    assert error_of(exc)["ResourceType"] == "IDENTITY_STORE"


def test_user_life(ids: Any) -> None:
    created = ids.create_user(
        IdentityStoreId=STORE,
        UserName="alice",
        DisplayName="Alice Doe",
        Name={"GivenName": "Alice", "FamilyName": "Doe"},
        Emails=[{"Value": "alice@example.com", "Type": "work", "Primary": True}],
    )
    user_id = created["UserId"]
    assert created["IdentityStoreId"] == STORE
    assert ID.fullmatch(user_id) and user_id.startswith(STORE[2:] + "-")

    user = ids.describe_user(IdentityStoreId=STORE, UserId=user_id)
    assert user["UserName"] == "alice"
    assert user["DisplayName"] == "Alice Doe"
    assert user["Name"] == {"GivenName": "Alice", "FamilyName": "Doe"}
    assert user["Emails"][0]["Value"] == "alice@example.com"
    assert user["UserArn"] == f"arn:aws:identitystore:::user/{user_id}"
    assert user["Revision"] == "1"
    # By ARN too, and by the store's ARN.
    by_arn = ids.describe_user(
        IdentityStoreId=f"arn:aws:identitystore::{ACCOUNT}:identitystore/{STORE}",
        UserId=user["UserArn"],
    )
    assert by_arn["UserId"] == user_id

    ids.update_user(
        IdentityStoreId=STORE,
        UserId=user_id,
        Operations=[
            {"AttributePath": "displayName", "AttributeValue": "Alice D."},
            {"AttributePath": "name.givenName", "AttributeValue": "Alicia"},
            {"AttributePath": "title", "AttributeValue": "Engineer"},
            {"AttributePath": "emails"},
        ],
    )
    user = ids.describe_user(IdentityStoreId=STORE, UserId=user_id)
    assert user["DisplayName"] == "Alice D."
    assert user["Name"] == {"GivenName": "Alicia", "FamilyName": "Doe"}
    assert user["Title"] == "Engineer"
    assert "Emails" not in user
    assert user["Revision"] == "2"

    with pytest.raises(ClientError) as exc:
        ids.update_user(
            IdentityStoreId=STORE,
            UserId=user_id,
            Revision="1",
            Operations=[{"AttributePath": "title", "AttributeValue": "Lead"}],
        )
    assert error_of(exc)["Code"] == "ConflictException"

    ids.delete_user(IdentityStoreId=STORE, UserId=user_id)
    with pytest.raises(ClientError) as exc:
        ids.describe_user(IdentityStoreId=STORE, UserId=user_id)
    err = error_of(exc)
    assert err["Code"] == "ResourceNotFoundException"
    assert (err["ResourceType"], err["ResourceId"]) == ("USER", user_id)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_user_names_are_unique(ids: Any) -> None:
    make_user(ids, "bob")
    for name in ("bob", "BOB"):
        with pytest.raises(ClientError) as exc:
            make_user(ids, name)
        assert (error_of(exc)["Code"], error_of(exc)["Message"]) == (
            "ConflictException",
            "Duplicate UserName",
        )
    other = make_user(ids, "bobby")
    with pytest.raises(ClientError) as exc:
        ids.update_user(
            IdentityStoreId=STORE,
            UserId=other,
            Operations=[{"AttributePath": "userName", "AttributeValue": "bob"}],
        )
    assert error_of(exc)["Code"] == "ConflictException"


def test_find_users(ids: Any) -> None:
    carol = make_user(ids, "carol", Emails=[{"Value": "carol@example.com"}])
    listed = ids.list_users(
        IdentityStoreId=STORE, Filters=[{"AttributePath": "UserName", "AttributeValue": "carol"}]
    )["Users"]
    assert [u["UserId"] for u in listed] == [carol]
    assert (
        ids.list_users(
            IdentityStoreId=STORE, Filters=[{"AttributePath": "UserName", "AttributeValue": "zed"}]
        )["Users"]
        == []
    )
    with pytest.raises(ClientError) as exc:
        ids.list_users(
            IdentityStoreId=STORE, Filters=[{"AttributePath": "Title", "AttributeValue": "x"}]
        )
    assert error_of(exc)["Code"] == "ValidationException"

    got = ids.get_user_id(
        IdentityStoreId=STORE,
        AlternateIdentifier={
            "UniqueAttribute": {"AttributePath": "userName", "AttributeValue": "carol"}
        },
    )
    got.pop("ResponseMetadata")
    assert got == {"IdentityStoreId": STORE, "UserId": carol}
    by_email = ids.get_user_id(
        IdentityStoreId=STORE,
        AlternateIdentifier={
            "UniqueAttribute": {
                "AttributePath": "emails.value",
                "AttributeValue": "carol@example.com",
            }
        },
    )
    assert by_email["UserId"] == carol
    for alternate in (
        {"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": "nobody"}},
        {"ExternalId": {"Issuer": "okta", "Id": "123"}},
    ):
        with pytest.raises(ClientError) as exc:
            ids.get_user_id(IdentityStoreId=STORE, AlternateIdentifier=alternate)
        assert error_of(exc)["Code"] == "ResourceNotFoundException"


def test_group_life(ids: Any) -> None:
    group_id = make_group(ids, "analysts", Description="Data analysts")
    assert ID.fullmatch(group_id)
    group = ids.describe_group(IdentityStoreId=STORE, GroupId=group_id)
    assert (group["DisplayName"], group["Description"]) == ("analysts", "Data analysts")
    assert group["GroupArn"] == f"arn:aws:identitystore:::group/{group_id}"

    with pytest.raises(ClientError) as exc:
        make_group(ids, "Analysts")
    assert (error_of(exc)["Code"], error_of(exc)["Message"]) == (
        "ConflictException",
        "Duplicate GroupDisplayName",
    )
    ids.update_group(
        IdentityStoreId=STORE,
        GroupId=group_id,
        Operations=[{"AttributePath": "description", "AttributeValue": "Analysts of data"}],
    )
    group = ids.describe_group(IdentityStoreId=STORE, GroupId=group_id)
    assert (group["Description"], group["Revision"]) == ("Analysts of data", "2")
    with pytest.raises(ClientError) as exc:
        ids.update_group(
            IdentityStoreId=STORE,
            GroupId=group_id,
            Operations=[{"AttributePath": "colour", "AttributeValue": "red"}],
        )
    assert error_of(exc)["Code"] == "ValidationException"

    listed = ids.list_groups(
        IdentityStoreId=STORE,
        Filters=[{"AttributePath": "DisplayName", "AttributeValue": "analysts"}],
    )["Groups"]
    assert [g["GroupId"] for g in listed] == [group_id]
    got = ids.get_group_id(
        IdentityStoreId=STORE,
        AlternateIdentifier={
            "UniqueAttribute": {"AttributePath": "displayName", "AttributeValue": "analysts"}
        },
    )
    assert got["GroupId"] == group_id

    ids.delete_group(IdentityStoreId=STORE, GroupId=group_id)
    with pytest.raises(ClientError) as exc:
        ids.describe_group(IdentityStoreId=STORE, GroupId=group_id)
    err = error_of(exc)
    assert (err["Code"], err["ResourceType"]) == ("ResourceNotFoundException", "GROUP")


def test_memberships(ids: Any) -> None:
    dave, erin = make_user(ids, "dave"), make_user(ids, "erin")
    eng, ops = make_group(ids, "engineers"), make_group(ids, "operators")
    created = ids.create_group_membership(
        IdentityStoreId=STORE, GroupId=eng, MemberId={"UserId": dave}
    )
    membership = created["MembershipId"]
    assert ID.fullmatch(membership)
    assert created["MembershipArn"] == f"arn:aws:identitystore:::membership/{membership}"
    ids.create_group_membership(IdentityStoreId=STORE, GroupId=eng, MemberId={"UserId": erin})
    ids.create_group_membership(IdentityStoreId=STORE, GroupId=ops, MemberId={"UserId": dave})
    with pytest.raises(ClientError) as exc:
        ids.create_group_membership(IdentityStoreId=STORE, GroupId=eng, MemberId={"UserId": dave})
    assert error_of(exc)["Code"] == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ids.create_group_membership(
            IdentityStoreId=STORE, GroupId=eng, MemberId={"UserId": MISSING_ID}
        )
    assert error_of(exc)["ResourceType"] == "USER"

    members = ids.list_group_memberships(IdentityStoreId=STORE, GroupId=eng)["GroupMemberships"]
    assert sorted(m["MemberId"]["UserId"] for m in members) == sorted([dave, erin])
    assert all(m["GroupId"] == eng and m["IdentityStoreId"] == STORE for m in members)
    of_dave = ids.list_group_memberships_for_member(
        IdentityStoreId=STORE, MemberId={"UserId": dave}
    )["GroupMemberships"]
    assert sorted(m["GroupId"] for m in of_dave) == sorted([eng, ops])

    results = ids.is_member_in_groups(
        IdentityStoreId=STORE, MemberId={"UserId": erin}, GroupIds=[eng, ops]
    )["Results"]
    assert {r["GroupId"]: r["MembershipExists"] for r in results} == {eng: True, ops: False}
    described = ids.describe_group_membership(IdentityStoreId=STORE, MembershipId=membership)
    assert (described["GroupId"], described["MemberId"]) == (eng, {"UserId": dave})
    assert (
        ids.get_group_membership_id(IdentityStoreId=STORE, GroupId=eng, MemberId={"UserId": dave})[
            "MembershipId"
        ]
        == membership
    )

    ids.delete_group_membership(IdentityStoreId=STORE, MembershipId=membership)
    with pytest.raises(ClientError) as exc:
        ids.delete_group_membership(IdentityStoreId=STORE, MembershipId=membership)
    assert error_of(exc)["ResourceType"] == "GROUP_MEMBERSHIP"
    with pytest.raises(ClientError) as exc:
        ids.get_group_membership_id(IdentityStoreId=STORE, GroupId=eng, MemberId={"UserId": dave})
    assert error_of(exc)["Code"] == "ResourceNotFoundException"

    # Deleting a user or a group takes its memberships with it.
    ids.delete_user(IdentityStoreId=STORE, UserId=erin)
    assert ids.list_group_memberships(IdentityStoreId=STORE, GroupId=eng)["GroupMemberships"] == []
    ids.delete_group(IdentityStoreId=STORE, GroupId=ops)
    assert (
        ids.list_group_memberships_for_member(IdentityStoreId=STORE, MemberId={"UserId": dave})[
            "GroupMemberships"
        ]
        == []
    )


def test_pagination(ids: Any) -> None:
    made = [make_group(ids, f"page-group-{i}") for i in range(5)]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"IdentityStoreId": STORE, "MaxResults": 2}
    pages = 0
    while True:
        page = ids.list_groups(**kwargs)
        pages += 1
        assert len(page["Groups"]) <= 2
        seen += [g["GroupId"] for g in page["Groups"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    assert pages >= 3
    paginated = [
        g["GroupId"]
        for p in ids.get_paginator("list_groups").paginate(
            IdentityStoreId=STORE, PaginationConfig={"PageSize": 3}
        )
        for g in p["Groups"]
    ]
    assert paginated == seen

    token = ids.list_groups(IdentityStoreId=STORE, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as exc:  # a token of another call
        ids.list_users(IdentityStoreId=STORE, NextToken=token)
    assert error_of(exc)["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ids.list_groups(IdentityStoreId=STORE, NextToken="garbage")
    assert error_of(exc)["Code"] == "ValidationException"


def test_errors(ids: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ids.list_users(IdentityStoreId=OTHER_STORE)
    err = error_of(exc)
    assert (err["Code"], err["ResourceType"], err["ResourceId"]) == (
        "ResourceNotFoundException",
        "IDENTITY_STORE",
        OTHER_STORE,
    )
    with pytest.raises(ClientError) as exc:
        ids.describe_user(IdentityStoreId=STORE, UserId=MISSING_ID)
    assert error_of(exc)["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ids.describe_user(IdentityStoreId=STORE, UserId="not-an-id")
    assert error_of(exc)["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ids.create_user(IdentityStoreId=STORE, DisplayName="No Name")
    assert error_of(exc)["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ids.create_user(IdentityStoreId=STORE, UserName="Administrator")
    assert error_of(exc)["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ids.create_group(IdentityStoreId=STORE)
    assert error_of(exc)["Code"] == "ValidationException"


def test_aws_cli(gateway: GatewayProcess, ids: Any) -> None:
    frank = make_user(ids, "frank")
    out = aws_cli(
        gateway,
        "identitystore",
        "get-user-id",
        "--identity-store-id",
        STORE,
        "--alternate-identifier",
        json.dumps({"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": "frank"}}),
    )
    assert json.loads(out.stdout) == {"UserId": frank, "IdentityStoreId": STORE}
