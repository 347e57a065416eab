"""verify_saml_response against a real pysaml2 IdP with a fresh RSA key, and the usual attacks."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree as SafeET
from saml2 import xmldsig as ds

from emustudio.auth.saml import (
    AWS_ACS_URL,
    ROLE,
    InMemoryReplayCache,
    SamlRejected,
    aws_attributes,
    sts_verifier,
    verify_saml_response,
)
from emustudio.services.sts.common import InvalidIdentityToken
from tests.auth.forge import (
    ATTR,
    IDP_ID,
    PROVIDER_ARN,
    RESPONSE_SIGNED,
    ROLE_ARN,
    XSW,
    Goal,
    Idp,
    assertion_span,
    b64,
    billion_laughs,
    evil_assertion,
    inject_comment,
    shift_times,
    strip_signatures,
    xxe,
)

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
ADMIN = Goal(
    role=f"{PROVIDER_ARN},arn:aws:iam::123456789012:role/Admin",
    session_name="admin",
    name_id="admin@example.com",
)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    return Idp(tmp_path_factory.mktemp("idp"), "idp")


@pytest.fixture(scope="module")
def metadata(idp: Idp) -> str:
    return idp.metadata()


def verify(xml: str, metadata: str, **kwargs: Any) -> Any:
    kwargs.setdefault("acs_url", AWS_ACS_URL)
    kwargs.setdefault("replay_cache", InMemoryReplayCache())
    return verify_saml_response(b64(xml), idp_metadata_xml=metadata, **kwargs)


def refused(xml: str, metadata: str, match: str, **kwargs: Any) -> str:
    with pytest.raises(SamlRejected, match=match) as info:
        verify(xml, metadata, **kwargs)
    return info.value.reason


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion"), [(False, True), (True, False), (True, True)]
)
def test_valid_response_yields_the_aws_attributes(
    idp: Idp, metadata: str, sign_response: bool, sign_assertion: bool
) -> None:
    xml = idp.response(sign_response=sign_response, sign_assertion=sign_assertion)
    facts = verify(xml, metadata)
    assert facts.subject == "alice@example.com"
    assert facts.subject_type == "persistent"
    assert facts.issuer == IDP_ID
    assert facts.audience == AWS_ACS_URL  # saml:aud is the Recipient, as IAM documents
    assert facts.not_on_or_after is None  # no SessionNotOnOrAfter: SessionDuration decides
    assert facts.attributes[ROLE] == [f"{ROLE_ARN},{PROVIDER_ARN}"]
    aws = aws_attributes(facts.attributes)
    assert aws.roles == ((ROLE_ARN, PROVIDER_ARN),)
    assert aws.role_session_name == "alice@example.com"
    assert aws.session_duration == 3600
    assert aws.principal_tags == {"team": "data"}
    assert aws.transitive_tag_keys == ("team",)
    assert aws.source_identity == "alice"


def test_resigned_test_response_still_passes(idp: Idp, metadata: str) -> None:
    # the helper the Recipient test relies on produces a valid signature
    verify(idp.sign_assertion(idp.response(sign_assertion=False)), metadata)


def test_signature_removed(idp: Idp, metadata: str) -> None:
    xml = strip_signatures(idp.response(sign_response=True, sign_assertion=True))
    refused(xml, metadata, "signed")


def test_signed_by_another_key(idp: Idp, metadata: str, tmp_path: Path) -> None:
    evil = Idp(tmp_path, "evil")
    refused(evil.response(), metadata, "signature cannot be verified")
    refused(evil.response(sign_response=True, sign_assertion=False), metadata, "signature")


def test_tampered_attribute(idp: Idp, metadata: str) -> None:
    xml = idp.response().replace("alice@example.com", "admin@example.com")
    refused(xml, metadata, "signature cannot be verified")


def signed_for(idp: Idp, variant: str) -> str:
    """A response signed where ``variant`` attacks it (the Response or the Assertion)."""
    on_response = variant in RESPONSE_SIGNED
    return idp.response(sign_response=on_response, sign_assertion=not on_response)


@pytest.mark.parametrize("variant", sorted(XSW))
def test_xsw_forgery_puts_the_goal_where_an_sp_reads_and_keeps_the_signed_element(
    idp: Idp, variant: str
) -> None:
    original = signed_for(idp, variant)
    forged = XSW[variant](original, ADMIN)
    # What an SP reading Response/Assertion sees: the attacker's role, session name and NameID.
    assertion = SafeET.fromstring(forged).find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    attributes = {
        str(a.get("Name")): ["".join(v.itertext()) for v in a.findall(f"{{{SAML}}}AttributeValue")]
        for a in assertion.findall(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute")
    }
    assert attributes[ATTR + "Role"] == [ADMIN.role]
    assert attributes[ATTR + "RoleSessionName"] == [ADMIN.session_name]
    assert assertion.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") == ADMIN.name_id
    # The element the signature names is still in the document, as signed.
    if variant in RESPONSE_SIGNED:
        signed = re.sub(r"^<\?xml[^>]*\?>\s*", "", original)
    else:
        start, end = assertion_span(original)
        signed = original[start:end]
    signed_id = re.search(r'ID="([^"]+)"', signed)
    assert signed_id
    assert f'URI="#{signed_id.group(1)}"' in forged
    assert signed in forged or strip_signatures(signed) in forged


@pytest.mark.parametrize("variant", ["XSW2", "XSW3", "XSW4", "XSW5", "XSW7"])
def test_xsw_forgery_passes_a_signature_only_check(idp: Idp, variant: str, tmp_path: Path) -> None:
    """xmlsec1 alone (the Reference resolved by ID) accepts these: only the structure checks
    stop them. In XSW1 and XSW6 xmlsec1 itself refuses the foreign element inside ds:Signature;
    in XSW8 the enveloped-signature transform drops the copy inside the Signature's Object."""
    forged = tmp_path / f"{variant}.xml"
    forged.write_text(XSW[variant](signed_for(idp, variant), ADMIN))
    ids = ["--id-attr:ID", f"{SAML}:Assertion", "--id-attr:ID", f"{SAMLP}:Response"]
    check = ["xmlsec1", "--verify", "--pubkey-cert-pem", idp.cert_file, *ids, str(forged)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variant", sorted(XSW))
def test_xsw_refused(idp: Idp, metadata: str, variant: str) -> None:
    forged = XSW[variant](signed_for(idp, variant), ADMIN)
    refused(forged, metadata, r"exactly one Assertion, it holds 2 \(signature wrapping\?\)")


def test_xsw_evil_assertion_after_the_signed_one(idp: Idp, metadata: str) -> None:
    xml = idp.response()
    start, end = assertion_span(xml)
    evil = evil_assertion(xml[start:end], ADMIN)
    refused(xml[:end] + evil + xml[end:], metadata, "exactly one Assertion")


def test_xsw_evil_id_rewrite_of_signed_assertion(idp: Idp, metadata: str) -> None:
    # the signed assertion's content replaced but its signature kept: digest mismatch
    xml = idp.response()
    refused(xml.replace("alice@example.com", "admin@example.com"), metadata, "signature")


def test_wrong_audience(idp: Idp, metadata: str) -> None:
    refused(idp.response(), metadata, "Audience", sp_entity_id="urn:example:other-sp")


def test_wrong_destination(idp: Idp, metadata: str) -> None:
    xml = idp.response(destination="https://evil.example/acs")
    refused(xml, metadata, "Destination")


def test_missing_destination(idp: Idp, metadata: str) -> None:
    xml = idp.response(sign_assertion=False)
    xml = idp.sign_assertion(re.sub(r' Destination="[^"]*"', "", xml, count=1))
    refused(xml, metadata, "no Destination")


def test_wrong_recipient(idp: Idp, metadata: str) -> None:
    xml = idp.response(sign_assertion=False)
    xml = xml.replace(f'Recipient="{AWS_ACS_URL}"', 'Recipient="https://evil.example/acs"')
    refused(idp.sign_assertion(xml), metadata, "Recipient|Destination or Recipient")


def test_expired(idp: Idp, metadata: str) -> None:
    later = datetime.now(UTC) + timedelta(minutes=30)
    refused(idp.response(), metadata, "expired", now=later)


def test_not_yet_valid(idp: Idp, metadata: str) -> None:
    earlier = datetime.now(UTC) - timedelta(minutes=30)
    refused(idp.response(), metadata, "not yet valid", now=earlier)


def test_replayed_assertion(idp: Idp, metadata: str) -> None:
    cache = InMemoryReplayCache()
    xml = idp.response()
    verify(xml, metadata, replay_cache=cache)
    refused(xml, metadata, "already used", replay_cache=cache)


def test_sp_initiated_request_ids_are_one_time(idp: Idp, metadata: str) -> None:
    cache = InMemoryReplayCache()
    first, second = idp.response(in_response_to="id-req1"), idp.response(in_response_to="id-req1")
    facts = verify(first, metadata, replay_cache=cache, expected_request_ids={"id-req1"})
    assert facts.subject == "alice@example.com"
    refused(
        second, metadata, "already answered", replay_cache=cache, expected_request_ids={"id-req1"}
    )


def test_unknown_in_response_to(idp: Idp, metadata: str) -> None:
    xml = idp.response(in_response_to="id-never-sent")
    refused(xml, metadata, "not a request this SP sent", expected_request_ids={"id-other"})
    refused(xml, metadata, "not a request this SP sent")


def test_unsolicited_when_not_allowed(idp: Idp, metadata: str) -> None:
    refused(idp.response(), metadata, "Unsolicited", allow_unsolicited=False)


def test_comment_in_name_id_keeps_the_full_value(idp: Idp, metadata: str) -> None:
    full = "admin@example.com.evil.org"
    signed = idp.response(
        name_id=full,
        identity={ATTR + "Role": [f"{PROVIDER_ARN},{ROLE_ARN}"], ATTR + "RoleSessionName": [full]},
    )
    # Inserted after signing: exclusive C14N drops comments, the signature still holds.
    xml = inject_comment(signed, full, len("admin@example.com"))
    assert xml.count("admin@example.com<!---->.evil.org<") == 2
    facts = verify(xml, metadata)
    assert facts.subject == full
    assert aws_attributes(facts.attributes).role_session_name == full


def test_xxe_payload_refused(idp: Idp, metadata: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    reason = refused(xxe(idp.response(sign_assertion=False), secret), metadata, "DTD or entities")
    assert "TOPSECRET" not in reason


def test_entity_expansion_refused(idp: Idp, metadata: str) -> None:
    refused(billion_laughs(idp.response()), metadata, "DTD or entities")


def test_times_moved_by_the_forger(idp: Idp, metadata: str) -> None:
    # The gateway cannot be given another clock: the attacks there move the times and re-sign.
    unsigned = idp.response(sign_assertion=False)
    refused(idp.sign_assertion(shift_times(unsigned, -timedelta(hours=1))), metadata, "expired")
    late = idp.sign_assertion(shift_times(unsigned, timedelta(hours=1)))
    refused(late, metadata, "not yet valid")


def test_sha1_signature_refused(idp: Idp, metadata: str) -> None:
    xml = idp.response().replace(ds.SIG_RSA_SHA256, ds.SIG_RSA_SHA1)
    refused(xml, metadata, "algorithm")


def test_bad_role_attribute(idp: Idp, metadata: str) -> None:
    xml = idp.response(sign_assertion=False).replace(f"{PROVIDER_ARN},{ROLE_ARN}", ROLE_ARN)
    refused(idp.sign_assertion(xml), metadata, "Role attribute value")


def test_not_base64() -> None:
    with pytest.raises(SamlRejected, match="base64"):
        verify_saml_response(
            "%%%", idp_metadata_xml="", acs_url=AWS_ACS_URL, replay_cache=InMemoryReplayCache()
        )


def test_replay_cache_expiry() -> None:
    clock = [1000.0]
    cache = InMemoryReplayCache(clock=lambda: clock[0])
    assert cache.claim("a", 1010.0)
    assert not cache.claim("a", 1010.0)
    clock[0] = 1011.0
    assert cache.claim("a", 1020.0)


async def test_sts_verifier_adapter(idp: Idp, metadata: str) -> None:
    verifier = sts_verifier()
    xml = idp.response()
    facts = await verifier(b64(xml), PROVIDER_ARN, metadata)
    assert facts.subject == "alice@example.com"
    with pytest.raises(InvalidIdentityToken, match="already used"):
        await verifier(b64(xml), PROVIDER_ARN, metadata)


def test_session_not_on_or_after_bounds_the_session(idp: Idp, metadata: str) -> None:
    """An IdP that ends its session earlier than SessionDuration ends the role session then."""
    ends = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    stamp = ends.strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = idp.response()
    with_end = re.sub(
        r"<(\w+):AuthnStatement ",
        rf'<\1:AuthnStatement SessionNotOnOrAfter="{stamp}" ',
        xml,
        count=1,
    )
    assert with_end != xml
    facts = verify(idp.sign_assertion(with_end), metadata)
    assert facts.not_on_or_after == ends
    # Already over: refused, however long the assertion itself may still be posted.
    past = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ended = re.sub(
        r"<(\w+):AuthnStatement ",
        rf'<\1:AuthnStatement SessionNotOnOrAfter="{past}" ',
        xml,
        count=1,
    )
    refused(idp.sign_assertion(ended), metadata, "has expired")
