"""``CreateStudioPresignedUrl`` (emustudio's ``emr-studio`` model): a script gets a one-time URL
that opens an IAM-mode Studio in a browser as the caller, as the console does."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import Users, allow, studio_arn
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, studio_args

OPEN = "elasticmapreduce:CreateStudioPresignedUrl"


def keys_of(gateway: GatewayProcess, user: str) -> dict[str, str]:
    key = gateway.client("iam").create_access_key(UserName=user)["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


@pytest.fixture(scope="module")
def opener(gateway: GatewayProcess, users: Users, studios: dict[str, str]) -> dict[str, str]:
    """A user allowed to open Studio A (and list its Workspaces), not B."""
    name = users.create(
        allow(OPEN, studio_arn(studios["A"])), allow("elasticmapreduce:ListEditors")
    )
    return {"name": name, **keys_of(gateway, name)}


def test_the_url_signs_the_caller_in_once(
    gateway: GatewayProcess, opener: dict[str, str], studios: dict[str, str]
) -> None:
    client = gateway.client(
        "emr-studio",
        aws_access_key_id=opener["aws_access_key_id"],
        aws_secret_access_key=opener["aws_secret_access_key"],
    )
    out = client.create_studio_presigned_url(StudioId=studios["A"])
    url = urlsplit(out["PresignedUrl"])
    browser = Browser(gateway.port)
    assert url.hostname == browser.host(studios["A"]) and url.path == "/federation/handoff"
    remaining = out["ExpirationTime"].timestamp() - time.time()
    assert 240 < remaining <= 300
    landed = browser.get(url.hostname, f"{url.path}?{url.query}")
    assert landed.status == 303 and landed.location == "/"
    home = browser.get(url.hostname, "/")
    assert home.status == 200 and opener["name"] in home.body
    # Used: a second browser with the same URL gets nothing.
    again = Browser(gateway.port).get(url.hostname, f"{url.path}?{url.query}")
    assert again.status == 403 and not again.set_cookies


def test_a_studio_not_allowed_is_access_denied(
    gateway: GatewayProcess, opener: dict[str, str], studios: dict[str, str]
) -> None:
    client = gateway.client(
        "emr-studio",
        aws_access_key_id=opener["aws_access_key_id"],
        aws_secret_access_key=opener["aws_secret_access_key"],
    )
    with pytest.raises(ClientError) as denied:
        client.create_studio_presigned_url(StudioId=studios["B"])
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert (
        f"elasticmapreduce:CreateStudioPresignedUrl on resource: {studio_arn(studios['B'])}"
        in error["Message"]
    )


def test_sso_studios_and_unknown_ones_are_invalid_requests(
    gateway: GatewayProcess, emr: Any, net: StudioNetwork
) -> None:
    sso = emr.create_studio(
        **studio_args(
            net,
            Name="presign-sso",
            AuthMode="SSO",
            UserRole="arn:aws:iam::000000000000:role/EMRStudio_User_Role",
        )
    )["StudioId"]
    client = gateway.client("emr-studio")
    with pytest.raises(ClientError) as sso_error:
        client.create_studio_presigned_url(StudioId=sso)
    assert sso_error.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "IAM Identity Center" in sso_error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        client.create_studio_presigned_url(StudioId="es-" + "Z" * 25)
    assert missing.value.response["Error"]["Code"] == "InvalidRequestException"


def test_cloudtrail_records_the_call_without_the_url(
    gateway: GatewayProcess, opener: dict[str, str], studios: dict[str, str]
) -> None:
    gateway.client(
        "emr-studio",
        aws_access_key_id=opener["aws_access_key_id"],
        aws_secret_access_key=opener["aws_secret_access_key"],
    ).create_studio_presigned_url(StudioId=studios["A"])
    events = gateway.client("cloudtrail").lookup_events(
        LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateStudioPresignedUrl"}
        ]
    )["Events"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["userIdentity"]["userName"] == opener["name"]
    assert record["requestParameters"] == {"studioId": studios["A"]}
    assert record["responseElements"]["presignedUrl"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert "token=" not in events[0]["CloudTrailEvent"]
