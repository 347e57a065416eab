"""Interop with an independent IdP: samlify (npm; signatures by xml-crypto, not pysaml2 nor
xmlsec1) runs as a separate node process (tests/interop/samlify/idp.js) and plays a corporate IdP
configured for AWS sign-in. Its auto-post forms go to the real gateway's ``/saml``, IdP-initiated
(a portal tile, with or without a console deep link) and SP-initiated (a Studio's
``IdpAuthUrl``); its responses also go to STS ``AssumeRoleWithSAML`` through boto3.

``scripts/setup`` installs node, npm and the IdP's packages (``npm ci``); without them these
tests fail, saying so.
"""

from __future__ import annotations

import base64
import html
import json
import re
import select
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from emustudio.auth.keys import write_keypair
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT, allow, studio_arn
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, studio_args
from tests.web.test_saml import LIST, OPEN, deep_link, follow_handoff

SAMLIFY_DIR = Path(__file__).resolve().parents[1] / "interop" / "samlify"
ATTR = "https://aws.amazon.com/SAML/Attributes/"
# The IdP is configured with the role and provider ARNs before they exist, as an administrator
# types them into a real IdP: the names below are the ones the fixtures then create.
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/Samlify"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SamlifyStudio"
USER = "alice@example.com"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/SamlifyStudio/{USER}"


def keypair(directory: Path) -> tuple[str, str]:
    """A fresh RSA key and self-signed certificate for the IdP (no private key is committed)."""
    key_file, cert_file = directory / "idp.key", directory / "idp.crt"
    write_keypair(key_file, cert_file, "samlify test IdP", days=7, pkcs8=True)
    return str(key_file), str(cert_file)


class FormParser(HTMLParser):
    """The first form of a page: its action and its named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.fields: dict[str, str] = {}
        self.forms = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms += 1
            if self.forms == 1:
                self.action, self.method = values.get("action"), values.get("method")
        elif tag == "input" and self.forms == 1 and "name" in values:
            self.fields[values["name"]] = values.get("value", "")


@dataclass
class AutoPost:
    """The IdP's auto-submitting page, as a browser would submit it."""

    action: str
    fields: dict[str, str]

    @classmethod
    def parse(cls, body: str) -> AutoPost:
        parser = FormParser()
        parser.feed(body)
        assert parser.forms == 1 and parser.action, body
        assert (parser.method or "").lower() == "post"
        assert "document.forms[0].submit()" in body  # it posts itself, no click needed
        return cls(parser.action, parser.fields)

    @property
    def xml(self) -> str:
        return base64.b64decode(self.fields["SAMLResponse"]).decode()

    def submit(self, browser: Browser, form: dict[str, str] | None = None) -> Any:
        url = urlsplit(self.action)
        assert url.port == browser.port
        assert url.hostname is not None
        return browser.post(url.hostname, url.path, self.fields if form is None else form)


class SamlifyIdp:
    """``node idp.js`` on a free loopback port, stopped by :meth:`close`."""

    def __init__(self, directory: Path, gateway: GatewayProcess) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed: run scripts/setup (it installs nodejs and npm)")
        if not (SAMLIFY_DIR / "node_modules" / "samlify").is_dir():
            pytest.fail(f"{SAMLIFY_DIR}/node_modules is missing: run scripts/setup (npm ci)")
        key, cert = keypair(directory)
        self.log = directory / "samlify.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    node,
                    str(SAMLIFY_DIR / "idp.js"),
                    *("--port", "0", "--gateway", gateway.endpoint_url),
                    *("--key", key, "--cert", cert),
                    *("--role", f"{ROLE},{PROVIDER}", "--user", USER, "--duration", "3600"),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            pytest.fail(f"the samlify IdP did not start:\n{self.log.read_text()}")
        started = json.loads(line)
        self.port: int = started["port"]
        self.entity_id: str = started["entityID"]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> Any:
        """GET from the IdP as the user's browser does (another host than the gateway)."""
        page = Browser(self.port).get("127.0.0.1", path)
        assert page.status == 200, f"{page.status} {page.body}\n{self.log.read_text()}"
        return page

    def auto_post(self, path: str) -> AutoPost:
        return AutoPost.parse(self.get(path).body)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def samlify(
    gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SamlifyIdp]:
    idp = SamlifyIdp(tmp_path_factory.mktemp("samlify"), gateway)
    try:
        yield idp
    finally:
        idp.close()


