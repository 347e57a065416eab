"""`emustudio up`'s demo against a real gateway: the built-in IdP with its users file, the SAML
provider and roles, the Demo Studio that sends its sign-in to the IdP; restarts that keep what
the user changed and never duplicate; a deleted demo Studio made again."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from emustudio.cli import main
from emustudio.config import Settings
from emustudio.demo import PACKAGED_USERS
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.pages import Browser
from tests.web.test_sso import sign_in, to_identity_provider

ROOT = Path(__file__).parents[1]
ACCOUNT = "000000000000"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/EmuStudioIdp"
DEMO_ROLES = ("StudioAnalyst", "StudioAdmin", "EMRStudio_Service_Role")


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return {"EMUSTUDIO_DEMO": "true"}


def demo_studios(gw: GatewayProcess) -> list[dict[str, Any]]:
    studios = gw.client("emr").list_studios()["Studios"]
    return [s for s in studios if s["Name"] == "Demo"]


def demo_studio_id(gw: GatewayProcess) -> str:
    [studio] = demo_studios(gw)
    return str(studio["StudioId"])


def studio_arn(studio_id: str) -> str:
    return f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studio_id}"


def demo_policy(gw: GatewayProcess, role: str) -> dict[str, Any]:
    doc = gw.client("iam").get_role_policy(RoleName=role, PolicyName="EmuStudioDemo")
    return dict(doc["PolicyDocument"])


def opens(policy: dict[str, Any]) -> list[str]:
    """The resources the policy lets open a Studio."""
    return [
        s["Resource"]
        for s in policy["Statement"]
        if s["Action"] == "elasticmapreduce:CreateStudioPresignedUrl"
    ]


def counts(gw: GatewayProcess) -> tuple[int, int, list[str]]:
    iam = gw.client("iam")
    providers = [p["Arn"] for p in iam.list_saml_providers()["SAMLProviderList"]]
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"] in DEMO_ROLES]
    return providers.count(PROVIDER), len(demo_studios(gw)), sorted(roles)


def test_the_packaged_users_are_the_documented_example() -> None:
    assert PACKAGED_USERS.read_text() == (ROOT / "examples" / "idp-users.yaml").read_text()


def test_up_turns_the_demo_on_unless_told_not_to(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "EMUSTUDIO_DATA_DIR": str(tmp_path / "data")}
    up = Settings.load(environ, defaults={"demo": True})
    assert up.demo and up.idp_users_file == tmp_path / "data" / "idp-users.yaml"
    off = Settings.load({**environ, "EMUSTUDIO_DEMO": "false"}, defaults={"demo": True})
    assert not off.demo and off.idp_users_file is None
    # The setting's own default is off: library users and test gateways start empty.
    assert not Settings.load(environ).demo
    assert GatewayProcess(tmp_path).environ()["EMUSTUDIO_DEMO"] == "false"
    # A users file of one's own stays the IdP's users with the demo on.
    mine = Settings.load({**environ, "EMUSTUDIO_IDP_USERS_FILE": "/etc/users.yaml"}, defaults={})
    assert mine.idp_users_file == Path("/etc/users.yaml")


def test_the_up_command_reads_demo_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`emustudio up` has the demo on; --no-demo wins over the environment, --demo too."""
    import emustudio.cli as cli

    seen: list[bool] = []

    async def record(settings: Settings) -> int:  # stands in for the gateway's run
        seen.append(settings.demo)
        return 0

    monkeypatch.setattr(cli, "_up", record)
    for name in [n for n in os.environ if n.startswith("EMUSTUDIO_")]:
        monkeypatch.delenv(name)
    up = ["up", "--data-dir", str(tmp_path)]
    assert main(up) == 0
    monkeypatch.setenv("EMUSTUDIO_DEMO", "true")
    assert main([*up, "--no-demo"]) == 0
    monkeypatch.setenv("EMUSTUDIO_DEMO", "false")
    assert main(up) == 0
    assert main([*up, "--demo"]) == 0
    assert seen == [True, False, False, True]


def test_the_idp_provider_and_roles_exist(gateway: GatewayProcess) -> None:
    iam = gateway.client("iam")
    metadata = iam.get_saml_provider(SAMLProviderArn=PROVIDER)["SAMLMetadataDocument"]
    # The built-in IdP's own metadata: the same entity and signing certificate it serves.
    served = Browser(gateway.port).get("localhost", "/idp/metadata").body
    assert f'entityID="http://localhost:{gateway.port}/idp"' in metadata

    def certificate(xml: str) -> str:
        found = re.search(r"<(?:\w+:)?X509Certificate>([^<]+)<", xml)
        assert found, xml
        return "".join(found.group(1).split())

    assert certificate(metadata) == certificate(served)
    studio_id = demo_studio_id(gateway)
    for role in ("StudioAnalyst", "StudioAdmin"):
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        [statement] = trust["Statement"]
        assert statement["Principal"] == {"Federated": PROVIDER}
        assert sorted(statement["Action"]) == [
            "sts:AssumeRoleWithSAML",
            "sts:SetSourceIdentity",
            "sts:TagSession",
        ]
        assert statement["Condition"] == {
            "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
        }
        assert opens(demo_policy(gateway, role)) == [studio_arn(studio_id)]
    service = iam.get_role(RoleName="EMRStudio_Service_Role")["Role"]
    assert service["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "elasticmapreduce.amazonaws.com"
    }
    # What each role may do, as IAM's simulator decides it.
    analyst = iam.get_role(RoleName="StudioAnalyst")["Role"]["Arn"]
    admin = iam.get_role(RoleName="StudioAdmin")["Role"]["Arn"]

    def decision(role_arn: str, action: str, resource: str = "*") -> str:
        result = iam.simulate_principal_policy(
            PolicySourceArn=role_arn, ActionNames=[action], ResourceArns=[resource]
        )["EvaluationResults"][0]
        return str(result["EvalDecision"])

    assert decision(analyst, "elasticmapreduce:CreateEditor") == "allowed"
    assert decision(analyst, "elasticmapreduce:StartEditor") == "allowed"
    assert decision(analyst, "elasticmapreduce:DeleteStudio", studio_arn(studio_id)) != "allowed"
    assert decision(admin, "elasticmapreduce:DeleteStudio", studio_arn(studio_id)) == "allowed"


