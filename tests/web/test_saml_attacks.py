"""The SAML attack suite, end to end at the gateway's ``POST /saml`` (AWS sign-in's endpoint).

A real gateway, a real pysaml2 IdP (``tests/auth/forge.py``) registered with
``CreateSAMLProvider``, an IAM-mode Studio and roles trusting the provider. Each attack is posted
as an IdP's HTTP-POST form would be and must be refused the way a user and an auditor see it:

* an HTML page, 403, saying why in words (no stack trace), with the security headers;
* no session: no session cookie, no redirect to a handoff, and the Studio still asks to sign in;
* a CloudTrail ``AssumeRoleWithSAML`` event with ``errorCode`` and ``errorMessage``.

The attacker is a user of the IdP, ``alice@example.com.attacker.com``, allowed the ordinary
Studio role; the forgeries aim at the admin role or at the identity of ``alice@example.com``.
Controls in the same module: a valid response signs in (so the suite cannot pass by refusing
everything), and a comment injected into a signed NameID or RoleSessionName (which leaves the
signature valid) signs in as the *full* value, never the text before the comment (the
verifier reads all of an element's text; ElementTree also joins the text around a comment).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from emustudio.auth.federation import parse_relay_state
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT, allow, studio_arn
from emustudio.testing.pages import DOMAIN, Browser, Response
from emustudio.testing.vpc import StudioNetwork, studio_args
from tests.auth.forge import (
    ATTR,
    RESPONSE_SIGNED,
    XSW,
    Goal,
    Idp,
    b64,
    billion_laughs,
    inject_comment,
    set_attribute,
    shift_times,
    strip_signatures,
    xxe,
)

ACS = "https://signin.aws.amazon.com/saml"
OPEN = "elasticmapreduce:CreateStudioPresignedUrl"
VICTIM = "alice@example.com"
ATTACKER = "alice@example.com.attacker.com"
"""The attacker's own IdP user name: the victim's, a comment's width away."""
SECRET = "TOPSECRET-7f3a"
INVALID = "Your request included an invalid SAML response."
DENIED = "Not authorized to perform sts:AssumeRoleWithSAML"


def trust(provider: str, **conditions: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider},
                    "Action": "sts:AssumeRoleWithSAML",
                    "Condition": {"StringEquals": {"SAML:aud": ACS, **conditions}},
                }
            ],
        }
    )


@dataclass
class Setup:
    gateway: GatewayProcess
    idp: Idp
    other_key: Idp
    """The same entity ID as ``idp`` with another key: the attacker's own signer."""
    provider: str
    studio_id: str
    roles: dict[str, str]
    secret: Path
    events_seen: set[str] = field(default_factory=set)

    @property
    def relay_state(self) -> str:
        return f"http://{self.studio_id.lower()}.emrstudio.localhost:{self.gateway.port}/"

    @property
    def goal(self) -> Goal:
        """What the wrapping attacks want: the admin role, as the victim."""
        return Goal(
            role=f"{self.roles['admin']},{self.provider}", session_name=VICTIM, name_id=VICTIM
        )

    def identity(self, role: str = "user", session_name: str = ATTACKER) -> dict[str, list[str]]:
        return {
            ATTR + "Role": [f"{self.roles[role]},{self.provider}"],
            ATTR + "RoleSessionName": [session_name],
        }

    def response(
        self,
        *,
        role: str = "user",
        name_id: str = ATTACKER,
        session_name: str = ATTACKER,
        idp: Idp | None = None,
        **kwargs: Any,
    ) -> str:
        """A response the IdP signs for the attacker (XML)."""
        return (idp or self.idp).response(
            name_id=name_id, identity=self.identity(role, session_name), **kwargs
        )

    def post(self, xml: str) -> tuple[Browser, Response]:
        """POST /saml from a fresh browser, as the IdP's auto-submitted form."""
        browser = Browser(self.gateway.port)
        form = {"SAMLResponse": b64(xml), "RelayState": self.relay_state}
        return browser, browser.post("localhost", "/saml", form)

    def new_events(self) -> list[dict[str, Any]]:
        """The ``AssumeRoleWithSAML`` events recorded since the last call."""
        pages = (
            self.gateway.client("cloudtrail")
            .get_paginator("lookup_events")
            .paginate(
                LookupAttributes=[
                    {"AttributeKey": "EventName", "AttributeValue": "AssumeRoleWithSAML"}
                ]
            )
        )
        events = {e["EventId"]: e for page in pages for e in page["Events"]}
        new = [
            json.loads(e["CloudTrailEvent"]) for k, e in events.items() if k not in self.events_seen
        ]
        self.events_seen |= set(events)
        return new


