"""The console on the gateway's bare host, against a real gateway: IAM user sign-in (and its
refusals), the Studios the principal may open, opening one signed in, sign-out, the console
cookie, a federated sign-in without a RelayState landing there, and sessions that end at the
federated role session's end (SAML SessionDuration).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlmodel import create_engine

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT, PASSWORD, Users, allow, studio_arn
from emustudio.testing.pages import Browser, Response
from emustudio.testing.vpc import StudioNetwork, studio_args
from tests.web.test_saml import ATTR, Idp, make_role  # the federation tests' IdP

OPEN = "elasticmapreduce:CreateStudioPresignedUrl"
LIST = ["elasticmapreduce:ListEditors", "elasticmapreduce:DescribeEditor"]
WRONG = "Your authentication information is incorrect. Please try again."
COOKIE = "emustudio-console"


@pytest.fixture(scope="module")
def sso_studio(emr: Any, net: StudioNetwork) -> str:
    """An Identity Center Studio: never in the console's list, whatever the policies say."""
    return str(
        emr.create_studio(
            **studio_args(
                net,
                Name="sso-studio",
                AuthMode="SSO",
                UserRole=f"arn:aws:iam::{ACCOUNT}:role/EMRStudio_User_Role",
            )
        )["StudioId"]
    )


@pytest.fixture(scope="module")
def everywhere(users: Users) -> str:
    """May open every Studio."""
    return users.create(allow(OPEN), allow(LIST))


@pytest.fixture(scope="module")
def only_a(users: Users, studios: dict[str, str]) -> str:
    return users.create(allow(OPEN, studio_arn(studios["A"])), allow(LIST))


@pytest.fixture(scope="module")
def nowhere(users: Users) -> str:
    return users.create(allow(LIST))


@pytest.fixture(scope="module")
def store(gateway: GatewayProcess) -> Iterator[Any]:
    engine = create_engine(f"sqlite:///{gateway.data_dir / 'emustudio.db'}")
    yield engine
    engine.dispose()


def console_sign_in(
    browser: Browser,
    user: str,
    password: str = PASSWORD,
    *,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> Response:
    page = browser.get("localhost", "/console/signin")
    assert page.status == 200, page.body
    # The account field comes filled in with the gateway's account, as a browser submits it.
    form = {"_xsrf": page.xsrf(), "account": ACCOUNT, "username": user, "password": password}
    form.update(extra)
    return browser.post("localhost", "/console/signin", form, headers=headers)


def studio_links(page: Response) -> dict[str, str]:
    """Studio id -> its link (to the Studio's handoff), from the console's list."""
    rows = re.findall(r'<tr data-studio="([^"]+)">\s*<td[^>]*><a href="([^"]+)"', page.body)
    return {studio_id: href.replace("&amp;", "&") for studio_id, href in rows}


def open_studio(browser: Browser, link: str, studio_id: str) -> Response:
    url = urlsplit(link)
    assert url.hostname == browser.host(studio_id)
    assert url.path == "/federation/handoff"
    return browser.get(browser.host(studio_id), f"{url.path}?{url.query}")


def expires_in(cookie: Any) -> float:
    return parsedate_to_datetime(cookie.attributes["expires"]).timestamp() - time.time()


def let_time_pass(store: Any, principal_arn: str, seconds: float) -> None:
    """As if ``seconds`` went by for every session of ``principal_arn`` (console and Studio)."""
    with store.begin() as conn:
        conn.execute(
            text(
                "UPDATE websession SET created_at = created_at - :s, expires_at = expires_at - :s"
                " WHERE json_extract(principal, '$.arn') = :arn"
            ),
            {"s": seconds, "arn": principal_arn},
        )


def console_logins(gateway: GatewayProcess, user_agent: str) -> list[str]:
    """The outcomes of the ``ConsoleLogin`` events of the browser sending ``user_agent``."""
    events = gateway.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}]
    )["Events"]
    found = [json.loads(e["CloudTrailEvent"]) for e in events]
    return [e["responseElements"]["ConsoleLogin"] for e in found if e["userAgent"] == user_agent]


# --- sign-in ---------------------------------------------------------------------------------


