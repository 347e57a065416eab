"""SSO-mode Studios: IAM Identity Center sign-in through the built-in IdP, against a real gateway.

The administrator provisions Identity Store users and groups (boto3 ``identitystore``), maps
groups to the Studio with session policies (``CreateStudioSessionMapping``), and the users sign
in from the Studio's URL: an AuthnRequest to the IdP, its signed answer to Identity Center's
ACS, a session of the Studio's UserRole limited by the mapped policies. What the session may do
is checked with real calls made with the session's own credentials (its credentials page).
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.exceptions
import pytest
import yaml
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID

from emustudio.auth.idp import AuthnAsk, BuiltinIdp, UsersFile
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import EMR_SERVICE, allow, create_role, identity_store_of
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args

PASSWORD = "Idc-Password-4"
IDP_USERS = ("dana", "erin", "frank", "ghost")  # ghost: known to the IdP, not to Identity Center


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("idc-users") / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {name: {"password": PASSWORD} for name in IDP_USERS}}))
    return path


@pytest.fixture(scope="module")
def gateway_env(users_file: Path) -> dict[str, str]:
    return {"EMUSTUDIO_IDP_USERS_FILE": str(users_file)}


def managed_policy(iam: Any, name: str, actions: list[str]) -> str:
    document = {"Version": "2012-10-17", "Statement": [allow(actions)]}
    return str(
        iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    )


@pytest.fixture(scope="module")
def directory(gateway: GatewayProcess, emr: Any, net: StudioNetwork) -> dict[str, str]:
    """Identity Center users and groups, an SSO-mode Studio, its user role and group mappings.

    The user role allows ListEditors, DescribeStudio, ListStudios and ec2:DescribeVpcs. The
    analysts' policy allows ListEditors, DescribeVpcs and iam:ListUsers (not in the role); the
    viewers' allows DescribeStudio. Dana is in both groups, Erin only in viewers, Frank in none.
    """
    iam = gateway.client("iam")
    role = create_role(
        iam,
        "IdcStudioUser",
        EMR_SERVICE,
        ["sts:AssumeRole", "sts:SetContext"],
        allow(
            [
                "elasticmapreduce:ListEditors",
                "elasticmapreduce:DescribeStudio",
                "elasticmapreduce:ListStudios",
                "ec2:DescribeVpcs",
            ]
        ),
    )
    analysts_policy = managed_policy(
        iam,
        "IdcAnalysts",
        ["elasticmapreduce:ListEditors", "ec2:DescribeVpcs", "iam:ListUsers"],
    )
    viewers_policy = managed_policy(iam, "IdcViewers", ["elasticmapreduce:DescribeStudio"])
    studio_id = emr.create_studio(
        **studio_args(net, Name="idc-studio", AuthMode="SSO", UserRole=role)
    )["StudioId"]
    ids = gateway.client("identitystore")
    store = identity_store_of(gateway)
    user_ids = {
        name: ids.create_user(
            IdentityStoreId=store,
            UserName=name,
            DisplayName=name.title(),
            Name={"GivenName": name.title(), "FamilyName": "Example"},
        )["UserId"]
        for name in ("dana", "erin", "frank")
    }
    groups = {
        name: ids.create_group(IdentityStoreId=store, DisplayName=name)["GroupId"]
        for name in ("analysts", "viewers")
    }
    for user, group in (("dana", "analysts"), ("dana", "viewers"), ("erin", "viewers")):
        ids.create_group_membership(
            IdentityStoreId=store, GroupId=groups[group], MemberId={"UserId": user_ids[user]}
        )
    for group, policy in (("analysts", analysts_policy), ("viewers", viewers_policy)):
        emr.create_studio_session_mapping(
            StudioId=studio_id,
            IdentityName=group,
            IdentityType="GROUP",
            SessionPolicyArn=policy,
        )
    return {
        "studio": studio_id,
        "role": role,
        "analysts_policy": analysts_policy,
        "viewers_policy": viewers_policy,
    }


# --- the browser's part ------------------------------------------------------------------------


def auto_post(page: Any) -> tuple[str, dict[str, str]]:
    assert page.status == 200, page.body
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', page.body)
    assert action, page.body
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', page.body)
    }
    return html.unescape(action.group(1)), fields


def to_identity_provider(
    browser: Browser, studio_id: str, user: str, password: str = PASSWORD
) -> dict[str, str]:
    """From the Studio's URL through the IdP's login to its auto-post: the form's fields."""
    redirect = browser.get(browser.host(studio_id), "/signin")
    assert redirect.status == 302, redirect.body
    url = urlsplit(redirect.location)
    assert (url.hostname, url.port, url.path) == ("localhost", browser.port, "/idp/sso")
    assert "SAMLRequest=" in url.query
    sso = f"{url.path}?{url.query}"
    to_login = browser.get("localhost", sso)
    if to_login.status == 302:  # not signed in at the IdP yet
        login = browser.get("localhost", to_login.location)
        signed = browser.post(
            "localhost",
            "/idp/login",
            {"_xsrf": login.xsrf(), "username": user, "password": password, "next": sso},
        )
        assert signed.status == 303, signed.body
        to_login = browser.get("localhost", sso)
    action, fields = auto_post(to_login)
    assert action == f"http://localhost:{browser.port}/sso/saml"
    return fields


