"""IAM Identity Center sign-in to an SSO-mode Studio.

Identity Center is a SAML service provider towards one identity source: the built-in IdP, or an
external IdP whose metadata is configured (``idc_idp_metadata_file``). Sign-in is SP-initiated:

1. :meth:`IdentityCenter.begin`: the Studio's ``/signin`` sends the browser to the IdP's
   single sign-on URL with a fresh ``AuthnRequest`` (HTTP-Redirect binding); its ID is kept for
   five minutes and is good for one response only;
2. :meth:`IdentityCenter.finish`: the IdP posts the ``SAMLResponse`` to Identity Center's ACS;
   it is verified (signature, audience = Identity Center's entity id, Destination and Recipient
   = the ACS, time window, ``InResponseTo`` one of ours, used once; unsolicited responses are
   refused), its ``NameID`` is matched to an Identity Store ``UserName`` (case-insensitively);
3. the Studio's session mappings decide: the user's own mapping and those of each group the
   user belongs to. None: refused (a page says who to ask). Otherwise EMR assumes the Studio's
   ``UserRole`` for the user with each mapped session policy; the session may do what the role
   allows and at least one of those policies allows (the EMR Studio guide's intersection with
   the role, union over the groups). Mappings are read at sign-in: a change applies from the
   next one.

Every outcome is recorded in CloudTrail as ``Authenticate`` from ``sso.amazonaws.com``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.etree.ElementTree import ParseError

import defusedxml
from defusedxml import ElementTree as SafeET
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from sqlmodel import Session, col, select

from emustudio.audit import Auditor
from emustudio.auth.federation import FederationRefused
from emustudio.auth.saml import ReplayCache, SamlRejected, idp_entity_id, verify_saml_response
from emustudio.aws.errors import AwsError
from emustudio.context import Principal
from emustudio.services.iam.identity import managed_document
from emustudio.services.identitystore.entities import USERS
from emustudio.services.sts import StsService
from emustudio.store import Store
from emustudio.store.identity_tables import IdentityMembership
from emustudio.store.tables import Studio, StudioSessionMapping

if TYPE_CHECKING:
    # pysaml2's client, config and metadata modules load its XML schemas (over a second):
    # they are imported where first used, so that a gateway starts without them.
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

ACS_PATH = "/sso/saml"
METADATA_PATH = "/sso/saml/metadata"
PENDING_SECONDS = 300.0
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]")


@dataclass(frozen=True)
class Pending:
    """An ``AuthnRequest`` we sent: which Studio it opens, in which URL form."""

    studio_id: str
    path_form: bool
    expires_at: float


@dataclass(frozen=True)
class IdcSignIn:
    principal: Principal
    studio_id: str
    path_form: bool


@dataclass(frozen=True)
class Assignment:
    """What the Studio's session mappings give one user."""

    user_name: str  # as the Identity Store spells it
    policies: tuple[str, ...]  # the mapped session policies' documents


def session_name(user_name: str) -> str:
    """``RoleSessionName`` for a user: STS's characters, 2 to 64 of them."""
    name = _SESSION_NAME_CHARS.sub("-", user_name)[:64]
    return name if len(name) >= 2 else f"{name}--"[:2]


def acs_url_for(base_url: str) -> str:
    return f"{base_url.rstrip('/')}{ACS_PATH}"


def entity_id_for(region: str, identity_store_id: str) -> str:
    """Identity Center's SAML entity id, in AWS's form."""
    return f"https://{region}.signin.aws.amazon.com/platform/saml/{identity_store_id}"


def sso_url(metadata_xml: str) -> str:
    """The IdP's HTTP-Redirect ``SingleSignOnService`` location."""
    try:
        root = SafeET.fromstring(metadata_xml, forbid_dtd=True, forbid_entities=True)
    except (ParseError, defusedxml.DefusedXmlException):
        raise SamlRejected("The identity source's metadata is not XML.") from None
    for service in root.iter(f"{{{MD}}}SingleSignOnService"):
        if service.get("Binding") == BINDING_HTTP_REDIRECT and service.get("Location"):
            return str(service.get("Location"))
    raise SamlRejected("The identity source's metadata has no HTTP-Redirect sign-on service.")


