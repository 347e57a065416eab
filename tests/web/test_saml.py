"""IAM federation into a Studio through the gateway's ``signin.aws.amazon.com/saml``, against a
real gateway and a real pysaml2 IdP: IdP-initiated POSTs, the role picker, the handoff to the
Studio's host, refusals (replay, untrusted role, no permission) and the console's Studio list.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from emustudio.auth.federation import Target, parse_relay_state
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT, allow, studio_arn
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, studio_args
from tests.auth.forge import ATTR, Idp

OPEN = "elasticmapreduce:CreateStudioPresignedUrl"
LIST = ["elasticmapreduce:ListEditors", "elasticmapreduce:DescribeEditor"]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    return Idp(tmp_path_factory.mktemp("fed-idp"), "fed-idp")


@pytest.fixture(scope="module")
def provider(gateway: GatewayProcess, idp: Idp) -> str:
    iam = gateway.client("iam")
    return str(
        iam.create_saml_provider(Name="FedIdp", SAMLMetadataDocument=idp.metadata())[
            "SAMLProviderArn"
        ]
    )


def make_role(
    gateway: GatewayProcess, name: str, provider: str, studio_id: str, *, trusted: bool = True
) -> str:
    iam = gateway.client("iam")
    federated = provider if trusted else provider.replace("FedIdp", "SomeoneElse")
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": federated},
                        "Action": "sts:AssumeRoleWithSAML",
                        "Condition": {
                            "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
                        },
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="studio",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [allow(OPEN, studio_arn(studio_id)), allow(LIST)],
            }
        ),
    )
    return str(arn)


@pytest.fixture(scope="module")
def role_a(gateway: GatewayProcess, provider: str, studios: dict[str, str]) -> str:
    return make_role(gateway, "FedStudioA", provider, studios["A"])


@pytest.fixture(scope="module")
def role_b(gateway: GatewayProcess, provider: str, studios: dict[str, str]) -> str:
    return make_role(gateway, "FedStudioB", provider, studios["B"])


@pytest.fixture(scope="module")
def untrusting(gateway: GatewayProcess, provider: str, studios: dict[str, str]) -> str:
    return make_role(gateway, "FedUntrusting", provider, studios["A"], trusted=False)


def response(idp: Idp, provider: str, *roles: str, name: str = "alice@example.com") -> str:
    xml = idp.response(
        identity={
            ATTR + "Role": [f"{role},{provider}" for role in roles],
            ATTR + "RoleSessionName": [name],
        }
    )
    return base64.b64encode(xml.encode()).decode()


def deep_link(studio_id: str) -> str:
    return f"https://console.aws.amazon.com/emr/home?region=us-east-1#studio/{studio_id}/start"


def follow_handoff(browser: Browser, location: str, studio_id: str) -> None:
    """The handoff URL on the Studio's host: trade the token for the cookie, then open it."""
    url = urlsplit(location)
    assert url.hostname == browser.host(studio_id)
    assert url.path == "/federation/handoff"
    landed = browser.get(browser.host(studio_id), f"{url.path}?{url.query}")
    assert landed.status == 303, landed.body
    assert landed.location == "/"
    cookie = landed.cookie("emustudio-session")
    assert "httponly" in cookie.attributes and "domain" not in cookie.attributes


def test_deep_link_opens_the_studio_signed_in(
    browser: Browser, idp: Idp, provider: str, role_a: str, studios: dict[str, str]
) -> None:
    posted = browser.post(
        "localhost",
        "/saml",
        {"SAMLResponse": response(idp, provider, role_a), "RelayState": deep_link(studios["A"])},
    )
    assert posted.status == 303, posted.body
    assert not posted.set_cookies or all(c.name != "emustudio-session" for c in posted.set_cookies)
    follow_handoff(browser, posted.location, studios["A"])
    home = browser.get(browser.host(studios["A"]), "/")
    assert home.status == 200, home.body
    assert "Workspaces" in home.body and "alice@example.com" in home.body
    # The handoff token is single-use.
    url = urlsplit(posted.location)
    again = Browser(browser.port).get(browser.host(studios["A"]), f"{url.path}?{url.query}")
    assert again.status == 403
    assert "used already or has expired" in again.body


