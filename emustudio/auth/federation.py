"""IAM federation into a Studio: AWS sign-in's SAML endpoint (``signin.aws.amazon.com/saml``).

An IdP POSTs a signed ``SAMLResponse`` (and a ``RelayState``) to the endpoint. As AWS sign-in:

1. the response is verified (:func:`verify_saml_response`: signature, time window, audience,
   one-time use) against the metadata of the SAML provider named in its ``Role`` attribute, the
   provider whose entity id is the response's Issuer; the ACS URL is AWS's,
   ``https://signin.aws.amazon.com/saml`` (IdPs are configured with it), or the gateway's own;
2. one ``(role, provider)`` pair is used at once; several are offered to the user to choose
   (:meth:`Federation.keep` holds the verified assertion server-side for five minutes);
3. the role is assumed (:meth:`StsService.assume_role_with_saml_assertion`: the role's trust
   policy is enforced there), recorded in CloudTrail as ``AssumeRoleWithSAML``;
4. the RelayState names the Studio to open (the console deep link
   ``https://console.aws.amazon.com/emr/home?region=<r>#studio/<es-id>/start`` or the Studio's
   own URL); the assumed-role session must be allowed
   ``elasticmapreduce:CreateStudioPresignedUrl`` on it.

Session cookies are host-only, so the endpoint (on the gateway's bare host) cannot set the
Studio host's cookie: it hands the browser a *handoff token* (:meth:`Federation.handoff`),
random, single-use, valid one minute, bound to the principal and one Studio, which the Studio
host exchanges for its own session cookie (:meth:`Federation.redeem`).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.audit import Auditor
from emustudio.auth.permissions import Permissions
from emustudio.auth.saml import (
    AWS_ACS_URL,
    ROLE,
    AwsSamlAttributes,
    ReplayCache,
    SamlRejected,
    aws_attributes,
    idp_entity_id,
    verify_saml_response,
)
from emustudio.auth.saml.verify import parse_response
from emustudio.auth.signin import OPEN_STUDIO
from emustudio.aws.errors import AwsError
from emustudio.context import Principal
from emustudio.iam import deny_message
from emustudio.services.iam import IamService
from emustudio.services.sts import StsCredentials, StsService
from emustudio.services.sts.saml import SamlAssertion
from emustudio.store import Store
from emustudio.store.tables import Studio

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
PICK_SECONDS = 300.0
HANDOFF_SECONDS = 60.0
LIST_HANDOFF_SECONDS = 300.0
HANDOFF_PATH = "/federation/handoff"  # on a Studio's host, or under /studios/<id>
_DEEP_LINK = re.compile(r"studio/([^/]*)/start")
_STUDIO_PATH = re.compile(r"/studios/([^/]*)(/|$)")


class FederationRefused(Exception):
    """A refusal, in words for the user (the page shows it with HTTP ``status``)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Verified:
    """A verified assertion and its AWS attributes (roles only of the verifying provider)."""

    facts: SamlAssertion
    aws: AwsSamlAttributes
    provider_arn: str
    relay_state: str


@dataclass(frozen=True)
class Target:
    """Where a RelayState lands: a Studio, in the host or the path form."""

    studio_id: str
    path_form: bool = False


@dataclass(frozen=True)
class Handoff:
    principal: Principal
    studio_id: str
    expires_at: float


def _unverified(saml_response: str) -> tuple[str, str, list[str]]:
    """(Destination, Issuer, Role values) read before verification, to choose the provider.
    Nothing read here is trusted: the verification that follows covers it all."""
    # Parsed here on the event loop, before verify_saml_response's own checks (which parse it
    # again, the same way): a DTD is refused with its reason.
    _, root = parse_response(saml_response)
    issuer = root.find(f"{{{SAML}}}Issuer")
    if issuer is None:
        issuer = root.find(f"{{{SAML}}}Assertion/{{{SAML}}}Issuer")
    roles = [
        (value.text or "").strip()
        for attribute in root.iter(f"{{{SAML}}}Attribute")
        if attribute.get("Name") == ROLE
        for value in attribute.iter(f"{{{SAML}}}AttributeValue")
    ]
    return (
        root.get("Destination") or "",
        (issuer.text or "").strip() if issuer is not None else "",
        roles,
    )