def test_signed_out_the_console_asks_for_a_sign_in(browser: Browser) -> None:
    home = browser.get("localhost", "/console")
    assert home.status == 302 and home.location == "/console/signin"
    page = browser.get("localhost", "/console/signin")
    assert page.status == 200
    assert re.search(rf'name="account"[^>]*value="{ACCOUNT}"', page.body)
    assert 'name="username"' in page.body and 'name="password"' in page.body


def test_sign_in_sets_a_host_only_console_cookie(
    gateway: GatewayProcess, browser: Browser, everywhere: str
) -> None:
    agent = {"User-Agent": "console-test-success"}
    signed_in = console_sign_in(browser, everywhere, headers=agent, account=ACCOUNT)
    assert signed_in.status == 303, signed_in.body
    assert signed_in.location == "/console"
    cookie = signed_in.cookie(COOKIE)
    assert cookie.path == "/console"
    assert "httponly" in cookie.attributes
    assert cookie.attributes.get("samesite") == "Lax"
    assert "domain" not in cookie.attributes  # host-only: no Studio host receives it
    assert 12 * 3600 - 120 < expires_in(cookie) <= 12 * 3600 + 5  # an IAM user: 12 hours
    assert not any(c.name == "emustudio-session" for c in signed_in.set_cookies)
    home = browser.get("localhost", "/console")
    assert home.status == 200, home.body
    assert "EMR Studios" in home.body
    assert f'class="who" title="arn:aws:iam::{ACCOUNT}:user/{everywhere}">{everywhere}<' in (
        home.body
    )
    # Signed in, the sign-in page goes straight to the list.
    assert browser.get("localhost", "/console/signin").location == "/console"
    login = console_logins(gateway, agent["User-Agent"])
    assert login == ["Success"]


@pytest.mark.parametrize(
    "change",
    [{"password": "Not-The-Password-1"}, {"account": "123456789012"}, {"username": "nobody"}],
    ids=["password", "account", "user"],
)
def test_wrong_credentials_are_refused_in_aws_words(
    browser: Browser, everywhere: str, change: dict[str, str]
) -> None:
    form = {"username": everywhere, "password": PASSWORD, "account": ACCOUNT, **change}
    refused = console_sign_in(browser, form.pop("username"), form.pop("password"), **form)
    assert refused.status == 401
    assert WRONG in refused.body
    assert not any(c.name == COOKIE for c in refused.set_cookies)
    assert browser.get("localhost", "/console").status == 302


def test_a_wrong_password_is_recorded_as_a_failed_console_login(
    gateway: GatewayProcess, browser: Browser, users: Users
) -> None:
    user = users.create(allow(OPEN))
    agent = {"User-Agent": "console-test-failure"}
    assert console_sign_in(browser, user, "Not-The-Password-1", headers=agent).status == 401
    assert console_logins(gateway, agent["User-Agent"]) == ["Failure"]


def test_the_account_is_asked_for(browser: Browser, everywhere: str) -> None:
    refused = console_sign_in(browser, everywhere, account=" ")
    assert refused.status == 400
    assert "Enter your account ID, IAM user name and password." in refused.body
    assert not any(c.name == COOKIE for c in refused.set_cookies)


@pytest.mark.parametrize(
    "form",
    [{"account_type": "root", "username": "anyone"}, {"username": "test"}],
    ids=["root-choice", "root-access-key-id"],
)
def test_the_root_user_is_refused(browser: Browser, form: dict[str, str]) -> None:
    refused = console_sign_in(browser, form.pop("username"), **form)
    assert refused.status == 403
    assert "signs in IAM users only" in refused.body
    assert not any(c.name == COOKIE for c in refused.set_cookies)