def test_the_demo_studio_signs_in_through_the_idp(gateway: GatewayProcess) -> None:
    ec2 = gateway.client("ec2")
    studio = gateway.client("emr").describe_studio(StudioId=demo_studio_id(gateway))["Studio"]
    assert studio["AuthMode"] == "IAM"
    assert studio["IdpAuthUrl"] == f"http://localhost:{gateway.port}/idp/sso"
    assert studio["IdpRelayStateParameterName"] == "RelayState"
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert studio["VpcId"] == vpc["VpcId"]
    default_subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert sorted(studio["SubnetIds"]) == sorted(s["SubnetId"] for s in default_subnets["Subnets"])
    # Opening it: its sign-in goes to the built-in IdP, which will send the browser back here.
    browser = Browser(gateway.port)
    signin = browser.get(browser.host(studio["StudioId"]), "/signin")
    assert signin.status == 302, signin.body
    target = urlsplit(signin.location)
    assert (target.hostname, target.port, target.path) == ("localhost", gateway.port, "/idp/sso")
    assert parse_qs(target.query)["RelayState"] == [f"{studio['Url']}/"]
    to_login = browser.get("localhost", f"{target.path}?{target.query}")
    assert to_login.status == 302 and to_login.location.startswith("/idp/login?")


def test_the_users_file_is_a_private_copy_naming_the_studio(gateway: GatewayProcess) -> None:
    path = gateway.data_dir / "idp-users.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = yaml.safe_load(path.read_text())
    studio_id = demo_studio_id(gateway)
    assert users["groups"]["analysts"]["roles"][0]["studios"] == [studio_id]
    assert users["users"]["bob"]["roles"][0]["studios"] == [studio_id]
    assert users["users"]["alice"]["password"] == "change-me-alice"
    # Where to go, as `emustudio up` prints it.
    assert (
        f"Demo Studio:       http://{studio_id}.emrstudio.localhost:{gateway.port}/"
        " — sign in as alice / change-me-alice" in gateway.log()
    )


def sso_studios(gw: GatewayProcess) -> list[str]:
    studios = gw.client("emr").list_studios()["Studios"]
    return [s["StudioId"] for s in studios if s["Name"] == "Demo (Identity Center)"]


def test_the_identity_center_studio_lets_alice_in_and_not_bob(gateway: GatewayProcess) -> None:
    [studio_id] = sso_studios(gateway)
    emr = gateway.client("emr")
    assert emr.describe_studio(StudioId=studio_id)["Studio"]["AuthMode"] == "SSO"
    [mapping] = emr.list_studio_session_mappings(StudioId=studio_id)["SessionMappings"]
    assert (mapping["IdentityType"], mapping["IdentityName"]) == ("GROUP", "analysts")
    home = sign_in(Browser(gateway.port), studio_id, "alice", "change-me-alice")
    assert "alice" in home.body and "Workspaces" in home.body
    browser = Browser(gateway.port)
    refused = browser.post(
        "localhost", "/sso/saml", to_identity_provider(browser, studio_id, "bob", "change-me-bob")
    )
    assert refused.status == 403 and "bob is not assigned" in refused.body
    assert f"Identity Center:   http://{studio_id}.emrstudio.localhost" in gateway.log()


def test_a_restart_keeps_changes_and_makes_no_duplicates(gateway: GatewayProcess) -> None:
    before = counts(gateway)
    assert before == (1, 1, sorted(DEMO_ROLES))
    studio_id = demo_studio_id(gateway)
    path = gateway.data_dir / "idp-users.yaml"
    edited = path.read_text().replace("change-me-alice", "alices-own-password")
    path.write_text(edited)
    iam = gateway.client("iam")
    mine = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "elasticmapreduce:*", "Resource": "*"}],
        }
    )
    iam.put_role_policy(RoleName="StudioAnalyst", PolicyName="EmuStudioDemo", PolicyDocument=mine)
    sso_before = sso_studios(gateway)
    gateway.restart()
    assert counts(gateway) == before
    assert sso_studios(gateway) == sso_before
    [sso_id] = sso_before
    assert (
        len(gateway.client("emr").list_studio_session_mappings(StudioId=sso_id)["SessionMappings"])
        == 1
    )
    assert demo_studio_id(gateway) == studio_id
    assert path.read_text() == edited
    assert opens(demo_policy(gateway, "StudioAnalyst")) == []  # the user's version, kept
    assert "sign in as alice / alices-own-password" in gateway.log()


def test_a_deleted_demo_studio_comes_back_everywhere(gateway: GatewayProcess) -> None:
    old = demo_studio_id(gateway)
    gateway.client("emr").delete_studio(StudioId=old)
    gateway.restart()
    new = demo_studio_id(gateway)
    assert new != old
    assert counts(gateway)[:2] == (1, 1)
    # The demo's policies and its users file follow the new Studio.
    for role in ("StudioAnalyst", "StudioAdmin"):
        assert opens(demo_policy(gateway, role)) == [studio_arn(new)]
    text = (gateway.data_dir / "idp-users.yaml").read_text()
    assert old not in text and text.count(new) == 2