def sign_in(browser: Browser, studio_id: str, user: str, password: str = PASSWORD) -> Any:
    """Sign in to the Studio as ``user``; the Studio's home page."""
    fields = to_identity_provider(browser, studio_id, user, password)
    posted = browser.post("localhost", "/sso/saml", fields)
    assert posted.status == 303, posted.body
    url = urlsplit(posted.location)
    assert url.hostname == browser.host(studio_id) and url.path == "/federation/handoff"
    landed = browser.get(url.hostname, f"{url.path}?{url.query}")
    assert landed.status == 303, landed.body
    home = browser.get(browser.host(studio_id), "/")
    assert home.status == 200, home.body
    return home


def session_client(gateway: GatewayProcess, browser: Browser, studio_id: str, service: str) -> Any:
    """A boto3 client with the signed-in session's credentials, read from its credentials page."""
    page = browser.get(browser.host(studio_id), "/credentials")
    assert page.status == 200, page.body
    assert page.headers["Cache-Control"] == "no-store"
    values = dict(re.findall(r"export (AWS_\w+)=(\S+)", html.unescape(page.body)))
    return gateway.client(
        service,
        aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=values["AWS_SESSION_TOKEN"],
    )


def allowed(call: Any, **params: Any) -> bool:
    try:
        call(**params)
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] in (
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
        ), exc
        return False
    return True


def permissions(gateway: GatewayProcess, browser: Browser, studio_id: str) -> dict[str, bool]:
    emr = session_client(gateway, browser, studio_id, "emr")
    ec2 = session_client(gateway, browser, studio_id, "ec2")
    iam = session_client(gateway, browser, studio_id, "iam")
    return {
        "ListEditors": allowed(
            session_client(gateway, browser, studio_id, "emr-studio").list_editors
        ),
        "DescribeStudio": allowed(emr.describe_studio, StudioId=studio_id),
        "ListStudios": allowed(emr.list_studios),
        "DescribeVpcs": allowed(ec2.describe_vpcs),
        "ListUsers": allowed(iam.list_users),
    }


def authenticate_events(gateway: GatewayProcess) -> list[dict[str, Any]]:
    trail = gateway.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Authenticate"}]
    )["Events"]
    return [json.loads(e["CloudTrailEvent"]) for e in events]


# --- the stories -------------------------------------------------------------------------------


def test_a_user_in_two_groups_gets_the_union_within_the_user_role(
    gateway: GatewayProcess, directory: dict[str, str]
) -> None:
    browser = Browser(gateway.port)
    home = sign_in(browser, directory["studio"], "dana")
    assert "dana" in home.body and "Workspaces" in home.body
    assert permissions(gateway, browser, directory["studio"]) == {
        "ListEditors": True,  # analysts' policy, in the role
        "DescribeStudio": True,  # viewers' policy, in the role: the union of the groups
        "ListStudios": False,  # the role allows it, no mapped policy does
        "DescribeVpcs": True,
        "ListUsers": False,  # the analysts' policy allows it, the role does not
    }
    who = session_client(gateway, browser, directory["studio"], "sts").get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::000000000000:assumed-role/IdcStudioUser/dana"
    event = authenticate_events(gateway)[0]
    assert event["eventSource"] == "sso.amazonaws.com" and "errorCode" not in event
    assert event["requestParameters"]["userName"] == "dana"