def test_the_studio_url_as_relay_state_opens_it_too(
    browser: Browser, idp: Idp, provider: str, role_a: str, studios: dict[str, str]
) -> None:
    relay = f"http://{browser.host(studios['A'])}:{browser.port}/"
    posted = browser.post(
        "localhost", "/saml", {"SAMLResponse": response(idp, provider, role_a), "RelayState": relay}
    )
    assert posted.status == 303, posted.body
    follow_handoff(browser, posted.location, studios["A"])


def test_a_replayed_response_is_refused_without_a_session(
    browser: Browser,
    gateway: GatewayProcess,
    idp: Idp,
    provider: str,
    role_a: str,
    studios: dict[str, str],
) -> None:
    form = {"SAMLResponse": response(idp, provider, role_a), "RelayState": deep_link(studios["A"])}
    assert browser.post("localhost", "/saml", form).status == 303
    replayed = Browser(browser.port).post("localhost", "/saml", form)
    assert replayed.status == 403
    assert not replayed.location and not replayed.set_cookies
    assert "invalid SAML response" in replayed.body
    events = gateway.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRoleWithSAML"}]
    )["Events"]
    codes = [json.loads(e["CloudTrailEvent"]).get("errorCode") for e in events]
    assert "InvalidIdentityToken" in codes


def test_a_forged_response_is_refused(browser: Browser, studios: dict[str, str]) -> None:
    forged = base64.b64encode(b"<samlp:Response/>").decode()
    page = browser.post("localhost", "/saml", {"SAMLResponse": forged, "RelayState": ""})
    assert page.status == 403
    assert "invalid SAML response" in page.body


def test_a_role_not_trusting_the_provider_is_refused(
    browser: Browser, idp: Idp, provider: str, untrusting: str, studios: dict[str, str]
) -> None:
    page = browser.post(
        "localhost",
        "/saml",
        {
            "SAMLResponse": response(idp, provider, untrusting),
            "RelayState": deep_link(studios["A"]),
        },
    )
    assert page.status == 403
    assert "Not authorized to assume" in page.body
    assert not page.set_cookies or all(c.name != "emustudio-session" for c in page.set_cookies)


def test_a_studio_the_role_may_not_open_is_refused(
    browser: Browser, idp: Idp, provider: str, role_a: str, studios: dict[str, str]
) -> None:
    page = browser.post(
        "localhost",
        "/saml",
        {"SAMLResponse": response(idp, provider, role_a), "RelayState": deep_link(studios["B"])},
    )
    assert page.status == 403
    assert "may not open this Studio" in page.body


def test_several_roles_offer_a_picker(
    browser: Browser,
    idp: Idp,
    provider: str,
    role_a: str,
    role_b: str,
    studios: dict[str, str],
) -> None:
    picker = browser.post(
        "localhost",
        "/saml",
        {
            "SAMLResponse": response(idp, provider, role_a, role_b),
            "RelayState": deep_link(studios["B"]),
        },
    )
    assert picker.status == 200, picker.body
    assert role_a in picker.body and role_b in picker.body
    pick = re.search(r'name="pick" value="([^"]+)"', picker.body)
    assert pick
    form = {"pick": pick.group(1), "role": role_b}
    # Our own form: without its XSRF token it is refused.
    assert browser.post("localhost", "/saml/role", form).status == 403
    chosen = browser.post("localhost", "/saml/role", {**form, "_xsrf": picker.xsrf()})
    assert chosen.status == 303, chosen.body
    follow_handoff(browser, chosen.location, studios["B"])
    assert browser.get(browser.host(studios["B"]), "/").status == 200
    # The pick is used up.
    assert browser.post("localhost", "/saml/role", {**form, "_xsrf": picker.xsrf()}).status == 403


