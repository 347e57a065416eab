"""AssumeRoleWithSAML over the wire, unsigned as AWS accepts it, with a real signed response."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from tests.auth.saml.test_verify import ATTR, Idp

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    return Idp(tmp_path_factory.mktemp("idp"), "idp")


@pytest.fixture(scope="module")
def trust(gateway: GatewayProcess, idp: Idp) -> tuple[str, str]:
    iam = gateway.client("iam")
    provider = iam.create_saml_provider(Name="TestIdp", SAMLMetadataDocument=idp.metadata())[
        "SAMLProviderArn"
    ]
    role = iam.create_role(
        RoleName="StudioFederated",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider},
                        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                        "Condition": {
                            "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
                        },
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    return provider, role


def assertion(idp: Idp, provider: str, role: str) -> str:
    xml = idp.response(
        identity={
            ATTR + "Role": [f"{role},{provider}"],
            ATTR + "RoleSessionName": ["alice@example.com"],
            ATTR + "PrincipalTag:team": ["data"],
        }
    )
    return base64.b64encode(xml.encode()).decode()


def test_a_federated_user_gets_working_credentials(
    gateway: GatewayProcess, idp: Idp, trust: tuple[str, str]
) -> None:
    provider, role = trust
    sts = gateway.client("sts")
    out = sts.assume_role_with_saml(
        RoleArn=role, PrincipalArn=provider, SAMLAssertion=assertion(idp, provider, role)
    )
    assert out["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/StudioFederated/alice@example.com"
    )
    assert out["Subject"] == "alice@example.com"
    creds = out["Credentials"]
    me = gateway.client(
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"]


def test_a_replayed_or_forged_assertion_is_refused(
    gateway: GatewayProcess, idp: Idp, trust: tuple[str, str], tmp_path: Path
) -> None:
    provider, role = trust
    sts: Any = gateway.client("sts")
    once = assertion(idp, provider, role)
    sts.assume_role_with_saml(RoleArn=role, PrincipalArn=provider, SAMLAssertion=once)
    with pytest.raises(ClientError) as exc:
        sts.assume_role_with_saml(RoleArn=role, PrincipalArn=provider, SAMLAssertion=once)
    assert exc.value.response["Error"]["Code"] == "InvalidIdentityToken"
    forger = Idp(tmp_path, "forger")  # same entity id, another key
    with pytest.raises(ClientError) as exc:
        sts.assume_role_with_saml(
            RoleArn=role, PrincipalArn=provider, SAMLAssertion=assertion(forger, provider, role)
        )
    assert exc.value.response["Error"]["Code"] == "InvalidIdentityToken"