def test_one_group_gets_that_groups_policy_only(
    gateway: GatewayProcess, directory: dict[str, str]
) -> None:
    browser = Browser(gateway.port)
    sign_in(browser, directory["studio"], "erin")
    assert permissions(gateway, browser, directory["studio"]) == {
        "ListEditors": False,
        "DescribeStudio": True,
        "ListStudios": False,
        "DescribeVpcs": False,
        "ListUsers": False,
    }


def test_a_user_without_a_mapping_is_refused_with_a_page(
    gateway: GatewayProcess, directory: dict[str, str]
) -> None:
    browser = Browser(gateway.port)
    fields = to_identity_provider(browser, directory["studio"], "frank")
    page = browser.post("localhost", "/sso/saml", fields)
    assert page.status == 403
    assert "frank is not assigned to the EMR Studio idc-studio" in html.unescape(page.body)
    assert "Traceback" not in page.body
    assert not page.location and not page.set_cookies
    assert browser.get(browser.host(directory["studio"]), "/").status == 302
    event = authenticate_events(gateway)[0]
    assert event["errorCode"] == "AccessDenied"
    assert event["requestParameters"] == {"studioId": directory["studio"], "userName": "frank"}


def test_a_user_unknown_to_identity_center_is_refused(
    gateway: GatewayProcess, directory: dict[str, str]
) -> None:
    browser = Browser(gateway.port)
    page = browser.post(
        "localhost", "/sso/saml", to_identity_provider(browser, directory["studio"], "ghost")
    )
    assert page.status == 403
    assert "ghost is not a user of this IAM Identity Center directory" in html.unescape(page.body)
    assert not page.set_cookies


def test_a_changed_mapping_applies_from_the_next_sign_in(
    gateway: GatewayProcess, emr: Any, directory: dict[str, str]
) -> None:
    studio_id = directory["studio"]
    before = Browser(gateway.port)
    sign_in(before, studio_id, "erin")
    emr.update_studio_session_mapping(
        StudioId=studio_id,
        IdentityName="viewers",
        IdentityType="GROUP",
        SessionPolicyArn=directory["analysts_policy"],
    )
    try:
        # The session already open keeps what it was given.
        kept = permissions(gateway, before, studio_id)
        assert kept["DescribeStudio"] and not kept["ListEditors"]
        after = Browser(gateway.port)
        sign_in(after, studio_id, "erin")
        now = permissions(gateway, after, studio_id)
        assert now["ListEditors"] and not now["DescribeStudio"]
    finally:
        emr.update_studio_session_mapping(
            StudioId=studio_id,
            IdentityName="viewers",
            IdentityType="GROUP",
            SessionPolicyArn=directory["viewers_policy"],
        )


def test_the_path_form_lands_under_the_gateway_host(
    gateway: GatewayProcess, directory: dict[str, str]
) -> None:
    browser = Browser(gateway.port)
    studio_id = directory["studio"]
    redirect = browser.get("localhost", f"/studios/{studio_id}/signin")
    assert redirect.status == 302 and "/idp/sso?SAMLRequest=" in redirect.location
    url = urlsplit(redirect.location)
    login_redirect = browser.get("localhost", f"{url.path}?{url.query}")
    login = browser.get("localhost", login_redirect.location)
    browser.post(
        "localhost",
        "/idp/login",
        {
            "_xsrf": login.xsrf(),
            "username": "dana",
            "password": PASSWORD,
            "next": f"{url.path}?{url.query}",
        },
    )
    _, fields = auto_post(browser.get("localhost", f"{url.path}?{url.query}"))
    posted = browser.post("localhost", "/sso/saml", fields)
    assert posted.status == 303
    assert posted.location.startswith(f"/studios/{studio_id}/federation/handoff?token=")
    assert browser.get("localhost", posted.location).status == 303
    home = browser.get("localhost", f"/studios/{studio_id}/")
    assert home.status == 200 and "dana" in home.body