def test_no_relay_state_lists_the_studios_the_role_may_open(
    browser: Browser, idp: Idp, provider: str, role_a: str, studios: dict[str, str]
) -> None:
    posted = browser.post("localhost", "/saml", {"SAMLResponse": response(idp, provider, role_a)})
    # The console's list (web/console_pages.py), in a console session.
    assert posted.status == 303 and posted.location == "/console", posted.body
    page = browser.get("localhost", "/console")
    assert page.status == 200, page.body
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/FedStudioA/alice@example.com" in page.body
    assert studios["A"] in page.body and studios["B"] not in page.body
    link = re.search(r'href="([^"]*/federation/handoff\?token=[^"]+)"', page.body)
    assert link
    follow_handoff(browser, link.group(1).replace("&amp;", "&"), studios["A"])
    assert browser.get(browser.host(studios["A"]), "/").status == 200


def test_the_path_form_relay_state_hands_off_under_the_path(
    browser: Browser, idp: Idp, provider: str, role_a: str, studios: dict[str, str]
) -> None:
    prefix = f"/studios/{studios['A']}"
    relay = f"http://localhost:{browser.port}{prefix}/"
    posted = browser.post(
        "localhost", "/saml", {"SAMLResponse": response(idp, provider, role_a), "RelayState": relay}
    )
    assert posted.status == 303, posted.body
    assert posted.location.startswith(f"{prefix}/federation/handoff?token=")
    landed = browser.get("localhost", posted.location)
    assert landed.status == 303 and landed.location == f"{prefix}/"
    assert landed.cookie("emustudio-session").path == f"{prefix}/"
    assert browser.get("localhost", f"{prefix}/").status == 200


@pytest.mark.parametrize(
    "relay",
    [
        "https://evil.example/",
        "https://console.aws.amazon.com/emr/home?region=eu-west-1#studio/es-AAAAAAAAAAAAAAAAAAAAAAAAA/start",
        "javascript:alert(1)",
    ],
)
def test_a_relay_state_elsewhere_lands_on_the_studio_list(relay: str) -> None:
    assert parse_relay_state(relay, region="us-east-1", studio_domain="emrstudio.localhost") is None


@pytest.mark.parametrize(
    ("auth_url", "parameter", "separator"),
    [
        ("https://idp.example/app/sso/saml", None, "?"),
        ("https://idp.example/initsso?idpid=1&spid=2", "TargetResource", "&"),
    ],
)
def test_sp_initiated_sign_in_redirects_to_the_idp(
    browser: Browser,
    emr: Any,
    net: StudioNetwork,
    auth_url: str,
    parameter: str | None,
    separator: str,
) -> None:
    extra = {"IdpAuthUrl": auth_url}
    if parameter:
        extra["IdpRelayStateParameterName"] = parameter
    studio_id = emr.create_studio(**studio_args(net, Name="federated", **extra))["StudioId"]
    name = parameter or "RelayState"
    home = f"http://{studio_id}.emrstudio.localhost:{browser.port}/"  # the Studio URL
    page = browser.get(browser.host(studio_id), "/signin")
    assert page.status == 302
    assert page.location == f"{auth_url}{separator}{urlencode({name: home})}"
    assert parse_relay_state(
        home, region="us-east-1", studio_domain="emrstudio.localhost"
    ) == Target(studio_id)
    prefix = f"/studios/{studio_id}"
    on_path = browser.get("localhost", f"{prefix}/signin")
    expected = f"http://localhost:{browser.port}{prefix}/"
    assert on_path.location == f"{auth_url}{separator}{urlencode({name: expected})}"
    # The IAM user form still answers POSTs (no XSRF token here: refused as a forgery, not 404).
    assert browser.post(browser.host(studio_id), "/signin", {"username": "x"}).status == 403
