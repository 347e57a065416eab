"""Signing in to a Studio as an IAM user, as a browser does it, against a real gateway.

A Studio opens to an IAM user whose policies allow ``elasticmapreduce:CreateStudioPresignedUrl``
on it; the session is a signed, HttpOnly, SameSite=Lax, host-only cookie bound to that one
Studio; every form carries an XSRF token and must come from the Studio's own origin.
"""

from __future__ import annotations

from typing import Any

import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import PASSWORD, Users, allow, deny, studio_arn
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, studio_args

OPEN = "elasticmapreduce:CreateStudioPresignedUrl"
LIST = ["elasticmapreduce:ListEditors", "elasticmapreduce:DescribeEditor"]


@pytest.fixture(scope="module")
def alice(users: Users, studios: dict[str, str]) -> str:
    """May open Studio A only (by ARN)."""
    return users.create(allow(OPEN, studio_arn(studios["A"])), allow(LIST))


@pytest.fixture(scope="module")
def both(users: Users) -> str:
    """May open every Studio."""
    return users.create(allow(OPEN), allow(LIST))


@pytest.mark.parametrize("path_form", [False, True], ids=["host", "path"])
def test_studio_url_shows_the_sign_in_page(
    browser: Browser, studios: dict[str, str], path_form: bool
) -> None:
    host, prefix = browser.where(studios["A"], path_form)
    home = browser.get(host, f"{prefix}/")
    assert home.status == 302
    assert home.location == f"{prefix}/signin?next=%2F" + (
        "studios%2F" + studios["A"] + "%2F" if path_form else ""
    )
    page = browser.get(host, home.location)
    assert page.status == 200
    assert "Sign in to studio-A" in page.body
    assert 'name="username"' in page.body and 'type="password"' in page.body


@pytest.mark.parametrize("path_form", [False, True], ids=["host", "path"])
def test_sign_in_opens_the_studio_with_a_scoped_cookie(
    browser: Browser, studios: dict[str, str], alice: str, path_form: bool
) -> None:
    host, prefix = browser.where(studios["A"], path_form)
    signed_in = browser.sign_in(studios["A"], alice, path_form=path_form)
    assert signed_in.status == 303, signed_in.body
    assert signed_in.location == f"{prefix}/"
    cookie = signed_in.cookie("emustudio-session")
    assert "httponly" in cookie.attributes
    assert cookie.attributes["samesite"] == "Lax"
    assert "domain" not in cookie.attributes  # host-only: this Studio's host alone
    assert cookie.path == (f"/studios/{studios['A']}/" if path_form else "/")
    assert alice not in cookie.value  # signed id, no identity in clear
    home = browser.get(host, f"{prefix}/")
    assert home.status == 200
    assert alice in home.body and "Workspaces" in home.body


def test_signed_in_the_sign_in_page_goes_home(
    browser: Browser, studios: dict[str, str], alice: str
) -> None:
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], alice).status == 303
    assert browser.get(host, "/signin").location == "/"
    assert browser.get(host, "/signin?next=/console/x").location == "/console/x"
    for elsewhere in ("//evil.example/", "http://evil.example/", "/\\evil.example/"):
        assert browser.get(host, f"/signin?next={elsewhere}").location == "/"
    # The path form stays within its own Studio's prefix.
    a, b = studios["A"], studios["B"]
    assert browser.sign_in(a, alice, path_form=True).status == 303
    answer = browser.get("localhost", f"/studios/{a}/signin?next=/studios/{b}/")
    assert answer.location == f"/studios/{a}/"


def test_the_xsrf_cookie_is_httponly_and_lax(browser: Browser, studios: dict[str, str]) -> None:
    page = browser.get(browser.host(studios["A"]), "/signin")
    xsrf = page.cookie("emustudio-xsrf")
    assert "httponly" in xsrf.attributes and xsrf.attributes["samesite"] == "Lax"
    assert "domain" not in xsrf.attributes