@pytest.fixture(scope="module")
def provider(gateway: GatewayProcess, samlify: SamlifyIdp) -> str:
    metadata = samlify.get("/metadata").body
    assert samlify.entity_id in metadata and "IDPSSODescriptor" in metadata
    arn = gateway.client("iam").create_saml_provider(Name="Samlify", SAMLMetadataDocument=metadata)[
        "SAMLProviderArn"
    ]
    assert arn == PROVIDER
    return str(arn)


@pytest.fixture(scope="module")
def sp_studio(emr: Any, net: StudioNetwork, samlify: SamlifyIdp) -> str:
    """A Studio whose sign-in goes to the samlify IdP (SP-initiated), as ``bob``."""
    return str(
        emr.create_studio(
            **studio_args(
                net,
                Name="samlify",
                IdpAuthUrl=samlify.url("/sso?user=bob@example.com"),
                IdpRelayStateParameterName="RelayState",
            )
        )["StudioId"]
    )


@pytest.fixture(scope="module")
def role(gateway: GatewayProcess, provider: str, studios: dict[str, str], sp_studio: str) -> str:
    """Trusts the samlify provider; may open Studio A and the SP-initiated Studio (not B)."""
    iam = gateway.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithSAML",
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            }
        ],
    }
    arn = iam.create_role(RoleName="SamlifyStudio", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    assert arn == ROLE
    iam.put_role_policy(
        RoleName="SamlifyStudio",
        PolicyName="studio",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    allow(OPEN, [studio_arn(studios["A"]), studio_arn(sp_studio)]),
                    allow(LIST),
                ],
            }
        ),
    )
    return str(arn)


def no_session_cookie(page: Any) -> bool:
    return all(c.name != "emustudio-session" for c in page.set_cookies)


@pytest.mark.parametrize("sign", ["both", "assertion", "response"])
def test_idp_initiated_deep_link_opens_the_studio_signed_in(
    browser: Browser,
    gateway: GatewayProcess,
    samlify: SamlifyIdp,
    role: str,
    studios: dict[str, str],
    sign: str,
) -> None:
    relay = deep_link(studios["A"])
    form = samlify.auto_post(f"/initiate?sign={sign}&relay={quote(relay, safe='')}")
    assert form.action == f"{gateway.endpoint_url}/saml"
    assert form.fields["RelayState"] == relay
    # What samlify signed: the Response, the Assertion or both, with RSA-SHA256.
    xml = form.xml
    signed = xml.count("<ds:Signature ")
    assert signed == {"both": 2, "assertion": 1, "response": 1}[sign]
    assert xml.count('Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"') == signed
    assert "InResponseTo" not in xml and 'Destination="https://signin.aws.amazon.com/saml"' in xml

    posted = form.submit(browser)
    assert posted.status == 303, posted.body
    assert no_session_cookie(posted)  # the session is set on the Studio's host, not here
    follow_handoff(browser, posted.location, studios["A"])
    home = browser.get(browser.host(studios["A"]), "/")
    assert home.status == 200, home.body
    assert "Workspaces" in home.body and USER in home.body


def test_idp_initiated_without_relay_state_lists_the_studios(
    browser: Browser, samlify: SamlifyIdp, role: str, studios: dict[str, str], sp_studio: str
) -> None:
    form = samlify.auto_post("/initiate")
    assert "RelayState" not in form.fields
    page = form.submit(browser)
    if page.status == 303:  # the console's Studio list, kept in a console session
        assert page.location.startswith("/") and no_session_cookie(page)
        page = browser.get("localhost", page.location)
    assert page.status == 200, page.body
    assert SESSION in page.body
    assert studios["A"] in page.body and sp_studio in page.body
    assert studios["B"] not in page.body  # the role may not open it
    # Each listed Studio opens signed in.
    links = [
        html.unescape(link)
        for link in re.findall(r'href="([^"]*/federation/handoff\?token=[^"]+)"', page.body)
    ]
    to_a = [link for link in links if urlsplit(link).hostname == browser.host(studios["A"])]
    assert len(links) == 2 and len(to_a) == 1, links
    follow_handoff(browser, to_a[0], studios["A"])
    home = browser.get(browser.host(studios["A"]), "/")
    assert home.status == 200 and USER in home.body


