"""The gateway's built-in SAML IdP (``/idp/``) against a real gateway: its metadata registered
with IAM, a login, the portal's auto-post to ``/saml``, the handoff into the Studio; SP-initiated
``/idp/sso``; a wrong password.
"""

from __future__ import annotations

import html
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import allow, studio_arn
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, studio_args

OPEN = "elasticmapreduce:CreateStudioPresignedUrl"
LIST = ["elasticmapreduce:ListEditors", "elasticmapreduce:DescribeEditor"]
PASSWORD = "Idp-Password-7"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idp-users") / "users.yaml"


@pytest.fixture(scope="module")
def gateway_env(users_file: Path) -> dict[str, str]:
    return {"EMUSTUDIO_IDP_USERS_FILE": str(users_file)}


@pytest.fixture(scope="module")
def setup(
    gateway: GatewayProcess, users_file: Path, emr: Any, net: StudioNetwork
) -> dict[str, str]:
    """IAM trusts the IdP's metadata; a role may open one Studio; the users file names it."""
    browser = Browser(gateway.port)
    metadata = browser.get("localhost", "/idp/metadata")
    assert metadata.status == 200, metadata.body
    assert f'entityID="http://localhost:{gateway.port}/idp"' in metadata.body
    iam = gateway.client("iam")
    provider = iam.create_saml_provider(Name="BuiltinIdp", SAMLMetadataDocument=metadata.body)[
        "SAMLProviderArn"
    ]
    studio_id = emr.create_studio(
        **studio_args(net, Name="idp-studio", IdpAuthUrl=f"http://localhost:{gateway.port}/idp/sso")
    )["StudioId"]
    role = iam.create_role(
        RoleName="IdpStudioUser",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider},
                        # PrincipalTag attributes are session tags: sts:TagSession too.
                        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                        "Condition": {
                            "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
                        },
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="IdpStudioUser",
        PolicyName="studio",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [allow(OPEN, studio_arn(studio_id)), allow(LIST)],
            }
        ),
    )
    users_file.write_text(
        yaml.safe_dump(
            {
                "groups": {
                    "analysts": {
                        "roles": [{"role": role, "provider": provider, "studios": [studio_id]}]
                    }
                },
                "users": {
                    "carol": {
                        "password": PASSWORD,
                        "groups": ["analysts"],
                        "session_duration": 3600,
                        "tags": {"team": "data"},
                    }
                },
            }
        )
    )
    return {"provider": provider, "role": role, "studio": studio_id}


def log_in(browser: Browser, password: str = PASSWORD, next_url: str = "") -> Any:
    page = browser.get("localhost", "/idp/login" + (f"?{urlencode({'next': next_url})}"))
    assert page.status == 200, page.body
    form = {"_xsrf": page.xsrf(), "username": "carol", "password": password}
    if next_url:
        form["next"] = next_url
    return browser.post("localhost", "/idp/login", form)


def auto_post(page: Any) -> tuple[str, dict[str, str]]:
    """The auto-submitting form's action and fields, as a browser would post them."""
    assert page.status == 200, page.body
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', page.body)
    assert action
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', page.body)
    }
    assert 'document.getElementById("saml-post").submit()' in page.body
    return html.unescape(action.group(1)), fields


def land(browser: Browser, gateway: GatewayProcess, page: Any, studio_id: str) -> None:
    action, fields = auto_post(page)
    assert action == f"http://localhost:{gateway.port}/saml"
    posted = browser.post("localhost", "/saml", fields)
    assert posted.status == 303, posted.body
    url = urlsplit(posted.location)
    assert url.hostname == browser.host(studio_id) and url.path == "/federation/handoff"
    landed = browser.get(browser.host(studio_id), f"{url.path}?{url.query}")
    assert landed.status == 303 and landed.location == "/"
    home = browser.get(browser.host(studio_id), "/")
    assert home.status == 200, home.body
    assert "Workspaces" in home.body and "carol" in home.body


def test_metadata_key_is_private(gateway: GatewayProcess, setup: dict[str, str]) -> None:
    key = gateway.data_dir / "idp-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (gateway.data_dir / "idp-cert.pem").exists()


def test_portal_signs_in_to_the_studio(gateway: GatewayProcess, setup: dict[str, str]) -> None:
    browser = Browser(gateway.port)
    assert browser.get("localhost", "/idp/portal").status == 302
    signed_in = log_in(browser)
    assert signed_in.status == 303 and signed_in.location == "/idp/portal"
    cookie = signed_in.cookie("emustudio-idp")
    assert "httponly" in cookie.attributes and cookie.path == "/idp/"
    portal = browser.get("localhost", "/idp/portal")
    assert portal.status == 200, portal.body
    assert setup["role"] in portal.body and setup["studio"] in portal.body
    # Our own form: without its XSRF token, refused.
    form = {"role": "0", "studio": setup["studio"]}
    assert browser.post("localhost", "/idp/portal", form).status == 403
    page = browser.post("localhost", "/idp/portal", {**form, "_xsrf": portal.xsrf()})
    _, fields = auto_post(page)
    # The Studio's URL, as EMR gives it.
    assert fields["RelayState"].lower() == (
        f"http://{setup['studio'].lower()}.emrstudio.localhost:{gateway.port}/"
    )
    land(browser, gateway, page, setup["studio"])


