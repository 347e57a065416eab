"""``AssumeRoleWithSAML``: a verified SAML assertion becomes a role session.

Verifying the assertion (signature, audience, time window, the provider's certificate) belongs to
sign-in; this module starts from the verified facts (:class:`SamlAssertion`). The wire operation
uses :attr:`SamlOperations.saml_verifier` when one is set and otherwise answers
``InvalidIdentityToken``.

From the facts, as AWS documents for SAML federation:

* the role's trust policy must allow ``sts:AssumeRoleWithSAML`` for ``Federated`` = the
  provider's ARN, under the ``saml:`` condition keys (``saml:aud``, ``saml:sub``,
  ``saml:sub_type``, ``saml:iss``, ``saml:namequalifier`` and attribute keys such as
  ``saml:uid``); session tags need ``sts:TagSession``, a source identity
  ``sts:SetSourceIdentity``;
* the AWS attributes (``RoleSessionName``, ``PrincipalTag:<Key>``, ``TransitiveTagKeys``,
  ``SourceIdentity``, ``SessionDuration``, used when ``DurationSeconds`` is not given) arrive
  read and checked by sign-in, as the facts' :class:`SamlSession` (their names are sign-in's
  vocabulary, ``emustudio.auth.saml.vocabulary``);
* ``NameQualifier`` is ``base64(sha1(issuer + account id + "/" + provider name))``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emustudio.context import RequestContext
from emustudio.iam import AuthzRequest, evaluate_trust, tag_context
from emustudio.services.base import operation
from emustudio.services.sts.common import (
    AccessDenied,
    InvalidIdentityToken,
    StsBase,
    check_tags,
    trust_policy,
)

_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")

# Attribute names (friendly or OID) that IAM exposes as saml: condition keys.
_SAML_KEYS = {
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.1": "edupersonaffiliation",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.2": "edupersonnickname",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.3": "edupersonorgdn",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.4": "edupersonorgunitdn",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.5": "edupersonprimaryaffiliation",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": "edupersonprincipalname",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.7": "edupersonentitlement",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.9": "edupersonscopedaffiliation",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.10": "edupersontargetedid",
    "urn:oid:2.5.4.3": "cn",
    "urn:oid:2.5.4.4": "sn",
    "urn:oid:2.5.4.42": "givenName",
    "urn:oid:2.5.4.10": "o",
    "urn:oid:2.5.4.11": "ou",
    "urn:oid:2.5.4.12": "title",
    "urn:oid:0.9.2342.19200300.100.1.1": "uid",
    "urn:oid:0.9.2342.19200300.100.1.3": "mail",
    "urn:oid:2.16.840.1.113730.3.1.241": "displayName",
}
_FRIENDLY = {name.lower(): name for name in _SAML_KEYS.values()}


@dataclass(frozen=True)
class SamlSession:
    """What an assertion's AWS attributes ask of the role session, read and checked."""

    role_session_name: str
    session_duration: int | None = None
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None


@dataclass(frozen=True)
class SamlAssertion:
    """The facts of a SAML response whose signature and conditions were verified.

    ``session`` is None when the response was not checked for AWS sign-in (Identity Center's
    reads only the subject); no role can be assumed with such facts.
    """

    subject: str
    audience: str
    issuer: str
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    subject_type: str = "persistent"
    not_on_or_after: datetime | None = None
    session: SamlSession | None = None


SamlVerifier = Callable[[str, str, str], Awaitable[SamlAssertion]]
"""``(base64 SAMLResponse, provider arn, provider metadata XML) -> facts``; raises AwsError."""


def name_qualifier(issuer: str, account_id: str, provider_name: str) -> str:
    digest = hashlib.sha1((issuer + account_id + "/" + provider_name).encode()).digest()
    return base64.b64encode(digest).decode("ascii")


def saml_context(facts: SamlAssertion, qualifier: str, account_id: str) -> dict[str, object]:
    context: dict[str, object] = {
        "saml:aud": facts.audience,
        "saml:sub": facts.subject,
        "saml:sub_type": facts.subject_type,
        "saml:iss": facts.issuer,
        "saml:namequalifier": qualifier,
        "aws:PrincipalAccount": account_id,
    }
    for name, values in facts.attributes.items():
        key = _SAML_KEYS.get(name) or _FRIENDLY.get(name.lower())
        if key is not None and values:
            context[f"saml:{key}"] = list(values) if len(values) > 1 else values[0]
    return context


