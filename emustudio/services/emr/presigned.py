"""``CreateStudioPresignedUrl``: the URL the console opens a Studio with.

AWS has it as an IAM action only (the console calls it when a user opens a Studio); emustudio
answers it as an operation of its supplemental ``emr-studio`` model, so scripts and tests can
open an IAM-mode Studio in a browser as any principal allowed it: the URL signs that caller in,
once, within five minutes. The sign-in itself belongs to the web side (`auth.federation`'s
handoff), reached through :class:`StudioSignIns`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from sqlmodel import Session

from emustudio.aws.errors import NotImplementedOperation
from emustudio.context import Principal, RequestContext
from emustudio.services.base import operation
from emustudio.services.emr.common import EmrBase, InvalidRequest
from emustudio.store.tables import Studio

PRESIGNED_SECONDS = 300


class StudioSignIns(Protocol):
    def sign_in_url(
        self, principal: Principal, studio_id: str, studio_url: str, *, lifetime: float
    ) -> str: ...


class PresignedUrlOperations(EmrBase):
    sign_ins: StudioSignIns | None = None

    @operation("CreateStudioPresignedUrl")
    async def create_studio_presigned_url(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def read(session: Session) -> Studio:
            return self.get_studio_or_raise(session, params["StudioId"])

        studio = await self.store.tx(read)
        if studio.auth_mode != "IAM":
            raise InvalidRequest(
                "Presigned URLs open Studios that use IAM authentication; this Studio uses IAM"
                " Identity Center (AuthMode SSO): its users sign in through Identity Center."
            )
        if self.sign_ins is None:
            raise NotImplementedOperation("CreateStudioPresignedUrl needs the gateway's web side.")
        assert ctx.principal is not None
        url = self.sign_ins.sign_in_url(
            ctx.principal, studio.id, self.studio_url(studio.id), lifetime=PRESIGNED_SECONDS
        )
        return {
            "PresignedUrl": url,
            "ExpirationTime": datetime.fromtimestamp(self.now() + PRESIGNED_SECONDS, UTC),
        }
