"""What the STS operations share: errors, session policies and tags, issuing a session."""

from __future__ import annotations

import base64
import math
import secrets
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from emustudio.aws.errors import AwsError
from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal
from emustudio.iam import Policy, PolicyError, parse_policy
from emustudio.services.base import Service
from emustudio.services.iam import IamService
from emustudio.services.iam.common import access_key_id, secret_access_key
from emustudio.services.iam.identity import managed_document, parsed
from emustudio.services.sts.credentials import StsCredentials, principal_to_json
from emustudio.store import Store
from emustudio.store.iam_tables import IamRole, StsSession

MAX_SESSION_POLICY_CHARS = 2048
MAX_POLICY_ARNS = 10
# The packed (compressed) form of session policies and tags may use this many bytes; AWS
# reports the share used as PackedPolicySize and refuses above 100%.
PACKED_BUDGET = 1024
CHAINED_MAX_SECONDS = 3600


class AccessDenied(AwsError):
    code = "AccessDenied"
    status = 403


class ValidationError(AwsError):
    code = "ValidationError"
    status = 400


class InvalidParameterValue(AwsError):
    code = "InvalidParameterValue"
    status = 400


class MalformedPolicyDocument(AwsError):
    code = "MalformedPolicyDocument"
    status = 400


class PackedPolicyTooLarge(AwsError):
    code = "PackedPolicyTooLarge"
    status = 400


class InvalidIdentityToken(AwsError):
    code = "InvalidIdentityToken"
    status = 400


def not_authorized(caller_arn: str, action: str, resource: str) -> AccessDenied:
    return AccessDenied(
        f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
    )


@dataclass(frozen=True)
class SessionPolicies:
    """The session policies of a request: the JSON documents a session carries, and whether
    any were passed (``PackedPolicySize`` is reported only then)."""

    documents: tuple[str, ...]
    packed_text: str


@dataclass(frozen=True)
class Issued:
    credential: Credential
    principal: Principal

    def credentials_shape(self) -> dict[str, Any]:
        assert self.credential.expiration is not None
        return {
            "AccessKeyId": self.credential.access_key_id,
            "SecretAccessKey": self.credential.secret_access_key,
            "SessionToken": self.credential.session_token,
            "Expiration": self.credential.expiration,
        }

    def assumed_role(self, packed: int | None, source_identity: str | None) -> dict[str, Any]:
        """What every ``AssumeRole*`` operation answers about the role session it issued."""
        out: dict[str, Any] = {
            "Credentials": self.credentials_shape(),
            "AssumedRoleUser": {"AssumedRoleId": self.principal.user_id, "Arn": self.principal.arn},
        }
        if packed is not None:
            out["PackedPolicySize"] = packed
        if source_identity:
            out["SourceIdentity"] = source_identity
        return out


