"""An identity engineer maps Identity Center users and groups to an SSO-mode Studio."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import identity_store_of
from emustudio.testing.vpc import StudioNetwork, studio_args

POLICY = "arn:aws:iam::000000000000:policy/EMRStudio_Basic"
OTHER_POLICY = "arn:aws:iam::000000000000:policy/EMRStudio_Advanced"
UNKNOWN_ID = "9067729b3b-07e9b8f2-1b2c-4d5e-8f90-1234567890ab"


@pytest.fixture(scope="module")
def directory(gateway: GatewayProcess) -> dict[str, str]:
    """The Identity Center users and groups the mappings name, made with the Identity Store API."""
    ids = gateway.client("identitystore")
    store = identity_store_of(gateway)
    made = {}
    for user in ("alice", "bob", "carol"):
        made[user] = ids.create_user(
            IdentityStoreId=store,
            UserName=user,
            DisplayName=user.title(),
            Name={"GivenName": user.title(), "FamilyName": "Tester"},
        )["UserId"]
    made["data-engineers"] = ids.create_group(IdentityStoreId=store, DisplayName="data-engineers")[
        "GroupId"
    ]
    return made


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


@pytest.fixture
def sso_studio(emr: Any, network: StudioNetwork) -> Any:
    studio_id = emr.create_studio(
        **studio_args(network, AuthMode="SSO", UserRole="arn:aws:iam::000000000000:role/User")
    )["StudioId"]
    yield studio_id
    with contextlib.suppress(ClientError):  # a test may have deleted it
        emr.delete_studio(StudioId=studio_id)


def test_mapping_life(emr: Any, sso_studio: str, directory: dict[str, str]) -> None:
    user_id = directory["carol"]
    emr.create_studio_session_mapping(
        StudioId=sso_studio, IdentityId=user_id, IdentityType="USER", SessionPolicyArn=POLICY
    )
    emr.create_studio_session_mapping(
        StudioId=sso_studio,
        IdentityName="data-engineers",
        IdentityType="GROUP",
        SessionPolicyArn=POLICY,
    )
    got = emr.get_studio_session_mapping(
        StudioId=sso_studio, IdentityId=user_id, IdentityType="USER"
    )
    mapping = got["SessionMapping"]
    assert (mapping["StudioId"], mapping["IdentityId"], mapping["IdentityType"]) == (
        sso_studio,
        user_id,
        "USER",
    )
    assert mapping["SessionPolicyArn"] == POLICY
    assert mapping["CreationTime"] == mapping["LastModifiedTime"]

    assert mapping["IdentityName"] == "carol"

    group = emr.get_studio_session_mapping(
        StudioId=sso_studio, IdentityName="data-engineers", IdentityType="GROUP"
    )["SessionMapping"]
    assert group["IdentityName"] == "data-engineers"
    assert group["IdentityId"] == directory["data-engineers"]

    emr.update_studio_session_mapping(
        StudioId=sso_studio, IdentityId=user_id, IdentityType="USER", SessionPolicyArn=OTHER_POLICY
    )
    mapping = emr.get_studio_session_mapping(
        StudioId=sso_studio, IdentityId=user_id, IdentityType="USER"
    )["SessionMapping"]
    assert mapping["SessionPolicyArn"] == OTHER_POLICY
    assert mapping["LastModifiedTime"] >= mapping["CreationTime"]

    listed = emr.list_studio_session_mappings(StudioId=sso_studio)["SessionMappings"]
    assert sorted(m["IdentityType"] for m in listed) == ["GROUP", "USER"]
    users = emr.list_studio_session_mappings(StudioId=sso_studio, IdentityType="USER")[
        "SessionMappings"
    ]
    assert [m["IdentityId"] for m in users] == [user_id]

    emr.delete_studio_session_mapping(StudioId=sso_studio, IdentityId=user_id, IdentityType="USER")
    with pytest.raises(ClientError) as exc:
        emr.delete_studio_session_mapping(
            StudioId=sso_studio, IdentityId=user_id, IdentityType="USER"
        )
    assert error_of(exc) == ("InvalidRequestException", "Studio session mapping does not exist.")
    with pytest.raises(ClientError) as exc:
        emr.get_studio_session_mapping(StudioId=sso_studio, IdentityId=user_id, IdentityType="USER")
    assert error_of(exc) == ("InvalidRequestException", "Studio session mapping does not exist.")


def test_exactly_one_of_identity_id_and_name(
    emr: Any, sso_studio: str, directory: dict[str, str]
) -> None:
    for identity in ({}, {"IdentityId": directory["alice"], "IdentityName": "alice"}):
        with pytest.raises(ClientError) as exc:
            emr.create_studio_session_mapping(
                StudioId=sso_studio, IdentityType="USER", SessionPolicyArn=POLICY, **identity
            )
        assert error_of(exc) == (
            "InvalidRequestException",
            "Either IdentityName or IdentityId must be specified, but not both.",
        )
    assert emr.list_studio_session_mappings(StudioId=sso_studio)["SessionMappings"] == []


def test_duplicate_and_bad_arguments(emr: Any, sso_studio: str, directory: dict[str, str]) -> None:
    emr.create_studio_session_mapping(
        StudioId=sso_studio, IdentityName="alice", IdentityType="USER", SessionPolicyArn=POLICY
    )
    with pytest.raises(ClientError) as exc:
        emr.create_studio_session_mapping(
            StudioId=sso_studio, IdentityName="alice", IdentityType="USER", SessionPolicyArn=POLICY
        )
    assert error_of(exc) == ("InvalidRequestException", "Studio session mapping already exists.")
    with pytest.raises(ClientError) as exc:
        emr.create_studio_session_mapping(
            StudioId=sso_studio,
            IdentityName="bob",
            IdentityType="USER",
            SessionPolicyArn="not-an-arn",
        )
    assert error_of(exc)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        emr.create_studio_session_mapping(
            StudioId=sso_studio, IdentityName="bob", IdentityType="ROBOT", SessionPolicyArn=POLICY
        )
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        emr.create_studio_session_mapping(
            StudioId="es-" + "Z" * 25,
            IdentityName="bob",
            IdentityType="USER",
            SessionPolicyArn=POLICY,
        )
    assert error_of(exc) == ("InvalidRequestException", "Studio does not exist")


def test_iam_mode_studios_take_no_mappings(
    emr: Any, network: StudioNetwork, directory: dict[str, str]
) -> None:
    studio_id = emr.create_studio(**studio_args(network))["StudioId"]
    with pytest.raises(ClientError) as exc:
        emr.create_studio_session_mapping(
            StudioId=studio_id, IdentityName="alice", IdentityType="USER", SessionPolicyArn=POLICY
        )
    assert error_of(exc)[0] == "InvalidRequestException"
    emr.delete_studio(StudioId=studio_id)


def test_deleting_a_studio_deletes_its_mappings(
    emr: Any, network: StudioNetwork, directory: dict[str, str]
) -> None:
    studio_id = emr.create_studio(
        **studio_args(network, AuthMode="SSO", UserRole="arn:aws:iam::000000000000:role/User")
    )["StudioId"]
    emr.create_studio_session_mapping(
        StudioId=studio_id, IdentityName="alice", IdentityType="USER", SessionPolicyArn=POLICY
    )
    emr.delete_studio(StudioId=studio_id)
    remaining = emr.list_studio_session_mappings()["SessionMappings"]
    assert studio_id not in {m["StudioId"] for m in remaining}


def test_unknown_identities_are_refused(
    gateway: GatewayProcess, emr: Any, sso_studio: str, directory: dict[str, str]
) -> None:
    refused = [
        ({"IdentityId": UNKNOWN_ID}, "USER", f"User with IdentityId '{UNKNOWN_ID}'"),
        ({"IdentityName": "mallory"}, "USER", "User with IdentityName 'mallory'"),
        ({"IdentityName": "no-such-group"}, "GROUP", "Group with IdentityName 'no-such-group'"),
        # A user's id is not a group's.
        (
            {"IdentityId": directory["alice"]},
            "GROUP",
            f"Group with IdentityId '{directory['alice']}'",
        ),
    ]
    for identity, identity_type, named in refused:
        with pytest.raises(ClientError) as exc:
            emr.create_studio_session_mapping(
                StudioId=sso_studio,
                IdentityType=identity_type,
                SessionPolicyArn=POLICY,
                **identity,
            )
        assert error_of(exc) == (
            "InvalidRequestException",
            f"{named} does not exist in identity store {identity_store_of(gateway)}.",
        )
    assert emr.list_studio_session_mappings(StudioId=sso_studio)["SessionMappings"] == []


def test_a_mapping_by_name_resolves_the_id(
    emr: Any, sso_studio: str, directory: dict[str, str]
) -> None:
    emr.create_studio_session_mapping(
        StudioId=sso_studio, IdentityName="bob", IdentityType="USER", SessionPolicyArn=POLICY
    )
    mapping = emr.get_studio_session_mapping(
        StudioId=sso_studio, IdentityId=directory["bob"], IdentityType="USER"
    )["SessionMapping"]
    assert (mapping["IdentityId"], mapping["IdentityName"]) == (directory["bob"], "bob")