def test_sp_initiated_sign_in_goes_to_samlify_and_back(
    browser: Browser, samlify: SamlifyIdp, role: str, sp_studio: str
) -> None:
    host = browser.host(sp_studio)
    home_url = f"http://{sp_studio}.emrstudio.localhost:{browser.port}/"
    signin = browser.get(host, "/signin")
    assert signin.status == 302
    assert signin.location == samlify.url(
        f"/sso?user=bob@example.com&RelayState={quote(home_url, safe='')}"
    )
    idp = urlsplit(signin.location)
    form = samlify.auto_post(f"{idp.path}?{idp.query}")
    assert form.fields["RelayState"] == home_url
    posted = form.submit(browser)
    assert posted.status == 303, posted.body
    follow_handoff(browser, posted.location, sp_studio)
    home = browser.get(host, "/")
    assert home.status == 200, home.body
    assert "Workspaces" in home.body and "bob@example.com" in home.body
    # Signed in, the Studio no longer sends the browser to the IdP.
    assert browser.get(host, "/signin").location != signin.location


def test_assume_role_with_saml_takes_samlify_assertions(
    gateway: GatewayProcess, samlify: SamlifyIdp, role: str
) -> None:
    assertion = samlify.auto_post("/initiate").fields["SAMLResponse"]
    sts = gateway.client("sts")
    out = sts.assume_role_with_saml(RoleArn=role, PrincipalArn=PROVIDER, SAMLAssertion=assertion)
    assert out["AssumedRoleUser"]["Arn"] == SESSION
    assert out["Issuer"] == samlify.entity_id
    assert out["Subject"] == USER and out["SubjectType"] == "persistent"
    assert out["Audience"] == "https://signin.aws.amazon.com/saml"
    creds = out["Credentials"]
    me = gateway.client(
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert me["Arn"] == SESSION
    # The same assertion a second time is a replay.
    with pytest.raises(ClientError) as exc:
        sts.assume_role_with_saml(RoleArn=role, PrincipalArn=PROVIDER, SAMLAssertion=assertion)
    assert exc.value.response["Error"]["Code"] == "InvalidIdentityToken"


def tamper(form: AutoPost) -> dict[str, str]:
    """The form with the signed RoleSessionName changed to mallory's, signatures untouched."""
    xml = form.xml
    signed_value = f'<saml:AttributeValue xsi:type="xs:string">{USER}</saml:AttributeValue>'
    assert xml.count(signed_value) == 1
    forged = xml.replace(signed_value, signed_value.replace(USER, "mallory@example.com"))
    return {**form.fields, "SAMLResponse": base64.b64encode(forged.encode()).decode()}


def test_a_tampered_samlify_response_is_refused(
    browser: Browser,
    gateway: GatewayProcess,
    samlify: SamlifyIdp,
    role: str,
    studios: dict[str, str],
) -> None:
    relay = deep_link(studios["A"])
    form = samlify.auto_post(f"/initiate?relay={quote(relay, safe='')}")
    forged = tamper(form)
    page = form.submit(browser, forged)
    assert page.status == 403
    assert "invalid SAML response" in page.body
    assert not page.location and no_session_cookie(page)
    with pytest.raises(ClientError) as exc:
        gateway.client("sts").assume_role_with_saml(
            RoleArn=role, PrincipalArn=PROVIDER, SAMLAssertion=forged["SAMLResponse"]
        )
    assert exc.value.response["Error"]["Code"] == "InvalidIdentityToken"
    # The untouched response is accepted (the refusal was the edit's doing, and used nothing up).
    assert form.submit(browser).status == 303