def test_the_password_form_is_not_for_sso_studios(
    gateway: GatewayProcess, directory: dict[str, str]
) -> None:
    browser = Browser(gateway.port)
    host = browser.host(directory["studio"])
    page = browser.get("localhost", "/idp/login")  # any page: for the XSRF cookie and token
    token = page.xsrf()
    xsrf_cookie = browser.cookie_value("emustudio-xsrf", "localhost")
    assert xsrf_cookie
    refused = browser.post(
        host,
        "/signin",
        {"_xsrf": token, "username": "dana", "password": PASSWORD},
        headers={
            "Cookie": f"emustudio-xsrf={xsrf_cookie}",
            "Origin": f"http://{host}:{browser.port}",
        },
    )
    assert refused.status == 400
    assert "uses IAM Identity Center" in html.unescape(refused.body)


# --- attacks on Identity Center's ACS ----------------------------------------------------------


@pytest.fixture(scope="module")
def forger(gateway: GatewayProcess, users_file: Path, directory: dict[str, str]) -> BuiltinIdp:
    """The built-in IdP's own key, in-process: validly signed responses of our choosing."""
    sp = Browser(gateway.port).get("localhost", "/sso/saml/metadata")
    assert sp.status == 200 and "AssertionConsumerService" in sp.body
    return BuiltinIdp(
        UsersFile(users_file),
        gateway.data_dir,
        base_url=f"http://localhost:{gateway.port}",
        service_providers=(sp.body,),
    )


def refused_at_acs(gateway: GatewayProcess, saml_response: str, reason: str) -> None:
    browser = Browser(gateway.port)
    page = browser.post("localhost", "/sso/saml", {"SAMLResponse": saml_response})
    assert page.status == 403, page.body
    assert reason in html.unescape(page.body)
    assert not page.set_cookies and not page.location
    event = authenticate_events(gateway)[0]
    assert event["errorCode"] == "InvalidSamlResponse"
    assert reason in event["errorMessage"]


def test_an_unsolicited_response_is_refused(
    gateway: GatewayProcess, forger: BuiltinIdp, directory: dict[str, str]
) -> None:
    """Signed by the trusted IdP, addressed to Identity Center, but answering no request."""
    entity = re.search(
        r'entityID="([^"]+)"', Browser(gateway.port).get("localhost", "/sso/saml/metadata").body
    )
    assert entity
    unsolicited = forger.server.create_authn_response(
        {},
        in_response_to=None,
        destination=f"http://localhost:{gateway.port}/sso/saml",
        sp_entity_id=entity.group(1),
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="dana"),
        userid="dana",
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_response=False,
        sign_assertion=True,
    )
    forged = base64.b64encode(str(unsolicited).encode()).decode()
    refused_at_acs(gateway, forged, "Unsolicited response (no InResponseTo) refused.")


def test_an_unknown_in_response_to_is_refused(
    gateway: GatewayProcess, forger: BuiltinIdp, directory: dict[str, str]
) -> None:
    entity = re.search(
        r'entityID="([^"]+)"', Browser(gateway.port).get("localhost", "/sso/saml/metadata").body
    )
    assert entity
    ask = AuthnAsk("id-not-ours", entity.group(1), f"http://localhost:{gateway.port}/sso/saml")
    user = forger.users.get("dana")
    assert user is not None
    refused_at_acs(
        gateway, forger.response_to(ask, user), "InResponseTo 'id-not-ours' is not a request"
    )


def test_a_response_is_good_once(gateway: GatewayProcess, directory: dict[str, str]) -> None:
    browser = Browser(gateway.port)
    fields = to_identity_provider(browser, directory["studio"], "dana")
    assert browser.post("localhost", "/sso/saml", fields).status == 303
    refused_at_acs(gateway, fields["SAMLResponse"], "is not a request this SP sent")


def test_an_aws_sign_in_response_is_not_for_identity_center(
    gateway: GatewayProcess, forger: BuiltinIdp, directory: dict[str, str]
) -> None:
    """A response the IdP addressed to AWS sign-in (IdP-initiated) does not open an SSO Studio."""
    user = forger.users.get("dana")
    assert user is not None
    refused_at_acs(gateway, forger.response(user), "is not this ACS")


# --- in a real browser -------------------------------------------------------------------------


