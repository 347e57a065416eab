"""The AWS request pipeline, declared once.

An API call runs these steps in order, each a small function of the :class:`RequestContext`:

    resolve service -> SigV4 -> parse -> authorize -> dispatch

A step that raises an ``AwsError`` ends the chain; the finalizers then always run:

    audit (CloudTrail, when the gateway has an auditor) -> serialize

Nothing else in the gateway
turns a request into a response, so every answer, error or not, has the protocol's wire form.

:meth:`Gateway.call` is the one in-process entry (the Studio pages, the console, the demo): a
caller that knows its principal already skips the wire's first three steps, the model validates
the parameters as the parser would, and authorize -> dispatch -> audit run as for the wire. So a
page and ``boto3`` with the same keys always get the same answer and the same CloudTrail record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from botocore.model import ServiceModel

from emustudio.audit import Auditor
from emustudio.aws import spec
from emustudio.aws.errors import AwsError, InternalFailure
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.payload import Payload
from emustudio.aws.protocol import create_parser, create_serializer, validate
from emustudio.aws.sigv2 import is_presigned_v2, verify_presigned_v2
from emustudio.aws.sigv4 import AuthFailure, Credential, read_scope, verify
from emustudio.context import ANONYMOUS, Principal, RequestContext
from emustudio.credentials import Credentials
from emustudio.services.base import Service

log = logging.getLogger(__name__)

Step = Callable[[RequestContext], Awaitable[None]]

# Global services sign with us-east-1 whatever the client's region; regional ones must match.
GLOBAL_SERVICES = frozenset({"iam", "sts"})
# Operations AWS accepts unsigned: the request itself carries the caller's proof.
UNSIGNED_OPERATIONS = {"sts": ("AssumeRoleWithSAML", "AssumeRoleWithWebIdentity")}


class UnsupportedService(AwsError):
    code = "UnrecognizedClientException"
    status = 400


class WrongRegion(AwsError):
    code = "UnrecognizedClientException"
    status = 400


class Authorizer(Protocol):
    """Decides whether a non-root principal may make a call; raises the refusal if not."""

    async def authorize(self, ctx: RequestContext) -> None: ...


class RootOnly:
    """The authorizer when no policy engine is wired: every non-root call is refused."""

    async def authorize(self, ctx: RequestContext) -> None:
        raise AwsError(
            f"User: {ctx.principal.arn if ctx.principal else 'anonymous'} is not authorized to"
            f" perform: {ctx.service.signing_name if ctx.service else '?'}:{ctx.operation_name}",
            code="AccessDeniedException",
            status=400,
        )


@dataclass(frozen=True)
class OtherAccount:
    """An account besides the gateway's own (setting ``other_accounts``): the services that
    answer its principals (its own IAM and STS, the shared S3) and the trail of its calls."""

    services: Mapping[str, Service]
    auditor: Auditor | None = None


@dataclass
class Gateway:
    """Runs the pipeline. ``services`` is keyed by botocore service name; a principal of one of
    ``other_accounts`` is answered by that account's services instead."""

    services: Mapping[str, Service]
    credentials: Credentials
    region: str
    account_id: str
    authorizer: Authorizer
    auditor: Auditor | None = None
    # The largest body read whole when it comes as a stream (S3's XML bodies).
    max_body_bytes: int = 1 << 20
    other_accounts: Mapping[str, OtherAccount] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.steps: list[Step] = [
            self.resolve_service,
            self.authenticate,
            self.parse,
            self.authorize,
            self.dispatch,
        ]
        self.finalizers: list[Step] = [self.serialize]
        if self.auditor is not None:
            self.finalizers.insert(0, self.record)

    async def handle(self, http: HttpRequest, *, service: str | None = None) -> HttpResponse:
        """Answer one request. ``service`` names the service when the front door already knows
        it (S3's addressing), so an unsigned request is refused in that service's words."""
        ctx = RequestContext(
            http=http, request_id=str(uuid.uuid4()), region=self.region, account_id=self.account_id
        )
        if service is not None:
            ctx.service = spec.load_service(service)
        await self._run(ctx, self.steps, self.finalizers)
        assert ctx.response is not None
        return ctx.response

    async def call(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        *,
        source_ip: str = "127.0.0.1",
        user_agent: str = "",
        record: bool = True,
    ) -> dict[str, Any]:
        """Run ``operation`` of ``service`` (botocore's name) as ``principal``, in process.

        The operation's result, or its ``AwsError`` raised (the API's, word for word).
        ``record=False`` leaves it out of CloudTrail (a page's own polling, the demo's reads).
        """
        model = spec.load_service(service)
        op_model = model.operation_model(operation)
        headers = {"host": "localhost", "user-agent": user_agent}
        if model.protocol == "json":
            headers["x-amz-target"] = f"{model.metadata['targetPrefix']}.{operation}"
        ctx = RequestContext(
            http=HttpRequest(method="POST", path="/", headers=headers, remote_ip=source_ip),
            request_id=str(uuid.uuid4()),
            region=self.region,
            account_id=self.account_id,
            service=model,
            operation=op_model,
            principal=principal,
            params=dict(params),
        )
        steps: list[Step] = [self.validate, self.authorize, self.dispatch]
        finalizers: list[Step] = []
        if record and self.auditor is not None:
            finalizers.append(self.auditor.record)
        await self._run(ctx, steps, finalizers)
        if ctx.error is not None:
            raise ctx.error
        return ctx.result or {}

    @staticmethod
    async def _run(ctx: RequestContext, steps: list[Step], finalizers: list[Step]) -> None:
        try:
            for step in steps:
                await step(ctx)
        except AwsError as exc:
            ctx.error = exc
        except Exception:
            log.exception("unexpected error in %s", ctx.operation_name or "request")
            ctx.error = InternalFailure("An internal error occurred.")
        if ctx.http.stream is not None:
            ctx.http.stream.discard()  # whatever of the body nobody read (a refused request)
        for finalizer in finalizers:
            await finalizer(ctx)

    def reject(self, http: HttpRequest, error: AwsError) -> HttpResponse:
        """Answer a request the handler refused before the pipeline (too large, say)."""
        model = _fallback_model(http)
        scope = read_scope(http)
        if scope is not None:
            model = spec.service_by_signing_name(scope.service) or model
        return create_serializer(model).serialize_error(error, str(uuid.uuid4()))

    # --- steps ----------------------------------------------------------------------------------

    async def resolve_service(self, ctx: RequestContext) -> None:
        if ctx.service is not None:
            return
        scope = ctx.scope
        target = ctx.http.header("x-amz-target")
        if scope is not None:
            model = spec.service_by_signing_name(scope.service)
            if model is None:
                raise UnsupportedService(
                    f"emustudio does not emulate the service '{scope.service}'; it answers"
                    f" {', '.join(spec.SERVICES)}."
                )
        elif target:
            model = spec.service_by_target_prefix(target.split(".", 1)[0])
            if model is None:
                raise UnsupportedService(f"Unknown target '{target}'.")
        else:
            # Unsigned query request: nothing tells IAM from STS or EC2. SigV4 refuses it next,
            # in the query protocol's words, which is what each of the three would say.
            model = spec.load_service("sts")
        ctx.service = model
        if model.service_name not in self.services and (scope or target):
            raise UnsupportedService(f"emustudio does not serve '{model.service_name}' yet.")

    async def authenticate(self, ctx: RequestContext) -> None:
        assert ctx.service is not None
        if ctx.scope is None and (
            ctx.named_operation() in UNSIGNED_OPERATIONS.get(ctx.service.service_name, ())
        ):
            return  # the operation carries its own proof (a SAML assertion); no principal
        found: dict[str, Principal] = {}

        def lookup(access_key_id: str) -> Credential | None:
            hit = self.credentials.lookup(access_key_id)
            if hit is None:
                return None
            found[access_key_id] = hit[1]
            return hit[0]

        if ctx.service.service_name == "s3" and _unsigned(ctx):
            # S3 answers unsigned requests as an anonymous caller's (a public bucket policy).
            ctx.principal = ANONYMOUS
            if ctx.http.stream is not None:
                ctx.payload = Payload(ctx.http.stream, ctx.http.headers, None)
            return
        if ctx.service.service_name == "s3" and is_presigned_v2(ctx.http):
            # S3 alone still takes the older presigned form boto3 and the CLI make by default.
            signed = verify_presigned_v2(ctx.http, lookup, region=self.region)
        else:
            signed = verify(ctx.http, lookup, authorization=ctx.authorization)
        assert ctx.service is not None
        if ctx.service.service_name not in GLOBAL_SERVICES and signed.region != self.region:
            raise WrongRegion(
                f"This emustudio gateway plays region {self.region}; the request was signed for"
                f" {signed.region}."
            )
        ctx.principal = found[signed.access_key_id]
        self.credentials.record_use(signed.access_key_id, signed.service, signed.region)
        if ctx.http.stream is not None:
            ctx.payload = Payload(ctx.http.stream, ctx.http.headers, signed)

    async def parse(self, ctx: RequestContext) -> None:
        assert ctx.service is not None
        parser = create_parser(ctx.service)
        if ctx.payload is not None and not parser.streams_body(ctx.http):
            body = await ctx.payload.read_all(self.max_body_bytes)
            ctx.http, ctx.payload = replace(ctx.http, body=body, stream=None), None
        ctx.operation, ctx.params = parser.parse(ctx.http)

    async def validate(self, ctx: RequestContext) -> None:
        """The in-process stand-in for :meth:`parse`: the parameters against the model."""
        assert ctx.operation is not None
        validate(ctx.operation, ctx.params)

    async def authorize(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        if principal is None:
            return
        # Root is unchecked in its own account. With other accounts, an S3 bucket may be
        # another's, so roots' S3 calls are checked too (their bucket policies grant or not).
        s3 = ctx.service is not None and ctx.service.service_name == "s3"
        if not principal.is_root or (s3 and self.other_accounts):
            try:
                await self.authorizer.authorize(ctx)
            except AwsError as refusal:
                raise await self.service_for(ctx).refused(ctx, refusal) from refusal

    async def dispatch(self, ctx: RequestContext) -> None:
        ctx.result = await self.service_for(ctx).dispatch(ctx)

    def service_for(self, ctx: RequestContext) -> Service:
        """The service that answers the call: the caller's account's, or the gateway's own."""
        assert ctx.service is not None
        name = ctx.service.service_name
        other = self.account_of(ctx.principal)
        if other is None:
            return self.services[name]
        if name not in other.services:
            raise UnsupportedService(
                f"emustudio plays account {ctx.principal.account_id if ctx.principal else ''}"
                f" for {', '.join(sorted(other.services))} only."
            )
        return other.services[name]

    def account_of(self, principal: Principal | None) -> OtherAccount | None:
        """The other account whose principal signed, or None for the gateway's own."""
        if principal is None or principal.account_id == self.account_id:
            return None
        return self.other_accounts.get(principal.account_id)

    # --- finalizers -----------------------------------------------------------------------------

    async def record(self, ctx: RequestContext) -> None:
        """CloudTrail: a call is recorded in the trail of the caller's account."""
        other = self.account_of(ctx.principal)
        auditor = other.auditor if other is not None else self.auditor
        if auditor is not None:
            await auditor.record(ctx)

    async def serialize(self, ctx: RequestContext) -> None:
        model = ctx.service or _fallback_model(ctx.http)
        serializer = create_serializer(model)
        if ctx.error is None and ctx.operation is not None:
            ctx.response = serializer.serialize_response(
                ctx.operation, ctx.result or {}, ctx.request_id
            )
            return
        error = ctx.error or InternalFailure("An internal error occurred.")
        if isinstance(error, AuthFailure):
            error = error.for_protocol(model.protocol)
        ctx.response = serializer.serialize_error(error, ctx.request_id, op_model=ctx.operation)


def _unsigned(ctx: RequestContext) -> bool:
    """Nothing of a signature: no Authorization header, no presigned query of either form."""
    query = ctx.http.query
    return (
        "authorization" not in ctx.http.headers
        and not any(name in query for name in _SIGNATURE_QUERY)
        and ctx.scope is None
    )


_SIGNATURE_QUERY = ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Algorithm", "AWSAccessKeyId")


def _fallback_model(http: HttpRequest) -> ServiceModel:
    """Which wire an error goes out in when the request named no service we know."""
    if http.header("x-amz-target") or "json" in http.header("content-type"):
        return spec.load_service("emr")
    return spec.load_service("sts")


__all__ = ["Authorizer", "Gateway", "RootOnly"]
