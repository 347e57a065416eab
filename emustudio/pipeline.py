"""The AWS request pipeline, declared once.

An API call runs these steps in order, each a small function of the :class:`RequestContext`:

    resolve service -> SigV4 -> parse -> authorize -> dispatch

A step that raises an ``AwsError`` ends the chain; the finalizers then always run:

    audit (CloudTrail, when the gateway has an auditor) -> serialize

Nothing else in the gateway
turns a request into a response, so every answer, error or not, has the protocol's wire form.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from botocore.model import ServiceModel

from emustudio.audit import Auditor
from emustudio.aws import spec
from emustudio.aws.errors import AwsError, InternalFailure
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.payload import Payload
from emustudio.aws.protocol import create_parser, create_serializer, operation_from_request
from emustudio.aws.sigv4 import AuthFailure, Credential, read_scope, verify
from emustudio.context import Principal, RequestContext
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


@dataclass
class Gateway:
    """Runs the pipeline. ``services`` is keyed by botocore service name."""

    services: Mapping[str, Service]
    credentials: Credentials
    region: str
    account_id: str
    authorizer: Authorizer
    auditor: Auditor | None = None
    # The largest body read whole when it comes as a stream (S3's XML bodies).
    max_body_bytes: int = 1 << 20

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
            self.finalizers.insert(0, self.auditor.record)

    async def handle(self, http: HttpRequest, *, service: str | None = None) -> HttpResponse:
        """Answer one request. ``service`` names the service when the front door already knows
        it (S3's addressing), so an unsigned request is refused in that service's words."""
        ctx = RequestContext(
            http=http, request_id=str(uuid.uuid4()), region=self.region, account_id=self.account_id
        )
        if service is not None:
            ctx.service = spec.load_service(service)
        try:
            for step in self.steps:
                await step(ctx)
        except AwsError as exc:
            ctx.error = exc
        except Exception:
            log.exception("unexpected error in %s", ctx.operation_name or "request")
            ctx.error = InternalFailure("An internal error occurred.")
        if http.stream is not None:
            http.stream.discard()  # whatever of the body nobody read (a refused request)
        for finalizer in self.finalizers:
            await finalizer(ctx)
        assert ctx.response is not None
        return ctx.response

    def reject(self, http: HttpRequest, error: AwsError) -> HttpResponse:
        """Answer a request the handler refused before the pipeline (too large, say)."""
        model = _fallback_model(http)
        scope = read_scope(http)
        if scope is not None:
            model = spec.service_by_signing_name().get(scope.service, model)
        return create_serializer(model).serialize_error(error, str(uuid.uuid4()))

    # --- steps ----------------------------------------------------------------------------------

    async def resolve_service(self, ctx: RequestContext) -> None:
        if ctx.service is not None:
            return
        scope = read_scope(ctx.http)
        target = ctx.http.header("x-amz-target")
        if scope is not None:
            model = spec.service_by_signing_name().get(scope.service)
            if model is None:
                raise UnsupportedService(
                    f"emustudio does not emulate the service '{scope.service}'; it answers"
                    f" {', '.join(spec.SERVICES)}."
                )
        elif target:
            model = spec.service_by_target_prefix().get(target.split(".", 1)[0])
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
        if read_scope(ctx.http) is None and (
            operation_from_request(ctx.service, ctx.http)
            in UNSIGNED_OPERATIONS.get(ctx.service.service_name, ())
        ):
            return  # the operation carries its own proof (a SAML assertion); no principal
        found: dict[str, Principal] = {}

        def lookup(access_key_id: str) -> Credential | None:
            hit = self.credentials.lookup(access_key_id)
            if hit is None:
                return None
            found[access_key_id] = hit[1]
            return hit[0]

        signed = verify(ctx.http, lookup)
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

    async def authorize(self, ctx: RequestContext) -> None:
        if ctx.principal is not None and not ctx.principal.is_root:
            await self.authorizer.authorize(ctx)

    async def dispatch(self, ctx: RequestContext) -> None:
        assert ctx.service is not None
        ctx.result = await self.services[ctx.service.service_name].dispatch(ctx)

    # --- finalizers -----------------------------------------------------------------------------

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


def _fallback_model(http: HttpRequest) -> ServiceModel:
    """Which wire an error goes out in when the request named no service we know."""
    if http.header("x-amz-target") or "json" in http.header("content-type"):
        return spec.load_service("emr")
    return spec.load_service("sts")


__all__ = ["Authorizer", "Gateway", "RootOnly"]