def test_in_chromium_a_group_member_signs_in_and_an_outsider_is_refused(
    gateway: GatewayProcess, directory: dict[str, str], chromium: Any
) -> None:
    studio_url = f"http://{directory['studio'].lower()}.emrstudio.localhost:{gateway.port}/"

    def through_the_idp(user: str) -> Any:
        page = chromium.new_page()
        page.goto(studio_url)
        page.wait_for_url(re.compile(r"/idp/login\?"))
        page.fill('input[name="username"]', user)
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        return page

    page = through_the_idp("dana")  # in analysts and viewers
    page.wait_for_url(studio_url)
    assert page.locator(".who").inner_text() == "dana"
    assert page.locator("h1, h2").filter(has_text="Workspaces").count() >= 1
    page.get_by_role("link", name="AWS credentials").click()  # the Studio's navigation
    page.wait_for_url(studio_url + "credentials")
    assert "assumed-role/IdcStudioUser/dana" in page.locator("#credentials").inner_text()
    page.close()

    chromium.clear_cookies()  # another person at the same browser
    refused = through_the_idp("frank")  # in no mapped group
    refused.wait_for_url(f"http://localhost:{gateway.port}/sso/saml")
    assert "frank is not assigned to the EMR Studio idc-studio" in refused.inner_text("#error")
    # The IdP remembers frank, the Studio does not: back at the Studio URL, refused again.
    refused.goto(studio_url)
    refused.wait_for_url(f"http://localhost:{gateway.port}/sso/saml")
    assert "is not assigned" in refused.inner_text("#error")


# --- an external IdP as Identity Center's identity source ---------------------------------------


def test_an_external_idp_is_identity_centers_source(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``EMUSTUDIO_IDC_IDP_METADATA_FILE`` names another IdP (its own key, entity id and sign-on
    URL): the Studio sends the browser there, and its signed answer opens the Studio."""
    where = tmp_path_factory.mktemp("external-idp")
    metadata_file = where / "idp-metadata.xml"
    users = where / "users.yaml"
    users.write_text(yaml.safe_dump({"users": {"kim": {"password": PASSWORD}}}))
    gw = GatewayProcess(env={"EMUSTUDIO_IDC_IDP_METADATA_FILE": str(metadata_file)})
    try:
        gw.start()
        browser = Browser(gw.port)
        sp = browser.get("localhost", "/sso/saml/metadata")
        assert sp.status == 200
        # Another IdP, elsewhere; it is never contacted over the network by the gateway.
        external = BuiltinIdp(
            UsersFile(users),
            where,
            base_url="https://idp.corp.example",
            service_providers=(sp.body,),
        )
        metadata_file.write_text(external.metadata())

        iam = gw.client("iam")
        create_role(
            iam,
            "ExtStudioUser",
            EMR_SERVICE,
            "sts:AssumeRole",
            allow("elasticmapreduce:ListEditors"),
        )
        policy = managed_policy(iam, "ExtSession", ["elasticmapreduce:ListEditors"])
        emr = gw.client("emr")
        net = make_studio_network(gw.client("ec2"), subnets=1)
        studio_id = emr.create_studio(
            **studio_args(
                net,
                Name="ext-studio",
                AuthMode="SSO",
                UserRole="arn:aws:iam::000000000000:role/ExtStudioUser",
            )
        )["StudioId"]
        user_id = gw.client("identitystore").create_user(
            IdentityStoreId=identity_store_of(gw),
            UserName="kim",
            DisplayName="Kim",
            Name={"GivenName": "Kim", "FamilyName": "Example"},
        )["UserId"]
        emr.create_studio_session_mapping(
            StudioId=studio_id, IdentityId=user_id, IdentityType="USER", SessionPolicyArn=policy
        )

        redirect = browser.get(browser.host(studio_id), "/signin")
        url = urlsplit(redirect.location)
        assert (url.scheme, url.hostname, url.path) == ("https", "idp.corp.example", "/idp/sso")
        saml_request = parse_qs(url.query)["SAMLRequest"][0]
        ask = external.parse_request(saml_request)
        assert ask.acs_url == f"http://localhost:{gw.port}/sso/saml"
        kim = external.users.get("kim")
        assert kim is not None
        posted = browser.post(
            "localhost", "/sso/saml", {"SAMLResponse": external.response_to(ask, kim)}
        )
        assert posted.status == 303, posted.body
        handoff = urlsplit(posted.location)
        assert browser.get(handoff.hostname or "", f"{handoff.path}?{handoff.query}").status == 303
        home = browser.get(browser.host(studio_id), "/")
        assert home.status == 200 and "kim" in home.body
        # The built-in IdP's key is not the trusted one: nothing else signs in.
        assert browser.get("localhost", "/idp/metadata").status == 404
    finally:
        gw.close()