def test_forms_need_their_xsrf_token(browser: Browser, everywhere: str) -> None:
    form = {"username": everywhere, "password": PASSWORD, "account": ACCOUNT}
    forged = browser.post("localhost", "/console/signin", form)
    assert forged.status == 403
    assert not any(c.name == COOKIE for c in forged.set_cookies)
    assert console_sign_in(browser, everywhere).status == 303
    assert browser.post("localhost", "/console/signout", {}).status == 403
    assert browser.get("localhost", "/console").status == 200  # still signed in
    # With the token but from another origin: refused too.
    page = browser.get("localhost", "/console")
    cross = browser.post(
        "localhost",
        "/console/signout",
        {"_xsrf": page.xsrf()},
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status == 403
    assert browser.get("localhost", "/console").status == 200


# --- the list and opening a Studio -----------------------------------------------------------


def test_the_list_shows_the_iam_studios_the_user_may_open(
    browser: Browser,
    studios: dict[str, str],
    sso_studio: str,
    everywhere: str,
    only_a: str,
    nowhere: str,
) -> None:
    assert console_sign_in(browser, everywhere).status == 303
    links = studio_links(browser.get("localhost", "/console"))
    assert {studios["A"], studios["B"]} <= set(links)
    assert sso_studio not in links  # Identity Center Studios are not opened with IAM
    page = browser.get("localhost", "/console")
    assert "studio-A" in page.body and "studio-B" in page.body and studios["A"] in page.body

    other = Browser(browser.port)
    assert console_sign_in(other, only_a).status == 303
    assert set(studio_links(other.get("localhost", "/console"))) == {studios["A"]}

    empty = Browser(browser.port)
    assert console_sign_in(empty, nowhere).status == 303
    page = empty.get("localhost", "/console")
    assert page.status == 200 and not studio_links(page)
    assert 'id="no-studios"' in page.body and "no EMR Studio you may open" in page.body


def test_opening_a_studio_from_the_list_lands_signed_in(
    browser: Browser, studios: dict[str, str], only_a: str
) -> None:
    assert console_sign_in(browser, only_a).status == 303
    host = browser.host(studios["A"])
    assert browser.get(host, "/").status == 302  # not signed in to the Studio yet
    link = studio_links(browser.get("localhost", "/console"))[studios["A"]]
    landed = open_studio(browser, link, studios["A"])
    assert landed.status == 303 and landed.location == "/"
    assert landed.cookie("emustudio-session").path == "/"
    home = browser.get(host, "/")
    assert home.status == 200, home.body
    assert f">{only_a}<" in home.body and "Workspaces" in home.body
    # A link opens once.
    assert open_studio(Browser(browser.port), link, studios["A"]).status == 403


def test_the_console_cookie_opens_no_studio(
    browser: Browser, studios: dict[str, str], only_a: str
) -> None:
    assert console_sign_in(browser, only_a).status == 303
    value = browser.cookie_value(COOKIE, "localhost", "/console")
    assert value
    host = browser.host(studios["A"])
    for name in (COOKIE, "emustudio-session"):
        page = browser.get(host, "/", headers={"Cookie": f"{name}={value}"}, cookies=False)
        assert page.status == 302 and page.location.startswith("/signin")
        under_path = browser.get(
            "localhost",
            f"/studios/{studios['A']}/",
            headers={"Cookie": f"{name}={value}"},
            cookies=False,
        )
        assert under_path.status == 302


def test_the_console_is_not_on_a_studio_host(browser: Browser, studios: dict[str, str]) -> None:
    page = browser.get(browser.host(studios["A"]), "/console")
    assert page.status == 404
    assert "no such page in this Studio" in page.body


# --- sign-out ----------------------------------------------------------------------------------


def test_sign_out_ends_the_session(browser: Browser, everywhere: str) -> None:
    assert console_sign_in(browser, everywhere).status == 303
    old = browser.cookie_value(COOKIE, "localhost", "/console")
    page = browser.get("localhost", "/console")
    assert 'action="/console/signout"' in page.body
    out = browser.post("localhost", "/console/signout", {"_xsrf": page.xsrf()})
    assert out.status == 303 and out.location == "/console/signin?signed_out=1"
    cleared = out.cookie(COOKIE)
    assert cleared.deleted and cleared.path == "/console"
    assert browser.cookie_value(COOKIE, "localhost") is None
    assert "You signed out." in browser.get("localhost", out.location).body
    # The old cookie, kept by someone, no longer works: the session is gone server-side.
    stale = browser.get("localhost", "/console", headers={"Cookie": f"{COOKIE}={old}"})
    assert stale.status == 302 and stale.location == "/console/signin"


def test_a_deleted_user_is_signed_out(browser: Browser, users: Users) -> None:
    user = users.create(allow(OPEN))
    assert console_sign_in(browser, user).status == 303
    users.iam.delete_login_profile(UserName=user)
    users.iam.delete_user_policy(UserName=user, PolicyName="studio")
    users.iam.delete_user(UserName=user)
    assert browser.get("localhost", "/console").status == 302


# --- federation and SessionDuration ------------------------------------------------------------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    return Idp(tmp_path_factory.mktemp("console-idp"), "console-idp")


@pytest.fixture(scope="module")
def provider(gateway: GatewayProcess, idp: Idp) -> str:
    iam = gateway.client("iam")
    return str(
        iam.create_saml_provider(Name="ConsoleIdp", SAMLMetadataDocument=idp.metadata())[
            "SAMLProviderArn"
        ]
    )


@pytest.fixture(scope="module")
def role_a(gateway: GatewayProcess, provider: str, studios: dict[str, str]) -> str:
    return make_role(gateway, "ConsoleStudioA", provider, studios["A"])


def saml_response(idp: Idp, provider: str, role: str, name: str, duration: int) -> str:
    xml = idp.response(
        identity={
            ATTR + "Role": [f"{role},{provider}"],
            ATTR + "RoleSessionName": [name],
            ATTR + "SessionDuration": [str(duration)],
        }
    )
    return base64.b64encode(xml.encode()).decode()


def test_a_federated_sign_in_without_relay_state_lands_in_the_console(
    browser: Browser, idp: Idp, provider: str, role_a: str, studios: dict[str, str]
) -> None:
    posted = browser.post(
        "localhost",
        "/saml",
        {"SAMLResponse": saml_response(idp, provider, role_a, "bob@example.com", 3600)},
    )
    assert posted.status == 303, posted.body
    assert posted.location == "/console"
    cookie = posted.cookie(COOKIE)
    assert cookie.path == "/console" and "httponly" in cookie.attributes
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/ConsoleStudioA/bob@example.com"
    for _ in range(2):  # the list survives a reload
        page = browser.get("localhost", "/console")
        assert page.status == 200, page.body
        assert arn in page.body
        assert set(studio_links(page)) == {studios["A"]}
    link = studio_links(page)[studios["A"]]
    assert open_studio(browser, link, studios["A"]).status == 303
    assert browser.get(browser.host(studios["A"]), "/").status == 200
    out = browser.post("localhost", "/console/signout", {"_xsrf": page.xsrf()})
    assert out.status == 303
    assert browser.get("localhost", "/console").status == 302


def test_sessions_end_at_the_saml_session_duration(
    browser: Browser,
    store: Any,
    idp: Idp,
    provider: str,
    role_a: str,
    studios: dict[str, str],
    only_a: str,
) -> None:
    posted = browser.post(
        "localhost",
        "/saml",
        {"SAMLResponse": saml_response(idp, provider, role_a, "carol@example.com", 900)},
    )
    assert posted.status == 303, posted.body
    assert 900 - 60 < expires_in(posted.cookie(COOKIE)) <= 905  # not the 12 hours of IAM users
    page = browser.get("localhost", "/console")
    landed = open_studio(browser, studio_links(page)[studios["A"]], studios["A"])
    assert landed.status == 303
    assert 900 - 60 < expires_in(landed.cookie("emustudio-session")) <= 905
    host = browser.host(studios["A"])
    assert browser.get(host, "/").status == 200

    # An IAM user signed in alongside, for comparison.
    iam_user = Browser(browser.port)
    assert console_sign_in(iam_user, only_a).status == 303

    # 901 seconds later, the role session's sessions are over, server-side too (the cookies
    # are sent as they were); the IAM user's twelve hours are not.
    let_time_pass(
        store, f"arn:aws:sts::{ACCOUNT}:assumed-role/ConsoleStudioA/carol@example.com", 901
    )
    let_time_pass(store, f"arn:aws:iam::{ACCOUNT}:user/{only_a}", 901)
    assert browser.get("localhost", "/console").status == 302
    assert browser.get(host, "/").status == 302
    assert iam_user.get("localhost", "/console").status == 200