@pytest.fixture(scope="module")
def setup(
    gateway: GatewayProcess,
    emr: Any,
    net: StudioNetwork,
    tmp_path_factory: pytest.TempPathFactory,
) -> Setup:
    directory = tmp_path_factory.mktemp("attacks")
    idp, other_key = Idp(directory, "idp"), Idp(directory, "attacker-key")
    iam = gateway.client("iam")
    provider = str(
        iam.create_saml_provider(Name="AttackedIdp", SAMLMetadataDocument=idp.metadata())[
            "SAMLProviderArn"
        ]
    )
    studio_id = emr.create_studio(**studio_args(net, Name="attacked"))["StudioId"]
    someone_else = provider.replace("AttackedIdp", "SomeoneElse")
    specs = {
        # name: (trust policy, permissions)
        "user": (trust(provider), [allow(OPEN, studio_arn(studio_id))]),
        "admin": (trust(provider), [allow("*")]),
        "untrusting": (trust(someone_else), [allow(OPEN, studio_arn(studio_id))]),
        "victim-only": (trust(provider, **{"saml:sub": VICTIM}), [allow(OPEN)]),
        "attacker-only": (trust(provider, **{"saml:sub": ATTACKER}), [allow(OPEN)]),
    }
    roles = {}
    for name, (policy, statements) in specs.items():
        role_name = "Attack-" + name.title().replace("-", "")
        roles[name] = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=policy)["Role"][
            "Arn"
        ]
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName="studio",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    secret = directory / "secret.txt"
    secret.write_text(SECRET)
    made = Setup(gateway, idp, other_key, provider, studio_id, roles, secret)
    made.new_events()
    return made


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("script", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


# --- the attacks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    forge: Callable[[Setup], str]
    says: tuple[str, ...]
    """Phrases the page's visible text and the CloudTrail errorMessage both carry."""
    error_code: str = "InvalidIdentityToken"
    role: str | None = None
    """The role whose assumption is refused (recorded as ``requestParameters.roleArn``)."""


def wrapped(variant: str) -> Callable[[Setup], str]:
    def forge(s: Setup) -> str:
        on_response = variant in RESPONSE_SIGNED
        signed = s.response(sign_response=on_response, sign_assertion=not on_response)
        return XSW[variant](signed, s.goal)

    return forge


def unsigned_admin(s: Setup) -> str:
    xml = strip_signatures(s.response(sign_response=True, sign_assertion=True))
    return set_attribute(xml, ATTR + "Role", [s.goal.role])


def edited_and_resigned(edit: Callable[[str], str]) -> Callable[[Setup], str]:
    """The IdP signed it, for another purpose: an edit stands for that, then the IdP's key."""

    def forge(s: Setup) -> str:
        return s.idp.sign_assertion(edit(s.response(sign_assertion=False)))

    return forge


def replayed(s: Setup) -> str:
    xml = s.response()
    _, first = s.post(xml)
    assert first.status == 303, first.body  # it signed in once
    return xml


def comment_in_name_id_for_the_victim(s: Setup) -> str:
    signed = s.response(role="victim-only", session_name="mallory")
    return inject_comment(signed, ATTACKER, len(VICTIM))


EVIL_DESTINATION = "https://sp.example/acs?next=<b>x</b>"
ATTACKS: dict[str, Attack] = {
    **{
        variant.lower(): Attack(
            wrapped(variant),
            (INVALID, "must hold exactly one Assertion", "signature wrapping"),
        )
        for variant in sorted(XSW)
    },
    "signature-removed": Attack(
        unsigned_admin, (INVALID, "Neither the Response nor the Assertion is signed")
    ),
    "signed-by-another-key": Attack(
        lambda s: s.response(role="admin", name_id=VICTIM, session_name=VICTIM, idp=s.other_key),
        (INVALID, "The signature cannot be verified with the IdP's certificate"),
    ),
    "wrong-audience": Attack(
        edited_and_resigned(lambda x: x.replace(">urn:amazon:webservices<", ">urn:example:sp<")),
        (INVALID, "The assertion's Audience is not this SP"),
    ),
    "wrong-recipient": Attack(
        edited_and_resigned(
            lambda x: x.replace(f'Recipient="{ACS}"', 'Recipient="https://sp.example/acs"')
        ),
        (INVALID, "Recipient 'https://sp.example/acs' is not this ACS"),
    ),
    "wrong-destination": Attack(
        lambda s: s.response().replace(
            f'Destination="{ACS}"', 'Destination="https://sp.example/acs?next=&lt;b&gt;x&lt;/b&gt;"'
        ),
        (INVALID, f"Destination {EVIL_DESTINATION!r} is not this ACS {ACS!r}"),
    ),
    "expired": Attack(
        edited_and_resigned(lambda x: shift_times(x, -timedelta(hours=1))),
        (INVALID, "The assertion has expired"),
    ),
    "not-yet-valid": Attack(
        edited_and_resigned(lambda x: shift_times(x, timedelta(hours=1))),
        (INVALID, "The assertion is not yet valid"),
    ),
    "replayed": Attack(replayed, (INVALID, "was already used (replay)")),
    "in-response-to-unknown": Attack(
        lambda s: s.response(in_response_to="id-never-sent"),
        (INVALID, "InResponseTo 'id-never-sent' is not a request this SP sent"),
    ),
    "xxe": Attack(
        lambda s: xxe(s.response(), s.secret, value=ATTACKER),
        (INVALID, "The SAMLResponse has a DTD or entities, refused"),
    ),
    "billion-laughs": Attack(
        lambda s: billion_laughs(s.response(), value=ATTACKER),
        (INVALID, "The SAMLResponse has a DTD or entities, refused"),
    ),
    "oversized": Attack(
        lambda s: s.response() + f"<!--{'x' * 400_000}-->",
        (INVALID, "The SAMLResponse is too large"),
    ),
    "role-not-trusting-the-provider": Attack(
        lambda s: s.response(role="untrusting"),
        ("Not authorized to assume", DENIED),
        "AccessDenied",
        "untrusting",
    ),
    "comment-in-name-id": Attack(
        comment_in_name_id_for_the_victim,
        ("Not authorized to assume", DENIED),
        "AccessDenied",
        "victim-only",
    ),
}

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_with_a_page_a_trail_and_no_session(setup: Setup, name: str) -> None:
    attack = ATTACKS[name]
    xml = attack.forge(setup)
    setup.new_events()  # the events before the attempt (a replay's first sign-in among them)
    browser, page = setup.post(xml)

    # A page that says why, in words.
    assert page.status == 403, page.body
    assert page.headers.get("Content-Type", "").startswith("text/html")
    text = visible_text(page.body)
    for phrase in attack.says:
        assert phrase in text, text
    if attack.role is not None:
        assert setup.roles[attack.role] in text
    assert "Traceback" not in page.body and SECRET not in page.body
    assert "<b>" not in page.body  # the attacker's markup in a reason is escaped
    for header, value in SECURITY_HEADERS.items():
        assert page.headers.get(header) == value
    assert "frame-ancestors 'none'" in page.headers.get("Content-Security-Policy", "")

    # No session: no cookie, no handoff, the Studio still asks to sign in.
    assert not any(c.name == "emustudio-session" for c in page.set_cookies)
    assert not page.location and "/federation/handoff" not in page.body
    home = browser.get(browser.host(setup.studio_id), "/")
    assert home.status in (302, 303) and home.location.startswith("/signin"), home.body

    # One CloudTrail event for this attempt, with the error.
    events = setup.new_events()
    assert len(events) == 1, events
    event = events[0]
    assert event["eventSource"] == "sts.amazonaws.com"
    assert event["errorCode"] == attack.error_code
    for phrase in attack.says[1:]:
        assert phrase in event["errorMessage"]
    assert SECRET not in json.dumps(event)
    if attack.role is not None:
        assert event["requestParameters"]["roleArn"] == setup.roles[attack.role]
    assert not event.get("responseElements")


# --- what must still sign in ------------------------------------------------------------------


def sign_in(setup: Setup, xml: str) -> str:
    """POST /saml, follow the handoff to the Studio; the Studio's home page (signed in)."""
    browser, posted = setup.post(xml)
    assert posted.status == 303, visible_text(posted.body)
    url = urlsplit(posted.location)
    assert url.hostname == browser.host(setup.studio_id)
    assert url.path == "/federation/handoff"
    landed = browser.get(browser.host(setup.studio_id), f"{url.path}?{url.query}")
    assert landed.status == 303 and landed.cookie("emustudio-session")
    home = browser.get(browser.host(setup.studio_id), "/")
    assert home.status == 200, home.body
    return home.body


def assumed(setup: Setup, role: str, session_name: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[1]}/{session_name}"


def the_success(setup: Setup, arn: str) -> None:
    events = setup.new_events()
    assert len(events) == 1, events
    assert "errorCode" not in events[0]
    assert events[0]["responseElements"]["assumedRoleUser"]["arn"] == arn


@pytest.mark.parametrize("signed", ["assertion", "response"])
def test_control_a_valid_response_signs_in(setup: Setup, signed: str) -> None:
    xml = setup.response(
        name_id=VICTIM,
        session_name=VICTIM,
        sign_assertion=signed == "assertion",
        sign_response=signed == "response",
    )
    setup.new_events()
    home = sign_in(setup, xml)
    arn = assumed(setup, setup.roles["user"], VICTIM)
    assert arn in home and VICTIM in visible_text(home)
    the_success(setup, arn)


def test_a_comment_in_the_role_session_name_keeps_the_full_name(setup: Setup) -> None:
    signed = setup.response(name_id="mallory")
    xml = inject_comment(signed, ATTACKER, len(VICTIM))
    assert f">{VICTIM}<!---->.attacker.com<" in xml
    setup.new_events()
    home = sign_in(setup, xml)
    arn = assumed(setup, setup.roles["user"], ATTACKER)
    assert arn in home and ATTACKER in visible_text(home)
    # Nowhere the name cut at the comment.
    assert not re.search(rf"{re.escape(VICTIM)}(?!\.attacker\.com)", home)
    the_success(setup, arn)


def test_a_comment_in_the_name_id_keeps_the_full_identity(setup: Setup) -> None:
    # The role trusts only saml:sub == the full value: it lets the attacker in as themself
    # (the victim-only role refused the same trick in the attack suite).
    signed = setup.response(role="attacker-only", session_name="mallory")
    xml = inject_comment(signed, ATTACKER, len(VICTIM))
    assert f">{VICTIM}<!---->.attacker.com<" in xml
    setup.new_events()
    home = sign_in(setup, xml)
    arn = assumed(setup, setup.roles["attacker-only"], "mallory")
    assert arn in home
    the_success(setup, arn)


def test_a_malformed_relay_state_lands_as_none_would(setup: Setup) -> None:
    # RelayState is not signed: anything may come. One urlsplit cannot parse is treated as no
    # RelayState at all (the console's landing), not answered with a server error.
    assert parse_relay_state("http://[::1", region="us-east-1", studio_domain=DOMAIN) is None
    answers = []
    for relay in ("http://[::1", ""):
        browser = Browser(setup.gateway.port)
        form = {"SAMLResponse": b64(setup.response()), "RelayState": relay}
        answers.append(browser.post("localhost", "/saml", form))
    malformed, none = answers
    assert malformed.status == none.status and malformed.status < 400, malformed.body
    assert malformed.location == none.location


def test_a_replay_after_a_gateway_restart_is_still_refused(setup: Setup) -> None:
    """The used assertion IDs are in the store: restarting within the assertion's lifetime
    does not make it usable again."""
    xml = setup.response()
    _, first = setup.post(xml)
    assert first.status == 303, first.body
    setup.gateway.restart()
    _, again = setup.post(xml)
    assert again.status == 403
    assert "was already used (replay)" in visible_text(again.body)
    assert not again.set_cookies and not again.location
