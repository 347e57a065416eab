"""Verify an HTTP-POST ``SAMLResponse`` as AWS's sign-in SAML endpoint does.

pysaml2 (with the ``xmlsec1`` binary) checks the XML signature against the certificate in the
IdP's metadata, the schema, the audience, the condition and confirmation time windows and the
count of assertions and ``AuthnStatement``\\ s. It is configured strictly here (a signature on the
response or the assertion is required; unsolicited responses only when allowed). What it does not
do, or does loosely, is done here on the verified assertion:

* the document is parsed with defusedxml first: a DTD, entity or external reference is refused;
* exactly one ``Assertion`` in the whole document, no ``EncryptedAssertion``; every
  ``ds:Signature`` is enveloped (a direct child of the ``Response`` or the ``Assertion`` whose
  ``ID`` its single ``Reference`` names); RSA with SHA-256 or stronger; unique ``ID``\\ s; the
  assertion pysaml2 verified is that one (XML-signature-wrapping defence);
* ``Destination`` present and equal to the ACS URL (pysaml2 accepts a missing one and answers a
  mismatch with an empty result); the bearer ``Recipient`` equal to the ACS URL;
* ``Issuer`` of the response and the assertion equal to the IdP's entity ID;
* the time windows again against ``now`` (pysaml2 reads the system clock);
* ``InResponseTo`` must be an expected request ID, used once; without one the response is
  unsolicited and accepted only when ``allow_unsolicited``;
* each ``Assertion/@ID`` is accepted once (:class:`~emustudio.auth.saml.replay.ReplayCache`);
* the AWS attributes (``Role`` pairs, ``RoleSessionName``, ``SessionDuration``...) are well formed.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Container
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml import ElementTree as SafeET

from emustudio.auth.saml.replay import ReplayCache
from emustudio.auth.saml.vocabulary import (
    AWS_AUDIENCE,
    ROLE,
    SamlRejected,
    aws_attributes,
)
from emustudio.services.sts.saml import SamlAssertion

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NAMEID_PREFIX = "urn:oasis:names:tc:SAML:2.0:nameid-format:"

SIGNATURE_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    }
)
DIGEST_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)

MAX_RESPONSE_BYTES = 256 * 1024
DEFAULT_SKEW = timedelta(seconds=60)

log = logging.getLogger(__name__)


def idp_entity_id(metadata_xml: str) -> str:
    """The entity ID of the single IdP described by ``metadata_xml``."""
    try:
        root = SafeET.fromstring(metadata_xml, forbid_dtd=True)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise SamlRejected(f"The IdP metadata cannot be parsed: {exc}") from None
    entities = [root] if root.tag == f"{{{MD}}}EntityDescriptor" else []
    entities += root.findall(f".//{{{MD}}}EntityDescriptor")
    idps = [e for e in entities if e.find(f"{{{MD}}}IDPSSODescriptor") is not None]
    if len(idps) != 1 or not idps[0].get("entityID"):
        raise SamlRejected("The IdP metadata must describe exactly one IdP (IDPSSODescriptor).")
    return str(idps[0].get("entityID"))


def _parse_time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SamlRejected(f"{what} {value!r} is not an xs:dateTime.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _text(element: Element | None) -> str:
    """All text of ``element`` (a comment does not cut it short)."""
    return "".join(element.itertext()).strip() if element is not None else ""


def parse_response(saml_response_b64: str) -> tuple[bytes, Element]:
    """The XML of a base64 ``SAMLResponse`` and its root element, parsed safely (a DTD, entity
    or external reference is refused); :class:`SamlRejected` when too large, not base64 or not
    well-formed. Nothing is verified yet."""
    if len(saml_response_b64) > MAX_RESPONSE_BYTES * 4 // 3 + 4:
        raise SamlRejected("The SAMLResponse is too large.")
    try:
        xml = base64.b64decode("".join(saml_response_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SamlRejected("The SAMLResponse is not valid base64.") from None
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise SamlRejected(f"The SAMLResponse has a DTD or entities, refused: {exc!r}") from None
    except ParseError as exc:
        raise SamlRejected(f"The SAMLResponse is not well-formed XML: {exc}") from None
    return xml, root


def _structure(root: Element, acs_url: str) -> Element:
    """Check the shape pysaml2 is lax about; return the assertion."""
    if root.tag != f"{{{SAMLP}}}Response":
        raise SamlRejected("The SAMLResponse is not a samlp:Response.")
    if root.get("Destination") is None:
        raise SamlRejected("The Response has no Destination.")
    if root.get("Destination") != acs_url:
        raise SamlRejected(
            f"The Response Destination {root.get('Destination')!r} is not this ACS {acs_url!r}."
        )
    if list(root.iter(f"{{{SAML}}}EncryptedAssertion")):
        raise SamlRejected("Encrypted assertions are not supported.")
    assertions = list(root.iter(f"{{{SAML}}}Assertion"))
    if len(assertions) != 1:
        raise SamlRejected(
            f"The Response must hold exactly one Assertion, it holds {len(assertions)}"
            " (signature wrapping?)."
        )
    assertion = assertions[0]
    if assertion not in list(root):
        raise SamlRejected("The Assertion is not a direct child of the Response (wrapping?).")
    ids = [el.get("ID") for el in root.iter() if el.get("ID") is not None]
    if len(ids) != len(set(ids)):
        raise SamlRejected("Duplicate ID attributes in the Response (signature wrapping?).")
    parents = {child: parent for parent in root.iter() for child in parent}
    signatures = list(root.iter(f"{{{DS}}}Signature"))
    if not signatures:
        raise SamlRejected("Neither the Response nor the Assertion is signed.")
    for signature in signatures:
        parent = parents.get(signature)
        if parent is not root and parent is not assertion:
            raise SamlRejected("A Signature is not enveloped by the Response or the Assertion.")
        references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        if len(references) != 1 or references[0].get("URI") != "#" + str(parent.get("ID")):
            raise SamlRejected("A Signature does not reference the element that envelops it.")
        method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
        if method is None or method.get("Algorithm") not in SIGNATURE_ALGORITHMS:
            algorithm = None if method is None else method.get("Algorithm")
            raise SamlRejected(f"Signature algorithm {algorithm!r} refused; use RSA-SHA256.")
        digest = references[0].find(f"{{{DS}}}DigestMethod")
        if digest is None or digest.get("Algorithm") not in DIGEST_ALGORITHMS:
            raise SamlRejected("Digest algorithm refused; use SHA-256.")
    if len([s for s in signatures if parents[s] is root]) > 1 or (
        len([s for s in signatures if parents[s] is assertion]) > 1
    ):
        raise SamlRejected("More than one Signature on one element.")
    return assertion


def _pysaml2_verify(
    xml_b64: str,
    *,
    idp_metadata_xml: str,
    sp_entity_id: str,
    acs_url: str,
    allow_unsolicited: bool,
    in_response_to: str | None,
    skew: timedelta,
) -> Any:
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.sigver import get_xmlsec_binary

    config = SPConfig()
    config.load(
        {
            "entityid": sp_entity_id,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": allow_unsolicited,
                    # AWS accepts either signature; the default (response only) and
                    # want_assertions_signed=False alone would let an unsigned one through.
                    "want_response_signed": False,
                    "want_assertions_signed": False,
                    "want_assertions_or_response_signed": True,
                    "allow_unknown_attributes": True,
                }
            },
            "metadata": {"inline": [idp_metadata_xml]},
            "xmlsec_binary": get_xmlsec_binary(["/usr/bin", "/usr/local/bin"]),
            "accepted_time_diff": int(skew.total_seconds()),
            "only_use_keys_in_metadata": True,
            "delete_tmpfiles": True,
        }
    )
    client = Saml2Client(config=config)
    outstanding = {in_response_to: ""} if in_response_to else {}
    return client.parse_authn_request_response(xml_b64, BINDING_HTTP_POST, outstanding=outstanding)


def _reason(exc: Exception) -> str:
    from saml2.response import (
        IncorrectlySigned,
        InvalidAssertion,
        StatusError,
        UnsolicitedResponse,
    )
    from saml2.sigver import BadSignature, MissingKey, SignatureError
    from saml2.validate import ResponseLifetimeExceed, ToEarly

    detail = str(exc) or type(exc).__name__
    if isinstance(exc, SignatureError | IncorrectlySigned | BadSignature):
        return f"The signature cannot be verified with the IdP's certificate: {detail}"
    if isinstance(exc, MissingKey):
        return f"The issuer is not the IdP in the metadata (no key for it): {detail}"
    if isinstance(exc, UnsolicitedResponse):
        return f"Unsolicited response (no known InResponseTo) refused: {detail}"
    if isinstance(exc, ResponseLifetimeExceed):
        return f"The assertion has expired: {detail}"
    if isinstance(exc, ToEarly):
        return f"The assertion is not yet valid: {detail}"
    if isinstance(exc, StatusError):
        return f"The IdP answered with an error status: {detail}"
    if isinstance(exc, InvalidAssertion):
        return f"Invalid assertion: {detail}"
    if "AudienceRestrictions" in detail or "audience" in detail.lower():
        return f"The assertion's Audience is not this SP: {detail}"
    return f"The SAMLResponse was refused by the SAML library: {type(exc).__name__}: {detail}"


def verify_saml_response(
    saml_response_b64: str,
    *,
    idp_metadata_xml: str,
    acs_url: str,
    replay_cache: ReplayCache,
    sp_entity_id: str = AWS_AUDIENCE,
    now: datetime | None = None,
    expected_request_ids: Container[str] | None = None,
    allow_unsolicited: bool = True,
    skew: timedelta = DEFAULT_SKEW,
    aws_sign_in: bool = True,
) -> SamlAssertion:
    """Verify a base64 HTTP-POST ``SAMLResponse``; return the facts of its signed assertion.

    ``aws_sign_in``: the AWS attributes (``Role``...) are required and checked, as AWS sign-in
    does; IAM Identity Center (False) reads only the NameID.

    Raises :class:`SamlRejected` with a readable reason. Blocking (runs ``xmlsec1``): call it
    from a thread in async code (see :func:`emustudio.auth.saml.sts_verifier`).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    xml, root = parse_response(saml_response_b64)
    element = _structure(root, acs_url)
    idp = idp_entity_id(idp_metadata_xml)

    in_response_to = root.get("InResponseTo")
    expected = expected_request_ids if expected_request_ids is not None else ()
    if in_response_to is not None and in_response_to not in expected:
        raise SamlRejected(f"InResponseTo {in_response_to!r} is not a request this SP sent.")
    if in_response_to is None and not allow_unsolicited:
        raise SamlRejected("Unsolicited response (no InResponseTo) refused.")

    from saml2.response import StatusError

    try:
        response = _pysaml2_verify(
            base64.b64encode(xml).decode("ascii"),
            idp_metadata_xml=idp_metadata_xml,
            sp_entity_id=sp_entity_id,
            acs_url=acs_url,
            allow_unsolicited=allow_unsolicited,
            in_response_to=in_response_to,
            skew=skew,
        )
    except StatusError as exc:
        raise SamlRejected(_reason(exc)) from None
    except Exception as exc:
        log.debug("pysaml2 refused a SAMLResponse", exc_info=True)
        raise SamlRejected(_reason(exc)) from None
    if response is None or response.assertion is None or response.name_id is None:
        raise SamlRejected("The SAMLResponse did not verify (Destination or Recipient mismatch?).")
    verified = response.assertion
    if verified.id != element.get("ID"):
        raise SamlRejected("The verified assertion is not the one in the Response (wrapping?).")

    # From here on only the verified assertion (and the checked Response envelope) is read.
    status = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    if status is None or status.get("Value") != SUCCESS:
        raise SamlRejected("The Response status is not Success.")
    issuers = [_text(root.find(f"{{{SAML}}}Issuer")), _text(element.find(f"{{{SAML}}}Issuer"))]
    if issuers[1] != idp or issuers[0] not in ("", idp):
        raise SamlRejected(f"The Issuer {issuers!r} is not the IdP {idp!r}.")

    conditions = element.find(f"{{{SAML}}}Conditions")
    if conditions is None:
        raise SamlRejected("The assertion has no Conditions.")
    restrictions = conditions.findall(f"{{{SAML}}}AudienceRestriction")
    if not restrictions or any(
        sp_entity_id not in [_text(a) for a in r.findall(f"{{{SAML}}}Audience")]
        for r in restrictions
    ):
        raise SamlRejected(f"The assertion's Audience is not {sp_entity_id!r}.")
    not_before = _parse_time(conditions.get("NotBefore"), "NotBefore")
    not_on_or_after = _parse_time(conditions.get("NotOnOrAfter"), "NotOnOrAfter")

    subject = element.find(f"{{{SAML}}}Subject")
    name_id = subject.find(f"{{{SAML}}}NameID") if subject is not None else None
    if subject is None or name_id is None or not _text(name_id):
        raise SamlRejected("The assertion has no Subject NameID.")
    confirmations = subject.findall(f"{{{SAML}}}SubjectConfirmation")
    if len(confirmations) != 1 or confirmations[0].get("Method") != BEARER:
        raise SamlRejected("The Subject needs exactly one bearer SubjectConfirmation.")
    data = confirmations[0].find(f"{{{SAML}}}SubjectConfirmationData")
    if data is None or data.get("NotOnOrAfter") is None:
        raise SamlRejected("The SubjectConfirmationData has no NotOnOrAfter.")
    if data.get("Recipient") != acs_url:
        raise SamlRejected(f"The Recipient {data.get('Recipient')!r} is not this ACS {acs_url!r}.")
    if data.get("InResponseTo") != in_response_to:
        raise SamlRejected("The SubjectConfirmationData InResponseTo differs from the Response's.")
    confirm_before = _parse_time(data.get("NotOnOrAfter"), "NotOnOrAfter")
    confirm_after = _parse_time(data.get("NotBefore"), "NotBefore")
    session_ends = [
        _parse_time(s.get("SessionNotOnOrAfter"), "SessionNotOnOrAfter")
        for s in element.findall(f"{{{SAML}}}AuthnStatement")
    ]
    for start in (not_before, confirm_after):
        if start is not None and now + skew < start:
            raise SamlRejected(f"The assertion is not yet valid (NotBefore {start.isoformat()}).")
    ends = [t for t in (not_on_or_after, confirm_before, *session_ends) if t is not None]
    for end in ends:
        if now - skew >= end:
            raise SamlRejected(f"The assertion has expired (NotOnOrAfter {end.isoformat()}).")

    attributes: dict[str, list[str]] = {}
    for statement in element.findall(f"{{{SAML}}}AttributeStatement"):
        for attribute in statement.findall(f"{{{SAML}}}Attribute"):
            values = [_text(v) for v in attribute.findall(f"{{{SAML}}}AttributeValue")]
            attributes.setdefault(str(attribute.get("Name")), []).extend(values)
    aws = aws_attributes(attributes) if aws_sign_in else None
    if aws is not None:
        attributes[ROLE] = [f"{role},{provider}" for role, provider in aws.roles]

    # One-time use, last so that a refused response does not burn its IDs.
    expires = min(ends).timestamp() + skew.total_seconds()
    if in_response_to is not None and not replay_cache.claim(f"request:{in_response_to}", expires):
        raise SamlRejected(f"The request {in_response_to!r} was already answered (replay).")
    if not replay_cache.claim(f"assertion:{idp}:{element.get('ID')}", expires):
        raise SamlRejected(f"The assertion {element.get('ID')!r} was already used (replay).")

    name_format = name_id.get("Format") or NAMEID_PREFIX + "unspecified"
    subject_type = name_format.removeprefix(NAMEID_PREFIX)
    if subject_type not in ("persistent", "transient"):
        subject_type = name_format
    return SamlAssertion(
        subject=_text(name_id),
        # IAM's saml:aud (and AssumeRoleWithSAML's Audience) is the Recipient the assertion was
        # posted to, not its Audience element (which must be urn:amazon:webservices).
        audience=acs_url,
        issuer=idp,
        attributes=attributes,
        subject_type=subject_type,
        # The role session ends at SessionNotOnOrAfter (and SessionDuration), as AWS documents;
        # NotOnOrAfter of the Conditions and the confirmation only bound when it may be posted.
        not_on_or_after=min((t for t in session_ends if t is not None), default=None),
        session=aws,
    )