def test_sp_initiated_sign_in(gateway: GatewayProcess, setup: dict[str, str]) -> None:
    browser = Browser(gateway.port)
    studio_id = setup["studio"]
    redirect = browser.get(browser.host(studio_id), "/signin")
    assert redirect.status == 302
    url = urlsplit(redirect.location)
    assert url.path == "/idp/sso"
    sso = f"{url.path}?{url.query}"
    to_login = browser.get("localhost", sso)
    assert to_login.status == 302 and to_login.location.startswith("/idp/login?")
    signed_in = log_in(browser, next_url=sso)
    assert signed_in.status == 303 and signed_in.location == sso
    land(browser, gateway, browser.get("localhost", sso), studio_id)


def test_a_wrong_password_is_refused(gateway: GatewayProcess, setup: dict[str, str]) -> None:
    browser = Browser(gateway.port)
    page = log_in(browser, password="wrong")
    assert page.status == 401
    assert "Incorrect user name or password" in page.body
    assert browser.cookie_value("emustudio-idp", "localhost") is None
    assert browser.get("localhost", "/idp/portal").status == 302


def test_a_broken_users_file_is_a_clear_error(tmp_path: Path) -> None:
    from emustudio.auth.idp import UsersFile, UsersFileError, parse_users

    with pytest.raises(UsersFileError, match="password"):
        parse_users("users: {dave: {groups: []}}")
    with pytest.raises(UsersFileError, match="unknown group"):
        parse_users("users: {dave: {password: x, groups: [nope]}}")
    with pytest.raises(UsersFileError, match=r"missing\.yaml"):
        UsersFile(tmp_path / "missing.yaml").users()


def test_a_hashed_password_signs_in_and_the_plain_text_is_nowhere(
    gateway: GatewayProcess, users_file: Path, setup: dict[str, str]
) -> None:
    """``password_hash`` (made by ``emustudio idp hash-password``) in place of ``password``."""
    made = subprocess.run(
        [sys.executable, "-m", "emustudio.cli", "idp", "hash-password"],
        input="Hashed-Pass-42\n",
        capture_output=True,
        text=True,
        check=True,
    )
    hashed = made.stdout.strip()
    assert hashed.startswith("scrypt$") and "Hashed-Pass-42" not in hashed
    users = yaml.safe_load(users_file.read_text())
    users["users"]["dora"] = {"password_hash": hashed, "groups": ["analysts"]}
    users_file.write_text(yaml.safe_dump(users))
    browser = Browser(gateway.port)
    page = browser.get("localhost", "/idp/login")
    form = {"_xsrf": page.xsrf(), "username": "dora", "password": "Hashed-Pass-42"}
    assert browser.post("localhost", "/idp/login", form).status == 303
    wrong = Browser(gateway.port)
    page = wrong.get("localhost", "/idp/login")
    form = {"_xsrf": page.xsrf(), "username": "dora", "password": "hashed-pass-42"}
    assert wrong.post("localhost", "/idp/login", form).status == 401


def test_a_users_file_names_one_password_kind() -> None:
    from emustudio.auth.idp import UsersFileError, parse_users, password_hash

    with pytest.raises(UsersFileError, match="password"):
        parse_users("users: {eve: {password: x, password_hash: y}}")
    with pytest.raises(UsersFileError, match="hash-password"):
        parse_users("users: {eve: {password_hash: md5$abc}}")
    [eve] = parse_users(f"users: {{eve: {{password_hash: '{password_hash('pw')}'}}}}").values()
    assert eve.check_password("pw") and not eve.check_password("pw ")


def test_metadata_is_what_pysaml2_writes_and_needs_no_pysaml2_server(tmp_path: Path) -> None:
    """The demo registers the IdP's metadata at every start; it is written without loading
    pysaml2's IdP (its XML schemas), and says what pysaml2 itself would say."""
    from saml2.metadata import create_metadata_string

    from emustudio.auth.idp import BuiltinIdp, UsersFile, idp_config

    idp = BuiltinIdp(UsersFile(tmp_path / "users.yaml"), tmp_path, base_url='http://h:1/a"b&c')
    ours = idp.metadata()
    assert idp._server is None  # the first sign-in makes it
    config = idp_config(
        idp.entity_id,
        tmp_path / "idp-key.pem",
        tmp_path / "idp-cert.pem",
        sso_url=idp.sso_url,
    )
    assert ours == create_metadata_string(None, config=config, valid=24 * 365).decode()
    assert idp.server.config.entityid == idp.entity_id