class SamlOperations(StsBase):
    saml_verifier: SamlVerifier | None = None

    @operation("AssumeRoleWithSAML")
    async def assume_role_with_saml(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        provider_arn = params["PrincipalArn"]
        if self.saml_verifier is None:
            raise InvalidIdentityToken(
                "The SAML assertion could not be verified: no SAML verifier is configured in"
                " this emustudio gateway."
            )
        provider = await self.iam.get_saml_provider(provider_arn)
        if provider is None:
            raise InvalidIdentityToken(f"SAML provider {provider_arn} does not exist.")
        facts = await self.saml_verifier(
            params["SAMLAssertion"], provider_arn, provider.metadata_document
        )
        return await self.assume_role_with_saml_assertion(
            role_arn=params["RoleArn"],
            provider_arn=provider_arn,
            facts=facts,
            duration_seconds=params.get("DurationSeconds"),
            policy=params.get("Policy"),
            policy_arns=params.get("PolicyArns") or (),
        )

    async def assume_role_with_saml_assertion(
        self,
        *,
        role_arn: str,
        provider_arn: str,
        facts: SamlAssertion,
        duration_seconds: int | None = None,
        policy: str | None = None,
        policy_arns: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """The core of ``AssumeRoleWithSAML`` for an already verified assertion.

        Returns the operation's output shape (``Credentials``, ``AssumedRoleUser``,
        ``Subject``...). Raises ``AccessDenied`` when the role does not exist or its trust
        policy does not let the provider's users in, ``ValidationError`` for a bad duration,
        ``InvalidIdentityToken`` for facts without a valid session name or an unknown provider.
        """
        provider = await self.iam.get_saml_provider(provider_arn)
        if provider is None:
            raise InvalidIdentityToken(f"SAML provider {provider_arn} does not exist.")
        asked = facts.session
        if asked is None or not _SESSION_NAME.fullmatch(asked.role_session_name):
            raise InvalidIdentityToken(
                "The SAML assertion needs a RoleSessionName attribute of 2 to 64 characters"
                " from [\\w+=,.@-]."
            )
        session_name = asked.role_session_name
        raw_tags = [{"Key": k, "Value": v} for k, v in asked.principal_tags.items()]
        transitive = list(asked.transitive_tag_keys)
        tags = check_tags(raw_tags, transitive)
        source_identity = asked.source_identity

        policies = await self.session_policies(policy, policy_arns)
        packed = self.packed_size(policies, tags)

        role = await self.iam.get_role(role_arn)
        denied = AccessDenied("Not authorized to perform sts:AssumeRoleWithSAML")
        if role is None:
            raise denied
        qualifier = name_qualifier(facts.issuer, self.account_id, provider.name)
        context = saml_context(facts, qualifier, self.account_id)
        if tags:
            context.update(tag_context(request_tags=tags))
        if transitive:
            context["sts:TransitiveTagKeys"] = transitive
        if source_identity:
            context["sts:SourceIdentity"] = source_identity
        trust = trust_policy(role)
        actions = ["sts:AssumeRoleWithSAML"]
        if tags:
            actions.append("sts:TagSession")
        if source_identity:
            actions.append("sts:SetSourceIdentity")
        for action in actions:
            request = AuthzRequest(action, role_arn, provider_arn, context)
            if not evaluate_trust(request, trust, {"Federated": [provider_arn]}).allowed:
                raise denied

        duration = duration_seconds
        if duration is None:
            duration = max(900, min(asked.session_duration or 3600, role.max_session_duration))
        issued = await self.issue_role_session(
            role,
            session_name,
            duration,
            policies=policies.documents,
            tags=tags,
            transitive=transitive,
            source_identity=source_identity,
            federated=True,
            not_after=facts.not_on_or_after,
        )
        return {
            **issued.assumed_role(packed, source_identity),
            "Subject": facts.subject,
            "SubjectType": facts.subject_type,
            "Issuer": facts.issuer,
            "Audience": facts.audience,
            "NameQualifier": qualifier,
        }
