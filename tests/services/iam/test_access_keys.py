"""Access keys against the real gateway process: their life, signing with them, refusal once
deleted or deactivated, and what a restart keeps (users, keys, unexpired sessions)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from tests.services.iam.support import ACCOUNT, allow, doc, error_of, status_of


@pytest.fixture(scope="module")
def iam(gateway: GatewayProcess) -> Any:
    return gateway.client("iam")


def signed_with(gateway: GatewayProcess, service: str, creds: dict[str, Any]) -> Any:
    return gateway.client(
        service,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
    )


def test_life_of_access_keys(iam: Any) -> None:
    iam.create_user(UserName="keyed")
    first = iam.create_access_key(UserName="keyed")["AccessKey"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", first["AccessKeyId"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", first["SecretAccessKey"])
    assert (first["UserName"], first["Status"]) == ("keyed", "Active")
    second = iam.create_access_key(UserName="keyed")["AccessKey"]
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName="keyed")
    assert error_of(exc) == ("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
    assert status_of(exc) == 409
    listed = iam.list_access_keys(UserName="keyed")["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in listed} == {first["AccessKeyId"], second["AccessKeyId"]}
    assert all("SecretAccessKey" not in k for k in listed)
    iam.update_access_key(UserName="keyed", AccessKeyId=first["AccessKeyId"], Status="Inactive")
    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName="keyed")["AccessKeyMetadata"]
    }
    assert statuses[first["AccessKeyId"]] == "Inactive"
    last = iam.get_access_key_last_used(AccessKeyId=second["AccessKeyId"])
    assert last["UserName"] == "keyed"
    assert last["AccessKeyLastUsed"]["ServiceName"] == "N/A"
    iam.delete_access_key(UserName="keyed", AccessKeyId=first["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        iam.delete_access_key(UserName="keyed", AccessKeyId=first["AccessKeyId"])
    assert error_of(exc) == (
        "NoSuchEntity",
        f"The Access Key with id {first['AccessKeyId']} cannot be found.",
    )
    with pytest.raises(ClientError) as exc:
        iam.update_access_key(UserName="nobody", AccessKeyId=second["AccessKeyId"], Status="Active")
    assert error_of(exc) == ("NoSuchEntity", "The user with name nobody cannot be found.")


def test_a_users_key_signs_requests(gateway: GatewayProcess, iam: Any) -> None:
    iam.create_user(UserName="signer", Path="/team/")
    iam.put_user_policy(
        UserName="signer", PolicyName="self", PolicyDocument=doc(allow("iam:GetUser"))
    )
    key = iam.create_access_key(UserName="signer")["AccessKey"]
    arn = f"arn:aws:iam::{ACCOUNT}:user/team/signer"
    me = signed_with(gateway, "sts", key).get_caller_identity()
    assert (me["Arn"], me["Account"]) == (arn, ACCOUNT)
    assert me["UserId"] == iam.get_user(UserName="signer")["User"]["UserId"]
    assert signed_with(gateway, "iam", key).get_user()["User"]["Arn"] == arn


def test_deleted_and_inactive_keys_are_refused(gateway: GatewayProcess, iam: Any) -> None:
    iam.create_user(UserName="revoked")
    key = iam.create_access_key(UserName="revoked")["AccessKey"]
    sts = signed_with(gateway, "sts", key)
    iam.update_access_key(UserName="revoked", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    assert error_of(exc) == (
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )
    assert status_of(exc) == 403
    iam.delete_access_key(UserName="revoked", AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    assert error_of(exc)[0] == "InvalidClientTokenId"


def test_restart_keeps_users_keys_and_sessions(gateway: GatewayProcess, iam: Any) -> None:
    iam.create_user(UserName="durable")
    key = iam.create_access_key(UserName="durable")["AccessKey"]
    session = gateway.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    gateway.restart()
    iam = gateway.client("iam")
    assert iam.get_user(UserName="durable")["User"]["UserName"] == "durable"
    keys = iam.list_access_keys(UserName="durable")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [key["AccessKeyId"]]
    me = signed_with(gateway, "sts", session).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert signed_with(gateway, "sts", key).get_caller_identity()["Arn"].endswith(":user/durable")