@pytest.mark.parametrize(
    "user_name, password",
    [("known", "Wrong-password-1"), ("nobody-" + "x" * 8, PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_wrong_credentials_are_refused_alike(
    browser: Browser, studios: dict[str, str], alice: str, user_name: str, password: str
) -> None:
    name = alice if user_name == "known" else user_name
    answer = browser.sign_in(studios["A"], name, password)
    assert answer.status == 401
    assert "Your authentication information is incorrect" in answer.body
    assert "emustudio-session" not in [c.name for c in answer.set_cookies]


def test_root_is_refused_with_a_reason(browser: Browser, studios: dict[str, str]) -> None:
    host = browser.host(studios["A"])
    page = browser.get(host, "/signin")
    for form in (
        {"account_type": "root", "username": "admin@example.com", "password": "test"},
        {"account_type": "iam", "username": "test", "password": "test"},  # the root key id
    ):
        answer = browser.post(host, "/signin", {"_xsrf": page.xsrf(), **form})
        assert answer.status == 403
        assert "root user signs in to the AWS Management Console, not to an EMR Studio" in (
            answer.body
        )


def test_a_user_without_create_studio_presigned_url_is_told_what_is_missing(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    bob = users.create(allow(LIST))
    answer = browser.sign_in(studios["A"], bob)
    assert answer.status == 403
    assert f"{bob} may not open this Studio" in answer.body
    assert (
        f"is not authorized to perform: {OPEN} on resource: {studio_arn(studios['A'])}"
        in answer.body
    )
    assert 'id="missing-permission"' in answer.body
    assert "emustudio-session" not in [c.name for c in answer.set_cookies]


def test_an_explicit_deny_wins(browser: Browser, users: Users, studios: dict[str, str]) -> None:
    carol = users.create(allow(OPEN), deny(OPEN, studio_arn(studios["A"])))
    assert browser.sign_in(studios["A"], carol).status == 403
    assert browser.sign_in(studios["B"], carol).status == 303


def test_studio_tags_decide_who_opens_it(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    """The documented ABAC pattern: CreateStudioPresignedUrl on studio/* by resource tag."""
    dave = users.create(
        allow(
            OPEN,
            studio_arn("*"),
            Condition={"StringEquals": {"elasticmapreduce:ResourceTag/team": "data"}},
        )
    )
    assert browser.sign_in(studios["A"], dave).status == 303  # team=data
    assert browser.sign_in(studios["B"], dave).status == 403  # team=ml


def test_posts_need_the_xsrf_token(browser: Browser, studios: dict[str, str], alice: str) -> None:
    host = browser.host(studios["A"])
    browser.get(host, "/signin")  # the XSRF cookie is set
    form = {"username": alice, "password": PASSWORD}
    assert browser.post(host, "/signin", form).status == 403
    forged = browser.post(host, "/signin", {**form, "_xsrf": "2|00|00|0"})
    assert forged.status == 403
    assert "did not come from this Studio" in forged.body
    assert browser.sign_in(studios["A"], alice).status == 303
    home = browser.get(host, "/")
    assert browser.post(host, "/signout", {}).status == 403  # signed in: still needs it
    assert browser.post(host, "/console/workspaces", {"name": "x"}).status == 403
    assert browser.get(host, "/").status == 200
    assert home.xsrf()


def test_a_form_from_another_studio_origin_is_refused(
    browser: Browser, studios: dict[str, str], alice: str
) -> None:
    """Studio hosts are one site: a sibling Studio's page could post with a tossed XSRF
    cookie, so a form must come from the Studio's own origin."""
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], alice).status == 303
    token = browser.get(host, "/").xsrf()
    other = f"http://{browser.host(studios['B'])}:{browser.port}"
    for headers in ({"Origin": other}, {"Sec-Fetch-Site": "same-site", "Origin": other}):
        answer = browser.post(host, "/signout", {"_xsrf": token}, headers=headers)
        assert answer.status == 403
    own = {"Origin": f"http://{host}:{browser.port}", "Sec-Fetch-Site": "same-origin"}
    assert browser.post(host, "/signout", {"_xsrf": token}, headers=own).status == 303


def test_a_session_of_one_studio_is_refused_on_another(
    browser: Browser, studios: dict[str, str], both: str
) -> None:
    a, b = studios["A"], studios["B"]
    assert browser.sign_in(a, both).status == 303
    cookie = browser.cookie_value("emustudio-session", browser.host(a))
    assert cookie is not None
    # The cookie is host-only; sent to B's host on purpose (or pasted), B refuses it.
    on_b = browser.get(browser.host(b), "/", headers={"Cookie": f"emustudio-session={cookie}"})
    assert on_b.status == 302 and on_b.location.startswith("/signin")
    # Path form: A's session under /studios/B/.
    assert browser.sign_in(a, both, path_form=True).status == 303
    cookie = browser.cookie_value("emustudio-session", "localhost", f"/studios/{a}/")
    on_b = browser.get(
        "localhost", f"/studios/{b}/", headers={"Cookie": f"emustudio-session={cookie}"}
    )
    assert on_b.status == 302 and on_b.location.startswith(f"/studios/{b}/signin")
    # A's own pages still take it.
    assert browser.get("localhost", f"/studios/{a}/").status == 200


def test_sign_out_ends_the_session_everywhere(
    browser: Browser, studios: dict[str, str], alice: str
) -> None:
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], alice).status == 303
    stolen = browser.cookie_value("emustudio-session", host)
    home = browser.get(host, "/")
    out = browser.post(host, "/signout", {"_xsrf": home.xsrf()})
    assert out.status == 303 and out.location == "/signin?signed_out=1"
    assert out.cookie("emustudio-session").deleted
    assert "You signed out" in browser.get(host, out.location).body
    replayed = browser.get(host, "/", headers={"Cookie": f"emustudio-session={stolen}"})
    assert replayed.status == 302


def test_a_forged_cookie_is_no_session(browser: Browser, studios: dict[str, str]) -> None:
    host = browser.host(studios["A"])
    for value in ("abc", '"2|1:0|10:1795875525|17:emustudio-session|4:YWJj|00"'):
        answer = browser.get(host, "/", headers={"Cookie": f"emustudio-session={value}"})
        assert answer.status == 302


def test_a_deleted_user_loses_the_session(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    erin = users.create(allow(OPEN))
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], erin).status == 303
    assert browser.get(host, "/").status == 200
    users.iam.delete_user_policy(UserName=erin, PolicyName="studio")
    users.iam.delete_login_profile(UserName=erin)
    users.iam.delete_user(UserName=erin)
    assert browser.get(host, "/").status == 302