def _in_response_to(saml_response: str) -> str | None:
    """The response's ``InResponseTo``, read unverified to find our request (verified next)."""
    try:
        xml = base64.b64decode("".join(saml_response.split()), validate=True)
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (binascii.Error, ValueError, ParseError, defusedxml.DefusedXmlException):
        return None
    value = root.get("InResponseTo")
    return str(value) if value is not None else None


class IdentityCenter:
    """Identity Center's SAML service provider and its mapping of users to Studio sessions."""

    def __init__(
        self,
        *,
        store: Store,
        sts: StsService,
        auditor: Auditor,
        replay_cache: ReplayCache,
        identity_store_id: str,
        acs_url: str,
        entity_id: str,
        idp_metadata: Callable[[], str | None],
        session_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sts = sts
        self.auditor = auditor
        self.replay_cache = replay_cache
        self.identity_store_id = identity_store_id
        self.acs_url = acs_url
        self.entity_id = entity_id
        self.idp_metadata = idp_metadata
        self.session_seconds = session_seconds
        self.clock = clock
        self._pending: dict[str, Pending] = {}
        self._clients: dict[str, Saml2Client] = {}
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._sp_metadata: str | None = None

    # --- the service provider's configuration -------------------------------------------------

    def _config(self, idp_metadata_xml: str | None) -> SPConfig:
        from saml2.config import SPConfig

        config = SPConfig()
        spec = {
            "entityid": self.entity_id,
            "service": {
                "sp": {
                    "name": "AWS IAM Identity Center (emustudio)",
                    "endpoints": {
                        "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "allow_unsolicited": False,
                    "authn_requests_signed": False,
                    "want_assertions_signed": True,
                }
            },
            "metadata": {"inline": [idp_metadata_xml]} if idp_metadata_xml else {},
        }
        config.load(spec)
        return config

    def sp_metadata(self) -> str:
        """Identity Center's SP metadata, to configure an external IdP with. Made once: it
        does not change, and pysaml2 takes tens of milliseconds to write it."""
        if self._sp_metadata is None:
            from saml2.metadata import create_metadata_string

            self._sp_metadata = str(
                create_metadata_string(None, config=self._config(None), valid=24 * 365).decode()
            )
        return self._sp_metadata

    def _source(self) -> str:
        metadata = self.idp_metadata()
        if not metadata:
            raise FederationRefused(
                "IAM Identity Center has no identity source: start emustudio with a built-in IdP"
                " users file (idp_users_file) or an external IdP's metadata"
                " (idc_idp_metadata_file).",
                503,
            )
        return metadata

    def _client(self, metadata: str) -> Saml2Client:
        from saml2.client import Saml2Client

        with self._lock:
            client = self._clients.get(metadata)
            if client is None:
                client = self._clients[metadata] = Saml2Client(config=self._config(metadata))
            return client

    # --- 1. begin -----------------------------------------------------------------------------

    def begin(self, studio_id: str, *, path_form: bool) -> str:
        """The IdP URL to send the browser to (blocking: pysaml2 builds the request)."""
        metadata = self._source()
        try:
            idp = idp_entity_id(metadata)
            sso_url(metadata)
        except SamlRejected as exc:
            raise FederationRefused(
                f"IAM Identity Center's identity source: {exc.reason}", 503
            ) from None
        client = self._client(metadata)
        with self._lock:
            request_id, info = client.prepare_for_authenticate(
                entityid=idp, binding=BINDING_HTTP_REDIRECT, relay_state=""
            )
        # begin runs in worker threads, finish on the event loop: the table has its own lock,
        # held for a dict update only.
        with self._pending_lock:
            now = self.clock()
            self._pending = {k: v for k, v in self._pending.items() if v.expires_at > now}
            self._pending[str(request_id)] = Pending(studio_id, path_form, now + PENDING_SECONDS)
        return str(dict(info["headers"])["Location"])

    # --- 2. finish ----------------------------------------------------------------------------

    async def finish(self, saml_response: str, *, source_ip: str, user_agent: str) -> IdcSignIn:
        request_id = _in_response_to(saml_response)
        # Popped before verifying: a request id answers one response, good or bad.
        with self._pending_lock:
            pending = self._pending.pop(request_id, None) if request_id else None
        if pending is not None and pending.expires_at <= self.clock():
            pending = None
        try:
            facts = await asyncio.to_thread(
                verify_saml_response,
                saml_response,
                idp_metadata_xml=self._source(),
                acs_url=self.acs_url,
                sp_entity_id=self.entity_id,
                replay_cache=self.replay_cache,
                expected_request_ids={request_id} if pending and request_id else set(),
                allow_unsolicited=False,
                aws_sign_in=False,
            )
        except SamlRejected as exc:
            message = f"Your request included an invalid SAML response. {exc.reason}"
            await self.record(None, None, "InvalidSamlResponse", message, source_ip, user_agent)
            raise FederationRefused(message) from None
        assert pending is not None  # verification requires InResponseTo to be that request
        user_name = facts.subject
        studio, assignment = await self.store.tx(
            lambda session: self._assignment(session, pending.studio_id, user_name)
        )
        if studio is None or studio.auth_mode != "SSO":
            raise FederationRefused(
                f"There is no IAM Identity Center EMR Studio {pending.studio_id}.", 404
            )
        if assignment is None:
            message = (
                f"{user_name} is not a user of this IAM Identity Center directory"
                f" ({self.identity_store_id}). Ask your administrator to add the user."
            )
            await self.record(studio.id, user_name, "UserNotFound", message, source_ip, user_agent)
            raise FederationRefused(message)
        if not assignment.policies and studio.idc_user_assignment != "OPTIONAL":
            message = (
                f"{assignment.user_name} is not assigned to the EMR Studio {studio.name}: no"
                " session mapping names the user or a group the user belongs to. Ask your"
                " administrator to assign you to the Studio."
            )
            await self.record(studio.id, user_name, "AccessDenied", message, source_ip, user_agent)
            raise FederationRefused(message)
        try:
            issued = await self.sts.assume_user_role(
                studio.user_role or "",
                session_name(assignment.user_name),
                assignment.policies,
                duration=self.session_seconds,
                source_identity=None,
            )
        except AwsError as exc:
            await self.record(studio.id, user_name, exc.code, exc.message, source_ip, user_agent)
            raise FederationRefused(exc.message) from None
        await self.record(studio.id, user_name, None, None, source_ip, user_agent)
        return IdcSignIn(issued.principal, studio.id, pending.path_form)

    def _assignment(
        self, session: Session, studio_id: str, user_name: str
    ) -> tuple[Studio | None, Assignment | None]:
        studio = session.get(Studio, studio_id)
        user = USERS.by_name(session, self.identity_store_id, user_name)
        if studio is None or user is None:
            return studio, None
        group_ids = list(
            session.exec(
                select(IdentityMembership.group_id).where(IdentityMembership.user_id == user.id)
            )
        )
        rows = session.exec(
            select(StudioSessionMapping)
            .where(StudioSessionMapping.studio_id == studio_id)
            .order_by(col(StudioSessionMapping.identity_type).desc())
        ).all()
        chosen = [
            row
            for row in rows
            if (row.identity_type == "USER" and row.identity_id == user.id)
            or (row.identity_type == "GROUP" and row.identity_id in group_ids)
        ]
        policies = []
        for row in chosen:
            found = managed_document(session, row.session_policy_arn)
            # A mapping whose policy was deleted allows nothing; it must not widen the others.
            policies.append(found[1] if found is not None else _NOTHING)
        return studio, Assignment(user.name, tuple(policies))

    async def record(
        self,
        studio_id: str | None,
        user_name: str | None,
        error_code: str | None,
        error_message: str | None,
        source_ip: str,
        user_agent: str,
    ) -> None:
        await self.auditor.record_event(
            event_name="Authenticate",
            event_source="sso.amazonaws.com",
            principal=None,
            source_ip=source_ip,
            user_agent=user_agent,
            request_parameters={"studioId": studio_id, "userName": user_name},
            response_elements=None,
            error_code=error_code,
            error_message=error_message,
            read_only=False,
        )


# A session policy that allows nothing (and denies nothing: its Deny matches no resource).
_NOTHING = (
    '{"Version": "2012-10-17",'
    ' "Statement": [{"Effect": "Deny", "Action": "*", "NotResource": "*"}]}'
)