def parse_relay_state(relay_state: str, *, region: str, studio_domain: str) -> Target | None:
    """The Studio a RelayState opens, or None (none, or not a Studio of this gateway)."""
    if not relay_state:
        return None
    try:
        url = urlsplit(relay_state)
    except ValueError:  # e.g. "http://[::1": it is not signed, anything may come
        return None
    if url.hostname == "console.aws.amazon.com":
        match = _DEEP_LINK.fullmatch(url.fragment)
        wanted = parse_qs(url.query).get("region", [region])[0]
        found = ids.studio_id_in(match.group(1)) if match else None
        if found is not None and wanted == region:
            return Target(found)
        return None
    host = (url.hostname or "").lower()
    if url.scheme not in ("http", "https"):
        return None
    on_host = ids.studio_host(host, studio_domain)
    if on_host is not None:
        return Target(on_host)
    on_path = _STUDIO_PATH.match(url.path)
    found = ids.studio_id_in(on_path.group(1)) if on_path else None
    if found is not None and host in ("localhost", "127.0.0.1"):
        return Target(found, path_form=True)
    return None


class Federation:
    """Verifies, assumes, authorizes; keeps pending role choices and handoff tokens."""

    def __init__(
        self,
        *,
        store: Store,
        iam: IamService,
        sts: StsService,
        sts_credentials: StsCredentials,
        permissions: Permissions,
        auditor: Auditor,
        replay_cache: ReplayCache,
        region: str,
        account_id: str,
        acs_urls: tuple[str, ...] = (AWS_ACS_URL,),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.iam = iam
        self.sts = sts
        self.sts_credentials = sts_credentials
        self.permissions = permissions
        self.auditor = auditor
        self.replay_cache = replay_cache
        self.region = region
        self.account_id = account_id
        self.acs_urls = acs_urls
        self.clock = clock
        self._pending: dict[str, tuple[Verified, float]] = {}
        self._handoffs: dict[str, Handoff] = {}

    # --- 1. verify ----------------------------------------------------------------------------

    async def verify(
        self, saml_response: str, relay_state: str, *, source_ip: str, user_agent: str
    ) -> Verified:
        try:
            return await self._verify(saml_response, relay_state)
        except SamlRejected as exc:
            message = f"Your request included an invalid SAML response. {exc.reason}"
            await self.record(None, "InvalidIdentityToken", message, source_ip, user_agent)
            raise FederationRefused(message) from None

    async def _verify(self, saml_response: str, relay_state: str) -> Verified:
        destination, issuer, role_values = _unverified(saml_response)
        providers = {
            part.strip() for v in role_values for part in v.split(",") if ":saml-provider/" in part
        }
        chosen = None
        for arn in sorted(providers):
            provider = await self.iam.get_saml_provider(arn)
            if provider is not None and _entity_id(provider.metadata_document) == issuer:
                chosen = provider
                break
        if chosen is None:
            raise SamlRejected(
                "No SAML provider named in its Role attribute exists with the response's Issuer."
            )
        acs_url = destination if destination in self.acs_urls else AWS_ACS_URL
        facts = await asyncio.to_thread(
            verify_saml_response,
            saml_response,
            idp_metadata_xml=chosen.metadata_document,
            acs_url=acs_url,
            replay_cache=self.replay_cache,
        )
        aws = aws_attributes(facts.attributes)
        roles = tuple(pair for pair in aws.roles if pair[1] == chosen.arn)
        if not roles:
            raise SamlRejected("The Role attribute names no role of the verifying provider.")
        return Verified(facts, replace(aws, roles=roles), chosen.arn, relay_state)

    # --- 2. the role picker's wait ------------------------------------------------------------

    def keep(self, verified: Verified) -> str:
        now = self.clock()
        self._pending = {k: v for k, v in self._pending.items() if v[1] > now}
        pick_id = secrets.token_urlsafe(24)
        self._pending[pick_id] = (verified, now + PICK_SECONDS)
        return pick_id

    def take(self, pick_id: str) -> Verified | None:
        found = self._pending.pop(pick_id, None)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    # --- 3. assume the role -------------------------------------------------------------------

    async def assume(
        self, verified: Verified, role_arn: str, *, source_ip: str, user_agent: str
    ) -> Principal:
        if role_arn not in {role for role, _ in verified.aws.roles}:
            raise FederationRefused("That role is not one the SAML assertion offers.", 400)
        try:
            out = await self.sts.assume_role_with_saml_assertion(
                role_arn=role_arn, provider_arn=verified.provider_arn, facts=verified.facts
            )
        except AwsError as exc:
            await self.record(None, exc.code, exc.message, source_ip, user_agent, role_arn)
            raise FederationRefused(
                f"Not authorized to assume {role_arn} with this SAML assertion: {exc.message}"
            ) from None
        found = self.sts_credentials.lookup(out["Credentials"]["AccessKeyId"])
        if found is None:  # pragma: no cover - issued a moment ago
            raise FederationRefused("The role session could not be started.", 500)
        principal = found[1]
        await self.record(principal, None, None, source_ip, user_agent, role_arn, out)
        return principal

    async def record(
        self,
        principal: Principal | None,
        error_code: str | None,
        error_message: str | None,
        source_ip: str,
        user_agent: str,
        role_arn: str | None = None,
        out: dict[str, Any] | None = None,
    ) -> None:
        await self.auditor.record_event(
            event_name="AssumeRoleWithSAML",
            event_source="sts.amazonaws.com",
            principal=principal,
            source_ip=source_ip,
            user_agent=user_agent,
            request_parameters={"roleArn": role_arn} if role_arn else None,
            response_elements=(
                {"assumedRoleUser": {"arn": out["AssumedRoleUser"]["Arn"]}} if out else None
            ),
            error_code=error_code,
            error_message=error_message,
            read_only=False,
        )

    # --- 4. which Studios ---------------------------------------------------------------------

    def studio_arn(self, studio_id: str) -> str:
        return ids.studio_arn(self.region, self.account_id, studio_id)

    async def may_open(self, principal: Principal, studio_id: str, *, source_ip: str) -> None:
        """Raise `FederationRefused` unless the Studio exists (IAM mode) and may be opened."""

        def read(session: Session) -> Studio | None:
            studio = session.get(Studio, studio_id)
            return studio if studio is not None and studio.region == self.region else None

        studio = await self.store.tx(read)
        if studio is None:
            raise FederationRefused(f"There is no EMR Studio {studio_id} in {self.region}.", 404)
        if studio.auth_mode != "IAM":
            raise FederationRefused(f"{studio.name} uses IAM Identity Center, not IAM federation.")
        arn = self.studio_arn(studio_id)
        decision = await self.permissions.allowed(principal, OPEN_STUDIO, arn, source_ip=source_ip)
        if not decision.allowed:
            message = deny_message(principal.arn, OPEN_STUDIO, arn, decision)
            raise FederationRefused(f"{principal.name} may not open this Studio: {message}.")

    async def openable(self, principal: Principal, *, source_ip: str) -> list[tuple[str, str]]:
        """``(id, name)`` of the IAM-mode Studios the principal may open (the console's list)."""

        def read(session: Session) -> list[tuple[str, str]]:
            rows = session.exec(
                select(Studio)
                .where(Studio.region == self.region, Studio.auth_mode == "IAM")
                .order_by(col(Studio.name))
            )
            return [(row.id, row.name) for row in rows]

        found = []
        for studio_id, name in await self.store.tx(read):
            decision = await self.permissions.allowed(
                principal, OPEN_STUDIO, self.studio_arn(studio_id), source_ip=source_ip
            )
            if decision.allowed:
                found.append((studio_id, name))
        return found

    # --- 5. the handoff to the Studio's host --------------------------------------------------

    def handoff(
        self, principal: Principal, studio_id: str, *, lifetime: float = HANDOFF_SECONDS
    ) -> str:
        now = self.clock()
        self._handoffs = {k: v for k, v in self._handoffs.items() if v.expires_at > now}
        token = secrets.token_urlsafe(32)
        self._handoffs[token] = Handoff(principal, studio_id, now + lifetime)
        return token

    def sign_in_url(
        self, principal: Principal, studio_id: str, studio_url: str, *, lifetime: float
    ) -> str:
        """A one-time URL of the Studio's host that signs ``principal`` in to it (its handoff)."""
        token = self.handoff(principal, studio_id, lifetime=lifetime)
        return f"{studio_url}{HANDOFF_PATH}?{urlencode({'token': token})}"

    def redeem(self, token: str, studio_id: str) -> Principal | None:
        """The principal of a live token for ``studio_id``; the token is used up either way."""
        found = self._handoffs.pop(token, None)
        if found is None or found.studio_id != studio_id or found.expires_at <= self.clock():
            return None
        return found.principal


def _entity_id(metadata_xml: str) -> str | None:
    try:
        return idp_entity_id(metadata_xml)
    except SamlRejected:
        return None
