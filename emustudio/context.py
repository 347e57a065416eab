"""The typed context one AWS API request carries through the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.model import OperationModel, ServiceModel

from emustudio.aws.errors import AwsError
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.payload import Payload
from emustudio.aws.protocol import operation_from_request
from emustudio.aws.sigv4 import Authorization, Scope, read_authorization


@dataclass(frozen=True)
class Principal:
    """Who signed the request.

    ``kind`` is CloudTrail's ``userIdentity.type``: ``Root``, ``IAMUser`` or ``AssumedRole``.
    ``user_id`` is ``aws:userid``: the account id for root, ``AIDA…`` for a user, and
    ``AROA…:<session name>`` for an assumed role. ``session_policies`` are JSON documents
    (inline or managed ones, resolved at AssumeRole time); empty means no session policy.
    """

    kind: str
    arn: str
    account_id: str
    access_key_id: str
    name: str
    user_id: str
    # Assumed-role sessions only: the role (issuer), the session, and what the session carries.
    session_name: str | None = None
    issuer_arn: str | None = None
    issuer_id: str | None = None
    session_policies: tuple[str, ...] = ()
    session_tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None
    session_expires: datetime | None = None
    federated: bool = False

    @property
    def is_root(self) -> bool:
        return self.kind == "Root"

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "Anonymous"


# An unsigned S3 request: no identity policies, only what a resource policy grants to "*".
ANONYMOUS = Principal(
    kind="Anonymous", arn="*", account_id="", access_key_id="", name="", user_id="anonymous"
)


@dataclass
class RequestContext:
    """One AWS API call, filled in step by step by the pipeline (see ``pipeline.py``).

    ``service``/``operation`` are set once the request names a known service and operation;
    ``params`` once the body is parsed and validated; ``principal`` once SigV4 verified it;
    ``result`` or ``error`` once the operation ran; ``response`` last.
    """

    http: HttpRequest
    request_id: str
    region: str
    account_id: str
    service: ServiceModel | None = None
    operation: OperationModel | None = None
    principal: Principal | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: AwsError | None = None
    response: HttpResponse | None = None
    # A streamed body (S3 uploads), checked as the service reads it.
    payload: Payload | None = None

    # Read from the request once, when first asked (see the properties below).
    _authorization: Authorization | None = field(default=None, init=False, repr=False)
    _named: str | None = field(default=None, init=False, repr=False)
    _named_read: bool = field(default=False, init=False, repr=False)

    @property
    def operation_name(self) -> str:
        return self.operation.name if self.operation is not None else ""

    @property
    def authorization(self) -> Authorization:
        """The request's SigV4 claim as written (header or presigned query), read once: the
        service's resolution, SigV4 verification and the audit record all use this one."""
        if self._authorization is None:
            self._authorization = read_authorization(self.http)
        return self._authorization

    @property
    def scope(self) -> Scope | None:
        """The credential scope the request claims (read, not verified), if any."""
        return self.authorization.scope

    def named_operation(self) -> str | None:
        """The operation the request names: the parsed one, else the one its target header or
        ``Action`` names, read from the request once (None when it names none, or before the
        service is known)."""
        if self.operation is not None:
            name: str = self.operation.name
            return name
        if self.service is None:
            return None
        if not self._named_read:
            try:
                self._named = operation_from_request(self.service, self.http)
            except Exception:  # an unreadable body names no operation
                self._named = None
            self._named_read = True
        return self._named


# CloudTrail's readOnly, and what the gate's memory need not forget (services/base.WRITES).
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Lookup", "Simulate")


def is_read_only(operation_name: str) -> bool:
    """Whether an operation only reads (by AWS's naming of operations)."""
    return operation_name.startswith(READ_ONLY_PREFIXES)
