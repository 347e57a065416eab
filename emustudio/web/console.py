"""EMR operations on behalf of the signed-in user, decided as the API decides them.

A Studio page does what the console does in AWS: it calls the service's operations as the
user. :meth:`StudioConsole.call` is the pipeline's in-process entry (`Gateway.call`) for EMR:
the model's validation, the pipeline's authorizer (the same policies, the same refusal text),
the EMR service, and the CloudTrail record. So a page and ``boto3`` with the user's keys always
agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emustudio.auth.permissions import Permissions
from emustudio.context import Principal
from emustudio.iam import Decision
from emustudio.pipeline import Gateway


class StudioConsole:
    def __init__(self, pipeline: Gateway, permissions: Permissions) -> None:
        self.pipeline = pipeline
        self.permissions = permissions

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
        """The EMR operation's result, or its `AwsError` (the API's, word for word)."""
        return await self.pipeline.call(
            principal,
            "emr",
            operation,
            params,
            source_ip=source_ip,
            user_agent=user_agent,
            record=record,
        )

    async def allowed(
        self, principal: Principal, action: str, resource: str, *, source_ip: str = "127.0.0.1"
    ) -> Decision:
        return await self.permissions.allowed(principal, action, resource, source_ip=source_ip)
