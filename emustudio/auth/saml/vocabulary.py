"""AWS sign-in's SAML vocabulary: its endpoint and audience, the names of the attributes AWS
reads from an assertion (``https://aws.amazon.com/SAML/Attributes/Role``...), reading and
checking them (:func:`aws_attributes`) and writing them (:func:`identity_attributes`, for IdPs).

The STS side never reads these names: sign-in hands it the checked
:class:`~emustudio.services.sts.saml.SamlSession` (an :class:`AwsSamlAttributes` is one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from emustudio.services.sts.saml import SamlSession

AWS_AUDIENCE = "urn:amazon:webservices"
AWS_ACS_URL = "https://signin.aws.amazon.com/saml"
AWS_SP_METADATA = f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{AWS_AUDIENCE}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService index="1"
      Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{AWS_ACS_URL}"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""
"""AWS sign-in as a service provider, for the IdPs that answer it (IdP-initiated)."""

ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/"
ROLE = ATTRIBUTE + "Role"
ROLE_SESSION_NAME = ATTRIBUTE + "RoleSessionName"
PRINCIPAL_TAG = ATTRIBUTE + "PrincipalTag:"
TRANSITIVE_TAG_KEYS = ATTRIBUTE + "TransitiveTagKeys"
SOURCE_IDENTITY = ATTRIBUTE + "SourceIdentity"
SESSION_DURATION = ATTRIBUTE + "SessionDuration"

SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_PROVIDER_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:saml-provider/[\w.-]+")


class SamlRejected(Exception):
    """The SAML response is not acceptable; ``reason`` says why, for logs and the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AwsSamlAttributes(SamlSession):
    """The ``https://aws.amazon.com/SAML/Attributes/*`` of an assertion, checked: what they ask
    of the role session, and the roles they offer."""

    roles: tuple[tuple[str, str], ...] = ()
    """``(role_arn, provider_arn)`` pairs, whatever their order in the attribute value."""


def aws_attributes(attributes: Mapping[str, Sequence[str]]) -> AwsSamlAttributes:
    """Read and check the AWS attributes; raise :class:`SamlRejected` when one is malformed."""
    roles: list[tuple[str, str]] = []
    for value in attributes.get(ROLE) or ():
        parts = [part.strip() for part in value.split(",")]
        role = [p for p in parts if _ROLE_ARN.fullmatch(p)]
        provider = [p for p in parts if _PROVIDER_ARN.fullmatch(p)]
        if len(parts) != 2 or len(role) != 1 or len(provider) != 1:
            raise SamlRejected(
                f"The {ROLE} attribute value {value!r} is not a pair of a role ARN and a"
                " SAML provider ARN separated by a comma."
            )
        roles.append((role[0], provider[0]))
    if not roles:
        raise SamlRejected(f"The SAML assertion has no {ROLE} attribute.")
    names = list(attributes.get(ROLE_SESSION_NAME) or ())
    if len(names) != 1 or not SESSION_NAME.fullmatch(names[0]):
        raise SamlRejected(
            f"The SAML assertion needs one {ROLE_SESSION_NAME} attribute of 2 to 64 characters"
            " (letters, digits and _+=,.@-)."
        )
    duration: int | None = None
    durations = list(attributes.get(SESSION_DURATION) or ())
    if durations:
        if len(durations) != 1 or not durations[0].strip().isdigit():
            raise SamlRejected(f"The {SESSION_DURATION} attribute must be one integer.")
        duration = int(durations[0])
        if not 900 <= duration <= 43200:
            raise SamlRejected(f"The {SESSION_DURATION} attribute must be 900 to 43200 seconds.")
    tags: dict[str, str] = {}
    for name, values in attributes.items():
        if name.startswith(PRINCIPAL_TAG):
            key = name[len(PRINCIPAL_TAG) :]
            if not key or len(values) != 1:
                raise SamlRejected(f"The attribute {name} must name a tag and have one value.")
            tags[key] = values[0]
    sources = list(attributes.get(SOURCE_IDENTITY) or ())
    if sources and (len(sources) != 1 or not SESSION_NAME.fullmatch(sources[0])):
        raise SamlRejected(f"The {SOURCE_IDENTITY} attribute must be one 2-64 character name.")
    return AwsSamlAttributes(
        roles=tuple(roles),
        role_session_name=names[0],
        session_duration=duration,
        principal_tags=tags,
        transitive_tag_keys=tuple(attributes.get(TRANSITIVE_TAG_KEYS) or ()),
        source_identity=sources[0] if sources else None,
    )


def identity_attributes(
    role_pairs: Iterable[str],
    session_name: str,
    *,
    session_duration: int | None = None,
    tags: Mapping[str, str] | None = None,
    others: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """The attributes an IdP asserts for AWS sign-in: ``Role`` pairs (``"<role>,<provider>"``),
    ``RoleSessionName``, ``SessionDuration``, ``PrincipalTag:<key>``; then ``others``, a name
    without a scheme being an AWS attribute (``SourceIdentity`` → ``.../SourceIdentity``)."""
    identity: dict[str, list[str]] = {ROLE: list(role_pairs), ROLE_SESSION_NAME: [session_name]}
    if session_duration is not None:
        identity[SESSION_DURATION] = [str(session_duration)]
    for key, value in (tags or {}).items():
        identity[PRINCIPAL_TAG + key] = [value]
    for name, values in (others or {}).items():
        aws_name = name if "://" in name or name.startswith("urn:") else ATTRIBUTE + name
        identity[aws_name] = list(values)
    return identity
