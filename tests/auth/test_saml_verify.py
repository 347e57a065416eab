"""verify_saml_response against a real pysaml2 IdP with a fresh RSA key, and the usual attacks."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST
from saml2 import xmldsig as ds
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part

from emustudio.auth.saml import (
    AWS_ACS_URL,
    AWS_AUDIENCE,
    ROLE,
    InMemoryReplayCache,
    SamlRejected,
    aws_attributes,
    sts_verifier,
    verify_saml_response,
)
from emustudio.services.sts.common import InvalidIdentityToken

IDP_ID = "http://127.0.0.1:9/idp.xml"
ROLE_ARN = "arn:aws:iam::123456789012:role/Studio"
PROVIDER_ARN = "arn:aws:iam::123456789012:saml-provider/Test"
ATTR = "https://aws.amazon.com/SAML/Attributes/"
SP_METADATA = f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{AWS_AUDIENCE}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService index="1" Binding="{BINDING_HTTP_POST}" Location="{AWS_ACS_URL}"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""
IDENTITY = {
    ATTR + "Role": [f"{PROVIDER_ARN},{ROLE_ARN}"],
    ATTR + "RoleSessionName": ["alice@example.com"],
    ATTR + "SessionDuration": ["3600"],
    ATTR + "PrincipalTag:team": ["data"],
    ATTR + "TransitiveTagKeys": ["team"],
    ATTR + "SourceIdentity": ["alice"],
}
ASSERTION_TAG = re.compile(r"<(\w+):Assertion[ >]")


def keypair(directory: Path, name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


class Idp:
    def __init__(self, directory: Path, name: str) -> None:
        self.key_file, self.cert_file = keypair(directory, name)
        config = IdPConfig()
        config.load(
            {
                "entityid": IDP_ID,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                ("http://127.0.0.1:9/sso", BINDING_HTTP_POST)
                            ]
                        },
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "attribute_restrictions": None,
                                "name_form": NAME_FORMAT_URI,
                            }
                        },
                        "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                        "signing_algorithm": ds.SIG_RSA_SHA256,
                        "digest_algorithm": ds.DIGEST_SHA256,
                    }
                },
                "key_file": self.key_file,
                "cert_file": self.cert_file,
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "metadata": {"inline": [SP_METADATA]},
            }
        )
        self.config = config
        self.server = Server(config=config)

    def metadata(self) -> str:
        return str(create_metadata_string(None, config=self.config, valid=24).decode())

    def response(
        self,
        *,
        name_id: str = "alice@example.com",
        in_response_to: str | None = None,
        destination: str = AWS_ACS_URL,
        sign_response: bool = False,
        sign_assertion: bool = True,
        identity: dict[str, list[str]] | None = None,
    ) -> str:
        """The response XML (not base64)."""
        resp = self.server.create_authn_response(
            identity or IDENTITY,
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=AWS_AUDIENCE,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            userid=name_id,
            authn={
                "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            },
            sign_response=sign_response,
            sign_assertion=sign_assertion,
        )
        return str(resp)

    def sign_assertion(self, xml: str) -> str:
        """(Re)sign the assertion of ``xml`` after a test edited it."""
        xml = strip_signatures(xml)
        match = ASSERTION_TAG.search(xml)
        assert match
        prefix = match.group(1)
        start = match.start()
        assertion_id = re.search(r'ID="([^"]+)"', xml[start:])
        assert assertion_id
        aid = assertion_id.group(1)
        template = str(
            pre_signature_part(
                ident=aid,
                public_key="".join(Path(self.cert_file).read_text().splitlines()[1:-1]),
                sign_alg=ds.SIG_RSA_SHA256,
                digest_alg=ds.DIGEST_SHA256,
            )
        )
        issuer_end = xml.index(f"</{prefix}:Issuer>", start) + len(f"</{prefix}:Issuer>")
        xml = xml[:issuer_end] + template + xml[issuer_end:]
        return str(
            self.server.sec.sign_statement(
                xml, node_name="urn:oasis:names:tc:SAML:2.0:assertion:Assertion", node_id=aid
            )
        )


def strip_signatures(xml: str) -> str:
    return re.sub(r"<(\w+):Signature[ >].*?</\1:Signature>", "", xml, flags=re.S)


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def assertion_span(xml: str) -> tuple[int, int]:
    match = ASSERTION_TAG.search(xml)
    assert match
    end_tag = f"</{match.group(1)}:Assertion>"
    return match.start(), xml.index(end_tag) + len(end_tag)


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
    assert facts.not_on_or_after is not None
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


def evil_assertion(xml: str) -> str:
    start, end = assertion_span(xml)
    evil = strip_signatures(xml[start:end]).replace("alice@example.com", "admin@example.com")
    return re.sub(r'ID="([^"]+)"', r'ID="evil\1"', evil, count=1)


def test_xsw_evil_assertion_before_the_signed_one(idp: Idp, metadata: str) -> None:
    xml = idp.response()
    start, _ = assertion_span(xml)
    refused(xml[:start] + evil_assertion(xml) + xml[start:], metadata, "exactly one Assertion")


def test_xsw_evil_assertion_after_the_signed_one(idp: Idp, metadata: str) -> None:
    xml = idp.response()
    _, end = assertion_span(xml)
    refused(xml[:end] + evil_assertion(xml) + xml[end:], metadata, "exactly one Assertion")


def test_xsw_evil_assertion_wrapping_the_signed_one(idp: Idp, metadata: str) -> None:
    xml = idp.response()
    start, end = assertion_span(xml)
    evil = evil_assertion(xml)
    closing = evil.rindex("</")
    wrapped = evil[:closing] + xml[start:end] + evil[closing:]
    refused(xml[:start] + wrapped + xml[end:], metadata, "exactly one Assertion")


def test_xsw_signed_copy_inside_the_signature_object(idp: Idp, metadata: str) -> None:
    # XSW1/XSW8 style: the signed original moves into ds:Signature/ds:Object, an evil copy stays.
    xml = idp.response()
    start, end = assertion_span(xml)
    original = xml[start:end]
    signature = re.search(r"<(\w+):Signature[ >].*?</\1:Signature>", original, re.S)
    assert signature
    ds_prefix, sig = signature.group(1), signature.group(0)
    closing = sig.rindex("</")
    sig = sig[:closing] + f"<{ds_prefix}:Object>{original}</{ds_prefix}:Object>" + sig[closing:]
    evil = evil_assertion(xml)
    issuer = re.search(r"</\w+:Issuer>", evil)
    assert issuer
    evil = evil[: issuer.end()] + sig + evil[issuer.end() :]
    refused(xml[:start] + evil + xml[end:], metadata, "exactly one Assertion")


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
    xml = idp.response(name_id="admin@example.com.evil.org", sign_assertion=False)
    xml = xml.replace("admin@example.com.evil.org<", "admin@example.com<!---->.evil.org<")
    assert "<!---->" in xml
    facts = verify(idp.sign_assertion(xml), metadata)
    assert facts.subject == "admin@example.com.evil.org"


def test_xxe_payload_refused(idp: Idp, metadata: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xml = idp.response(sign_assertion=False)
    xml = re.sub(r"^<\?xml[^>]*\?>", "", xml).lstrip()
    dtd = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    xml = dtd + xml.replace(">alice@example.com<", ">&xxe;<", 1)
    reason = refused(xml, metadata, "DTD or entities")
    assert "TOPSECRET" not in reason


def test_entity_expansion_refused(idp: Idp, metadata: str) -> None:
    xml = re.sub(r"^<\?xml[^>]*\?>", "", idp.response()).lstrip()
    bomb = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    refused(bomb + xml.replace(">alice@example.com<", ">&b;<", 1), metadata, "DTD or entities")


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


def test_xsw_response_signed_clone_inside_signature(idp: Idp, metadata: str) -> None:
    # XSW1 style on a signed Response: the signed original goes inside its Signature,
    # the outer Response carries an evil unsigned assertion.
    xml = re.sub(r"^<\?xml[^>]*\?>", "", idp.response(sign_response=True, sign_assertion=False))
    signature = re.search(r"<(\w+):Signature[ >].*?</\1:Signature>", xml, re.S)
    assert signature
    start, end = assertion_span(xml)
    evil = xml[:start] + evil_assertion(xml) + xml[end:]
    sig = signature.group(0)
    wrapped = (
        sig[: sig.rindex("</")]
        + f"<{signature.group(1)}:Object>{xml}</{signature.group(1)}:Object>"
        + sig[sig.rindex("</") :]
    )
    refused(evil.replace(sig, wrapped), metadata, "exactly one Assertion")


async def test_sts_verifier_adapter(idp: Idp, metadata: str) -> None:
    verifier = sts_verifier()
    xml = idp.response()
    facts = await verifier(b64(xml), PROVIDER_ARN, metadata)
    assert facts.subject == "alice@example.com"
    with pytest.raises(InvalidIdentityToken, match="already used"):
        await verifier(b64(xml), PROVIDER_ARN, metadata)