def check_tags(
    tags: Sequence[Mapping[str, Any]],
    transitive: Sequence[str],
    inherited: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Session tags as a dict; refuse duplicates, transitive keys not among the tags, and
    tags that would replace a transitive tag inherited from the calling session."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for tag in tags:
        key = str(tag["Key"])
        if key.lower() in seen:
            raise InvalidParameterValue(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        out[key] = str(tag.get("Value", ""))
    for key in transitive:
        if key.lower() not in seen:
            raise InvalidParameterValue(
                f"The transitive tag key {key} must also be passed as a session tag."
            )
    for key in inherited or {}:
        if key.lower() in seen:
            raise InvalidParameterValue(
                f"Cannot set session tag {key}: it is a transitive tag of the calling session."
            )
    return out


def trust_policy(role: IamRole) -> Policy:
    return parsed(role.trust_policy, "trust").named(f"trust policy of role/{role.name}")


def packed_percent(text: str) -> int:
    return math.ceil(100 * len(zlib.compress(text.encode("utf-8"), 9)) / PACKED_BUDGET)


def session_token() -> str:
    return base64.b64encode(secrets.token_bytes(264)).decode("ascii")


class StsBase(Service):
    name = "sts"

    def __init__(
        self,
        store: Store,
        iam: IamService,
        *,
        account_id: str,
        region: str,
        credentials: StsCredentials | None = None,
    ) -> None:
        self.store = store
        self.iam = iam
        self.account_id = account_id
        self.region = region
        self.credentials = credentials or StsCredentials()
        self.accounts: dict[str, StsBase] = {account_id: self}

    def now(self) -> float:
        return float(int(self.credentials.clock()))

    # session policies --------------------------------------------------------------------------

    async def session_policies(
        self, policy: str | None, policy_arns: Sequence[Mapping[str, Any]]
    ) -> SessionPolicies:
        """Validate the ``Policy``/``PolicyArns`` of a request; resolve managed ones now."""
        documents: list[str] = []
        if policy is not None:
            if len(policy) > MAX_SESSION_POLICY_CHARS:
                raise ValidationError(
                    f"1 validation error detected: Value '{policy}' at 'policy' failed to"
                    " satisfy constraint: Member must have length less than or equal to"
                    f" {MAX_SESSION_POLICY_CHARS}"
                )
            try:
                parse_policy(policy, "session")
            except PolicyError as error:
                raise MalformedPolicyDocument(error.message) from None
            documents.append(policy)
        if len(policy_arns) > MAX_POLICY_ARNS:
            raise ValidationError(
                f"1 validation error detected: Value at 'policyArns' failed to satisfy"
                f" constraint: Member must have length less than or equal to {MAX_POLICY_ARNS}"
            )
        arns = [str(p["arn"]) for p in policy_arns]

        def resolve(session: Session) -> list[str]:
            out = []
            for arn in arns:
                found = managed_document(session, arn)
                if found is None:
                    raise MalformedPolicyDocument(
                        f"Policy {arn} does not exist or is not attachable."
                    )
                out.append(found[1])
            return out

        if arns:
            documents += await self.store.tx(resolve)
        return SessionPolicies(tuple(documents), (policy or "") + "".join(arns))

    @staticmethod
    def parsed_session_policies(principal: Principal) -> list[Policy] | None:
        if not principal.session_policies:
            return None
        return [
            parse_policy(text, "session", name=f"session policy {i}")
            for i, text in enumerate(principal.session_policies, start=1)
        ]

    def packed_size(self, policies: SessionPolicies, tags: Mapping[str, str]) -> int | None:
        """``PackedPolicySize``, or ``None`` when the request passed no policy and no tag."""
        if not policies.packed_text and not tags:
            return None
        packed = policies.packed_text + "".join(f"{k}={v};" for k, v in tags.items())
        size = packed_percent(packed)
        if size > 100:
            raise PackedPolicyTooLarge(
                f"Packed policy consumes {size}% of allotted space, please use smaller policy."
            )
        return size

    # issuing -----------------------------------------------------------------------------------

    def assumed_role_arn(self, role: IamRole, session_name: str) -> str:
        return f"arn:aws:sts::{self.account_id}:assumed-role/{role.name}/{session_name}"

    async def issue_role_session(
        self,
        role: IamRole,
        session_name: str,
        duration: int,
        *,
        policies: tuple[str, ...] = (),
        tags: Mapping[str, str] | None = None,
        transitive: Sequence[str] = (),
        source_identity: str | None = None,
        federated: bool = False,
        not_after: datetime | None = None,
    ) -> Issued:
        """A session of ``role`` (``AssumedRole``) for ``duration`` seconds and not after
        ``not_after``, as every way of assuming a role issues it; the role's last use noted.
        A ``duration`` over the role's ``MaxSessionDuration`` is a ``ValidationError``."""
        if duration > role.max_session_duration:
            raise ValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )

        def make(key_id: str, expires: datetime) -> Principal:
            return Principal(
                kind="AssumedRole",
                arn=self.assumed_role_arn(role, session_name),
                account_id=self.account_id,
                access_key_id=key_id,
                name=session_name,
                user_id=f"{role.id}:{session_name}",
                session_name=session_name,
                issuer_arn=self.iam.role_arn(role),
                issuer_id=role.id,
                session_policies=policies,
                session_tags=dict(tags or {}),
                transitive_tag_keys=tuple(transitive),
                source_identity=source_identity,
                session_expires=expires,
                federated=federated,
            )

        end = not_after.timestamp() if not_after is not None else None
        return await self.issue(make, duration, role_id=role.id, not_after=end)

    async def issue(
        self,
        make_principal: Any,
        duration: int,
        *,
        role_id: str | None = None,
        not_after: float | None = None,
    ) -> Issued:
        """Mint credentials lasting ``duration`` seconds, store the session, cache it.

        ``make_principal(access_key_id, expires)`` builds the session's principal. With
        ``role_id``, the role's ``RoleLastUsed`` is updated in the same transaction.
        """
        moment = self.now()
        expires_at = moment + duration
        if not_after is not None:
            expires_at = min(expires_at, not_after)
        expires = datetime.fromtimestamp(expires_at, tz=UTC)
        key_id = access_key_id("ASIA")
        credential = Credential(key_id, secret_access_key(), session_token(), expires)
        principal: Principal = make_principal(key_id, expires)

        def write(session: Session) -> None:
            assert credential.session_token is not None
            session.add(
                StsSession(
                    access_key_id=key_id,
                    secret=credential.secret_access_key,
                    session_token=credential.session_token,
                    expiration=expires_at,
                    created_at=moment,
                    principal=principal_to_json(principal),
                )
            )
            if role_id is not None:
                role = session.get(IamRole, role_id)
                if role is not None:
                    role.last_used_at = moment
                    role.last_used_region = self.region
                    session.add(role)

        await self.store.tx(write)
        self.credentials.add(credential, principal)
        return Issued(credential, principal)
