"""CloudTrail: every AWS API call the gateway answers becomes a CloudTrail record.

:class:`Auditor` is a pipeline finalizer (it runs before ``serialize``). It builds the record from
the finished :class:`RequestContext` on the event loop (pure CPU, small) and writes it through
``Store.tx``, so the write runs on the store's thread. It awaits the write: once a client has its
answer, ``LookupEvents`` sees the event. It never raises: a failure to record is logged and the
request is answered as if nothing happened.

The record follows CloudTrail's ``eventVersion`` 1.08 (see ``docs/decisions.md``, "CloudTrail",
for the choices AWS leaves open):

* ``userIdentity`` by principal kind (``Root``, ``IAMUser``, ``AssumedRole``, ``FederatedUser``);
  a request whose signature did not verify has ``{"type": "Unknown", "accessKeyId": <the key it
  claimed>}``.
* ``requestParameters`` / ``responseElements``: the input and output converted along the botocore
  shape, structure member names in lowerCamelCase (``StudioId`` -> ``studioId``; map keys and
  values untouched), timestamps ISO 8601, blobs left out, members whose shape is ``sensitive``
  (and the secret members of :data:`SECRET_MEMBERS`, which the models do not all mark) replaced by
  ``HIDDEN_DUE_TO_SECURITY_REASONS``. ``requestParameters`` is null when the call had none;
  ``responseElements`` is null for read-only calls, for errors and for empty results (EC2's
  carry ``requestId``, as AWS's do).
* ``readOnly`` is true for operations named ``Describe*``, ``Get*``, ``List*``, ``Lookup*`` and
  ``Simulate*``.
* A request that names no operation of a known service is not recorded: AWS could not attribute
  it to an event either.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.model import ServiceModel, Shape
from sqlmodel import Session, col, delete

from emustudio.aws.protocol.base import iso8601
from emustudio.aws.protocol.naming import lower_camel
from emustudio.aws.sigv4 import AuthFailure
from emustudio.context import Principal, RequestContext, is_read_only
from emustudio.store import Store
from emustudio.store.audit_tables import RESOURCE_SEPARATOR, AuditEvent

log = logging.getLogger(__name__)

EVENT_VERSION = "1.08"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Secrets the botocore models do not all mark ``sensitive`` (STS's SessionToken, for one).
SECRET_MEMBERS = frozenset(
    {
        "Password",
        "OldPassword",
        "NewPassword",
        "SecretAccessKey",
        "SessionToken",
        "PrivateKey",
        "ServicePassword",
        "SAMLAssertion",
        "WebIdentityToken",
    }
)
# AWS keeps 90 days of event history; older events are pruned now and then.
RETENTION_SECONDS = 90 * 24 * 3600
PRUNE_EVERY = 1000
# Services whose calls AWS records in us-east-1 whatever endpoint was used.
_US_EAST_1_SERVICES = frozenset({"iam"})
# S3's object-level calls are CloudTrail *data* events: not in the event history (LookupEvents
# shows management events only), so not recorded; bucket-level calls are management events.
DATA_EVENTS = {
    "s3": frozenset(
        {
            "PutObject", "GetObject", "HeadObject", "GetObjectAttributes", "DeleteObject",
            "DeleteObjects",
            "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
            "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "ListObjects",
            "ListObjectsV2", "ListMultipartUploads", "HeadBucket",
        }
    )
}  # fmt: skip

STUDIO = "AWS::EMR::Studio"
VPC = "AWS::EC2::VPC"
SUBNET = "AWS::EC2::Subnet"
SECURITY_GROUP = "AWS::EC2::SecurityGroup"
_BY_PREFIX = "by id prefix"
WORKSPACE = "AWS::EMR::Editor"
_ID_PREFIXES = (
    ("es-", STUDIO),
    ("e-", WORKSPACE),
    ("vpc-", VPC),
    ("subnet-", SUBNET),
    ("sg-", SECURITY_GROUP),
)
# service -> member name -> resource type, for the members that name a resource.
RESOURCE_MEMBERS: Mapping[str, Mapping[str, str]] = {
    "emr": {
        "StudioId": STUDIO,
        "EditorId": WORKSPACE,
        "ResourceId": _BY_PREFIX,
        "SubnetId": SUBNET,
        "VpcId": VPC,
        "SubnetIds": SUBNET,
        "WorkspaceSecurityGroupId": SECURITY_GROUP,
        "EngineSecurityGroupId": SECURITY_GROUP,
    },
    "ec2": {
        "VpcId": VPC,
        "VpcIds": VPC,
        "SubnetId": SUBNET,
        "SubnetIds": SUBNET,
        "GroupId": SECURITY_GROUP,
        "GroupIds": SECURITY_GROUP,
        "Resources": _BY_PREFIX,
    },
    "iam": {
        "UserName": "AWS::IAM::User",
        "RoleName": "AWS::IAM::Role",
        "GroupName": "AWS::IAM::Group",
        "PolicyArn": "AWS::IAM::Policy",
        "AccessKeyId": "AWS::IAM::AccessKey",
        "InstanceProfileName": "AWS::IAM::InstanceProfile",
        "SAMLProviderArn": "AWS::IAM::SAMLProvider",
    },
    "sts": {"RoleArn": "AWS::IAM::Role", "PrincipalArn": "AWS::IAM::SAMLProvider"},
}


@dataclass(frozen=True)
class Resource:
    type: str
    name: str


@dataclass(frozen=True)
class AuditEntry:
    """One record and the lookup facts stored next to it."""

    record: dict[str, Any]
    event_time: int
    username: str | None
    access_key_id: str | None
    resources: tuple[Resource, ...] = field(default=())

    def row(self, region: str) -> AuditEvent:
        return AuditEvent(
            event_id=self.record["eventID"],
            region=region,
            event_time=self.event_time,
            event_name=self.record["eventName"],
            event_source=self.record["eventSource"],
            read_only=bool(self.record["readOnly"]),
            username=self.username,
            access_key_id=self.access_key_id,
            resource_types=_joined(r.type for r in self.resources),
            resource_names=_joined(r.name for r in self.resources),
            record=json.dumps(self.record, separators=(",", ":"), ensure_ascii=False),
        )


def _joined(values: Iterable[str]) -> str:
    items = list(values)
    if not items:
        return ""
    return RESOURCE_SEPARATOR + RESOURCE_SEPARATOR.join(items) + RESOURCE_SEPARATOR


# --- the pieces of a record ---------------------------------------------------------------------


def event_source(service: ServiceModel) -> str:
    """``elasticmapreduce.amazonaws.com``, ``ec2.amazonaws.com``..."""
    return f"{service.endpoint_prefix}.amazonaws.com"


def _name_in_arn(arn: str | None) -> str | None:
    return arn.rsplit("/", 1)[-1] if arn else None


def user_identity(principal: Principal) -> dict[str, Any]:
    if principal.is_anonymous:
        # How CloudTrail writes an unsigned S3 request's caller.
        return {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}
    identity: dict[str, Any] = {
        "type": principal.kind,
        "principalId": principal.user_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    if principal.kind == "IAMUser":
        identity["userName"] = principal.name
    elif principal.kind in ("AssumedRole", "FederatedUser"):
        issuer_type = "Role" if principal.kind == "AssumedRole" else "IAMUser"
        issuer: dict[str, Any] = {
            "type": issuer_type,
            "principalId": principal.issuer_id,
            "arn": principal.issuer_arn,
            "accountId": principal.account_id,
            "userName": _name_in_arn(principal.issuer_arn),
        }
        attributes: dict[str, Any] = {}
        # ``session_created`` joins Principal with STS; until then creationDate is left out.
        created = getattr(principal, "session_created", None)
        if isinstance(created, datetime):
            attributes["creationDate"] = created.astimezone(UTC).strftime(TIME_FORMAT)
        attributes["mfaAuthenticated"] = "false"
        context: dict[str, Any] = {
            "sessionIssuer": {k: v for k, v in issuer.items() if v is not None},
            "attributes": attributes,
        }
        if principal.source_identity:
            context["sourceIdentity"] = principal.source_identity
        identity["sessionContext"] = context
    return identity


def username_of(principal: Principal) -> str:
    """What ``LookupEvents`` calls the ``Username``: root, the user, or the role session."""
    if principal.is_root:
        return "root"
    if principal.kind == "AssumedRole" and principal.session_name:
        return principal.session_name
    return principal.name


def convert(shape: Shape | None, value: Any) -> Any:
    """``value`` as CloudTrail writes it: lowerCamel member names, secrets hidden, no blobs."""
    if value is None:
        return None
    if shape is None:
        return plain(value)
    if shape.metadata.get("sensitive"):
        return HIDDEN
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            return plain(value)
        out: dict[str, Any] = {}
        members = shape.members
        for name, item in value.items():
            member = members.get(name)
            if member is None or item is None or member.type_name == "blob":
                continue
            key = lower_camel(name)
            out[key] = HIDDEN if name in SECRET_MEMBERS else convert(member, item)
        return out
    if kind == "list":
        if not isinstance(value, list | tuple):
            return plain(value)
        if shape.member.type_name == "blob":
            return None
        return [convert(shape.member, item) for item in value]
    if kind == "map":
        if not isinstance(value, Mapping):
            return plain(value)
        return {str(k): convert(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        try:
            return iso8601(value)
        except (TypeError, ValueError):
            return str(value)
    if kind == "blob":
        return None
    return plain(value)


def plain(value: Any) -> Any:
    """Any value as JSON-ready data (for values without a shape)."""
    if isinstance(value, bool | str | int | float) or value is None:
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso8601(value)
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


_SECRET_KEYS = SECRET_MEMBERS | {lower_camel(name) for name in SECRET_MEMBERS}


def scrub(value: Any) -> Any:
    """Hide the secret members (by name, either case) of shape-less data."""
    if isinstance(value, Mapping):
        return {k: HIDDEN if k in _SECRET_KEYS else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _resources_in(
    table: Mapping[str, str], value: Mapping[str, Any], depth: int, out: dict[Resource, None]
) -> None:
    for name, item in value.items():
        kind = table.get(name)
        if kind is not None:
            names = item if isinstance(item, list | tuple) else [item]
            for found in names:
                if not isinstance(found, str) or not found:
                    continue
                if kind == _BY_PREFIX:
                    typed = next((t for p, t in _ID_PREFIXES if found.startswith(p)), None)
                    if typed is not None:
                        out[Resource(typed, found)] = None
                else:
                    out[Resource(kind, found)] = None
        elif depth > 0 and isinstance(item, Mapping):
            _resources_in(table, item, depth - 1, out)


def resources_of(
    service: str, params: Mapping[str, Any], result: Mapping[str, Any] | None
) -> tuple[Resource, ...]:
    """The resources a call names: from its parameters, and from what a write created."""
    table = RESOURCE_MEMBERS.get(service)
    if not table:
        return ()
    out: dict[Resource, None] = {}
    _resources_in(table, params, 0, out)
    if result:
        _resources_in(table, result, 1, out)
    return tuple(out)


# --- the auditor --------------------------------------------------------------------------------


class Auditor:
    """Builds and stores CloudTrail records. ``record`` is the pipeline's finalizer."""

    def __init__(self, store: Store, *, region: str, account_id: str) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self._writes = 0

    async def record(self, ctx: RequestContext) -> None:
        try:
            entry = self.build(ctx)
            if entry is not None:
                await self._write(entry)
        except Exception:
            log.exception("CloudTrail: could not record %s", ctx.operation_name or "a request")

    async def record_event(
        self,
        *,
        event_name: str,
        event_source: str,
        principal: Principal | None,
        source_ip: str,
        user_agent: str,
        request_parameters: dict[str, Any] | None,
        response_elements: dict[str, Any] | None,
        error_code: str | None,
        error_message: str | None,
        read_only: bool,
        event_type: str = "AwsApiCall",
        request_id: str | None = None,
        resources: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Record an event that is not an API call through the pipeline (sign-in, console)."""
        try:
            entry = self.build_event(
                event_name=event_name,
                event_source=event_source,
                principal=principal,
                access_key_id=principal.access_key_id if principal else None,
                source_ip=source_ip,
                user_agent=user_agent,
                request_parameters=scrub(plain(request_parameters)) or None,
                response_elements=scrub(plain(response_elements)) or None,
                error_code=error_code,
                error_message=error_message,
                read_only=read_only,
                event_type=event_type,
                request_id=request_id,
                resources=tuple(Resource(t, n) for t, n in resources),
            )
            await self._write(entry)
        except Exception:
            log.exception("CloudTrail: could not record %s", event_name)

    # --- building -------------------------------------------------------------------------------

    def build(self, ctx: RequestContext, now: float | None = None) -> AuditEntry | None:
        """The record of a finished API call, or None when it names no operation."""
        service = ctx.service
        name = ctx.named_operation()
        if service is None or not name:
            return None
        if name in DATA_EVENTS.get(service.service_name, ()):
            return None
        op_model = ctx.operation or service.operation_model(name)
        read_only = is_read_only(name)

        error_code = error_message = None
        if ctx.error is not None:
            error = ctx.error
            if isinstance(error, AuthFailure):
                error = error.for_protocol(service.protocol)
            error_code, error_message = error.code, error.message

        request_parameters = convert(op_model.input_shape, ctx.params) if ctx.params else None
        response_elements: Any = None
        if ctx.error is None and not read_only:
            converted = convert(op_model.output_shape, ctx.result or {})
            if service.protocol == "ec2":
                converted = {"requestId": ctx.request_id, **(converted or {})}
            response_elements = converted or None

        scope = ctx.scope
        access_key_id = ctx.principal.access_key_id if ctx.principal else None
        if ctx.principal is None:
            access_key_id = scope.access_key_id if scope is not None else None

        region = self.region
        if service.service_name in _US_EAST_1_SERVICES:
            region = "us-east-1"
        elif service.service_name == "sts":
            region = scope.region if scope is not None and scope.region else "us-east-1"

        resources = resources_of(
            service.service_name, ctx.params, ctx.result if ctx.error is None else None
        )
        return self.build_event(
            event_name=name,
            event_source=event_source(service),
            principal=ctx.principal,
            access_key_id=access_key_id,
            source_ip=ctx.http.remote_ip,
            user_agent=ctx.http.header("user-agent"),
            request_parameters=request_parameters or None,
            response_elements=response_elements,
            error_code=error_code,
            error_message=error_message,
            read_only=read_only,
            request_id=ctx.request_id,
            resources=resources,
            aws_region=region,
            now=now,
        )

    def build_event(
        self,
        *,
        event_name: str,
        event_source: str,
        principal: Principal | None,
        access_key_id: str | None,
        source_ip: str,
        user_agent: str,
        request_parameters: Any,
        response_elements: Any,
        error_code: str | None,
        error_message: str | None,
        read_only: bool,
        event_type: str = "AwsApiCall",
        request_id: str | None = None,
        resources: tuple[Resource, ...] = (),
        aws_region: str | None = None,
        now: float | None = None,
    ) -> AuditEntry:
        event_time = int(time.time() if now is None else now)
        if principal is not None:
            identity = user_identity(principal)
        else:
            identity = {"type": "Unknown"}
            if access_key_id:
                identity["accessKeyId"] = access_key_id
        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": identity,
            "eventTime": datetime.fromtimestamp(event_time, UTC).strftime(TIME_FORMAT),
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": aws_region or self.region,
            "sourceIPAddress": source_ip,
            "userAgent": user_agent,
        }
        if error_code is not None:
            record["errorCode"] = error_code
            record["errorMessage"] = error_message or ""
        record["requestParameters"] = request_parameters
        record["responseElements"] = response_elements
        if request_id is not None:
            record["requestID"] = request_id
        record.update(
            {
                "eventID": str(uuid.uuid4()),
                "readOnly": read_only,
                "eventType": event_type,
                "managementEvent": True,
                "eventCategory": "Management",
                "recipientAccountId": self.account_id,
            }
        )
        return AuditEntry(
            record=record,
            event_time=event_time,
            username=username_of(principal) if principal is not None else None,
            access_key_id=access_key_id or None,
            resources=resources,
        )

    # --- storing --------------------------------------------------------------------------------

    async def _write(self, entry: AuditEntry) -> None:
        row = entry.row(self.region)
        self._writes += 1
        prune = self._writes % PRUNE_EVERY == 0
        prune_before = entry.event_time - RETENTION_SECONDS if prune else 0

        def write(session: Session) -> None:
            session.add(row)
            if prune_before:
                session.exec(delete(AuditEvent).where(col(AuditEvent.event_time) < prune_before))

        await self.store.tx(write)


__all__ = ["AuditEntry", "Auditor", "Resource", "convert", "is_read_only", "user_identity"]
