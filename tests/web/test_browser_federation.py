"""IAM federation in a real browser (Debian's Chromium, through Playwright) against the demo
`emustudio up` sets up: the built-in IdP, the SAML provider and roles, the Demo Studio.

* SP-initiated: the Studio URL sends the browser to the IdP's login; signed in, the IdP's page
  posts to ``/saml`` and the browser lands in the Studio, signed in.
* IdP-initiated: the IdP's portal, choosing a Studio entry that is the console deep link; and
  choosing the role alone, which lands on the list of Studios the role may open.
* A user whose role may not open the Studio gets the readable refusal.

No Workspace is started: no Workspace image is needed. ``/usr/bin/chromium`` is (scripts/setup
installs it); without it these tests fail, never skip.
"""

from __future__ import annotations

import json
import re
from typing import Any

import playwright.sync_api as playwright_api
import pytest
import yaml

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT, studio_arn

expect = playwright_api.expect
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/EmuStudioIdp"
VIEWER = "StudioViewer"


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return {"EMUSTUDIO_DEMO": "true"}


@pytest.fixture(scope="module")
def demo(gateway: GatewayProcess) -> dict[str, str]:
    """The demo Studio; another Studio in the default VPC, "Other"; a role that may open only
    Other, for carol, a user added to the demo's users file (the IdP re-reads it)."""
    emr, iam = gateway.client("emr"), gateway.client("iam")
    [studio] = [s for s in emr.list_studios()["Studios"] if s["Name"] == "Demo"]
    described = emr.describe_studio(StudioId=studio["StudioId"])["Studio"]
    other = emr.create_studio(
        Name="Other",
        AuthMode="IAM",
        VpcId=described["VpcId"],
        SubnetIds=described["SubnetIds"][:1],
        ServiceRole=described["ServiceRole"],
        WorkspaceSecurityGroupId=described["WorkspaceSecurityGroupId"],
        EngineSecurityGroupId=described["EngineSecurityGroupId"],
        DefaultS3Location="s3://emustudio/other",
    )["StudioId"]
    trust = iam.get_role(RoleName="StudioAnalyst")["Role"]["AssumeRolePolicyDocument"]
    viewer = iam.create_role(RoleName=VIEWER, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(
        RoleName=VIEWER,
        PolicyName="other-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "elasticmapreduce:CreateStudioPresignedUrl",
                        "Resource": studio_arn(other),
                    }
                ],
            }
        ),
    )
    path = gateway.data_dir / "idp-users.yaml"
    users = yaml.safe_load(path.read_text())
    deep = deep_link(studio["StudioId"])
    # The portal passes URLs through: alice's group offers the Studio as the console deep link.
    users["groups"]["analysts"]["roles"][0]["studios"].append(deep)
    users["users"]["carol"] = {
        "password": "change-me-carol",
        "roles": [{"role": viewer["Arn"], "provider": PROVIDER}],
    }
    path.write_text(yaml.safe_dump(users))
    return {
        "studio": studio["StudioId"],
        "url": f"http://{studio['StudioId'].lower()}.emrstudio.localhost:{gateway.port}/",
        "deep_link": deep,
        "other": other,
    }


def deep_link(studio_id: str) -> str:
    return f"https://console.aws.amazon.com/emr/home?region=us-east-1#studio/{studio_id}/start"


def sign_in_at_idp(page: Any, gateway: GatewayProcess, user: str, password: str) -> None:
    page.wait_for_url(f"http://localhost:{gateway.port}/idp/login?**")
    page.fill('#idp-login input[name="username"]', user)
    page.fill('#idp-login input[name="password"]', password)
    page.click('#idp-login button[type="submit"]')


def in_the_studio(page: Any, url: str, user: str) -> None:
    """Signed in on the Studio's own page: the user's name and the Workspaces list."""
    page.wait_for_url(url)
    expect(page.locator(".who")).to_have_text(user)
    expect(page.locator(".studio-name")).to_have_text("Demo")
    expect(page.locator("h1")).to_have_text(re.compile(r"^Workspaces\b"))


def test_sp_initiated_sign_in_lands_in_the_studio(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(demo["url"])
    # The Studio sends the browser to its IdpAuthUrl: the built-in IdP's login.
    sign_in_at_idp(page, gateway, "alice", "change-me-alice")
    in_the_studio(page, demo["url"], "alice")
    # The session is the Studio's: opening the URL again needs no IdP.
    page.goto(demo["url"])
    in_the_studio(page, demo["url"], "alice")


def test_idp_initiated_with_the_console_deep_link(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(f"http://localhost:{gateway.port}/idp/portal")
    sign_in_at_idp(page, gateway, "alice", "change-me-alice")
    page.wait_for_url(f"http://localhost:{gateway.port}/idp/portal")
    expect(page.locator("h1")).to_have_text("AWS roles of alice")
    # Both entries of the Studio are offered: its id, and the deep link as given.
    expect(page.locator("form.studio-choice button")).to_have_text(
        [f"Open Studio {demo['studio']}", f"Open Studio {demo['deep_link']}"]
    )
    page.click(f'form.studio-choice:has(input[value="{demo["deep_link"]}"]) button')
    in_the_studio(page, demo["url"], "alice")


def test_idp_initiated_without_a_studio_lists_the_role_s_studios(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(f"http://localhost:{gateway.port}/idp/portal")
    sign_in_at_idp(page, gateway, "alice", "change-me-alice")
    page.click("form.role-choice button")
    # No RelayState: the console's list of the Studios this role may open (Demo, not Other).
    page.wait_for_url(re.compile(rf"http://localhost:{gateway.port}/(saml|console)$"))
    expect(page.locator("h1")).to_have_text(re.compile(r"^EMR Studios\b"))
    expect(page.locator("main")).to_contain_text(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/StudioAnalyst/alice"
    )
    link = page.locator("#studios a")
    expect(link).to_have_text(["Demo"])
    link.click()
    in_the_studio(page, demo["url"], "alice")


def test_a_user_whose_role_may_not_open_the_studio_is_refused(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(demo["url"])
    sign_in_at_idp(page, gateway, "carol", "change-me-carol")
    page.wait_for_url(f"http://localhost:{gateway.port}/saml")
    expect(page.locator("h1")).to_have_text("403: sign-in refused")
    error = page.locator("#error")
    expect(error).to_contain_text("carol may not open this Studio")
    expect(error).to_contain_text("elasticmapreduce:CreateStudioPresignedUrl")
    expect(error).to_contain_text(demo["studio"])
    # No Studio session was made: the Studio still sends the browser to the IdP.
    page.goto(demo["url"])
    page.wait_for_url(f"http://localhost:{gateway.port}/saml")
    expect(page.locator("h1")).to_have_text("403: sign-in refused")
