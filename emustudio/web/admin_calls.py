"""Any service's operation as a signed-in principal, for the console's administration pages.

The pipeline's own steps without the wire, as `StudioConsole.call` does for EMR: validate the
parameters against the model, authorize with the gateway's authorizer (the same policies, the
same refusal text), dispatch to the service, and record the call in CloudTrail. So the console
and ``boto3`` with the same principal's keys always agree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from emustudio.aws import spec
from emustudio.aws.errors import AwsError, InternalFailure
from emustudio.aws.http import HttpRequest
from emustudio.aws.protocol.validate import validate
from emustudio.context import Principal, RequestContext
from emustudio.pipeline import Gateway

log = logging.getLogger(__name__)


class AdminCalls:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

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
        """The operation's result, or its `AwsError` (the API's, word for word)."""
        gateway = self.gateway
        model = spec.load_service(service)
        op_model = model.operation_model(operation)
        ctx = RequestContext(
            http=HttpRequest(
                method="POST", path="/", headers={"user-agent": user_agent}, remote_ip=source_ip
            ),
            request_id=str(uuid.uuid4()),
            region=gateway.region,
            account_id=gateway.account_id,
            service=model,
            operation=op_model,
            principal=principal,
            params=dict(params),
        )
        try:
            validate(op_model, ctx.params)
            if not principal.is_root:
                await gateway.authorizer.authorize(ctx)
            ctx.result = await gateway.services[service].dispatch(ctx)
        except AwsError as exc:
            ctx.error = exc
        except Exception:
            log.exception("console: %s %s failed", service, operation)
            ctx.error = InternalFailure("An internal error occurred.")
        if record and gateway.auditor is not None:
            await gateway.auditor.record(ctx)
        if ctx.error is not None:
            raise ctx.error
        return ctx.result or {}