def test_the_session_survives_a_gateway_restart(
    gateway: GatewayProcess, browser: Browser, studios: dict[str, str], alice: str
) -> None:
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], alice).status == 303
    gateway.restart()
    assert browser.get(host, "/").status == 200


def test_an_identity_center_studio_without_an_identity_source_says_so(
    browser: Browser, emr: Any, net: StudioNetwork
) -> None:
    """This gateway has no IdP for Identity Center: the sign-in page says what to configure,
    and the IAM user name and password form is not offered (tests/web/test_sso.py
    signs in through one)."""
    studio_id = emr.create_studio(
        **studio_args(
            net,
            Name="sso-studio",
            AuthMode="SSO",
            UserRole="arn:aws:iam::000000000000:role/EMRStudio_User_Role",
        )
    )["StudioId"]
    assert browser.get(browser.host(studio_id), "/").location == "/signin?next=%2F"
    for host, path in (
        (browser.host(studio_id), "/signin"),
        ("localhost", f"/studios/{studio_id}/signin"),
    ):
        page = browser.get(host, path)
        assert page.status == 503
        assert "IAM Identity Center has no identity source" in page.body
        assert 'name="password"' not in page.body


def test_an_unknown_studio_is_a_readable_404(browser: Browser) -> None:
    ghost = "es-" + "Z" * 25
    for host, path in ((browser.host(ghost), "/"), ("localhost", f"/studios/{ghost}/signin")):
        page = browser.get(host, path)
        assert page.status == 404
        assert f"There is no EMR Studio {ghost} in us-east-1" in page.body
        assert "Traceback" not in page.body
