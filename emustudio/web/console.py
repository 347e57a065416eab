"""EMR operations on behalf of the signed-in user, decided as the API decides them.

A Studio page does what the console does in AWS: it calls the service's operations as the
user. :meth:`StudioConsole.call` runs the API pipeline's own steps without the wire: validate
the parameters against the model, authorize with the pipeline's authorizer (the same policies,
the same refusal text), dispatch to the EMR service, and record the call in CloudTrail. So a
page and ``boto3`` with the user's keys always agree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from emustudio.audit import Auditor
from emustudio.auth.permissions import Permissions
from emustudio.aws import spec
from emustudio.aws.errors import AwsError, InternalFailure
from emustudio.aws.http import HttpRequest
from emustudio.aws.protocol.validate import validate
from emustudio.context import Principal, RequestContext
from emustudio.iam import Decision
from emustudio.services.base import Service

log = logging.getLogger(__name__)


class ConsoleAuthorizer(Permissions, Protocol):
    """The pipeline's authorizer, with the single-action check of :class:`Permissions`."""

    async def authorize(self, ctx: RequestContext) -> None: ...


class StudioConsole:
    def __init__(
        self,
        emr: Service,
        authorizer: ConsoleAuthorizer,
        *,
        region: str,
        account_id: str,
        auditor: Auditor | None = None,
    ) -> None:
        self.emr = emr
        self.authorizer = authorizer
        self.region = region
        self.account_id = account_id
        self.auditor = auditor
        self.model = spec.load_service("emr")

    async def call(
        self,
        principal: Principal,
        operation: str,
        params: Mapping[str, Any],
        *,
        source_ip: str = "127.0.0.1",
        user_agent: str = "",
        record: bool = True,
    ) -> dict[str, Any]:
        """The operation's result, or its `AwsError` (the API's, word for word)."""
        op_model = self.model.operation_model(operation)
        http = HttpRequest(
            method="POST",
            path="/",
            headers={"user-agent": user_agent, "x-amz-target": f"ElasticMapReduce.{operation}"},
            remote_ip=source_ip,
        )
        ctx = RequestContext(
            http=http,
            request_id=str(uuid.uuid4()),
            region=self.region,
            account_id=self.account_id,
            service=self.model,
            operation=op_model,
            principal=principal,
            params=dict(params),
        )
        try:
            validate(op_model, ctx.params)
            if not principal.is_root:
                await self.authorizer.authorize(ctx)
            ctx.result = await self.emr.dispatch(ctx)
        except AwsError as exc:
            ctx.error = exc
        except Exception:
            log.exception("Studio page: %s failed", operation)
            ctx.error = InternalFailure("An internal error occurred.")
        if record and self.auditor is not None:
            await self.auditor.record(ctx)
        if ctx.error is not None:
            raise ctx.error
        return ctx.result or {}

    async def allowed(
        self, principal: Principal, action: str, resource: str, *, source_ip: str = "127.0.0.1"
    ) -> Decision:
        return await self.authorizer.allowed(principal, action, resource, source_ip=source_ip)
