"""Studio session mappings: which Identity Center user or group may use an SSO-mode Studio, and
with which session policy.

A mapping is named by ``IdentityId`` or ``IdentityName`` (exactly one), resolved through an
:class:`IdentityDirectory`: the gateway sets the Identity Store's
(``services/identitystore.py``); :class:`UnlinkedDirectory`, which accepts any identity, serves
the EMR service on its own (unit tests, embedding without Identity Store).
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.emr.common import EmrBase, InvalidRequest
from emustudio.services.emr.studios import epoch
from emustudio.store.tables import Studio, StudioSessionMapping

MAPPING_NOT_FOUND = "Studio session mapping does not exist."
IDENTITY_ID = re.compile(
    r"([0-9a-f]{10}-|)[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+")


class IdentityDirectory(ABC):
    """Resolves Identity Center users and groups for session mappings."""

    @abstractmethod
    def resolve(
        self, session: Session, identity_type: str, identity_id: str | None, name: str | None
    ) -> tuple[str, str]:
        """``(IdentityId, IdentityName)``; raise ``InvalidRequest`` when it does not exist."""


class UnlinkedDirectory(IdentityDirectory):
    """Accepts every identity: a name gets a stable id (UUID5), an id stands as its own name."""

    def resolve(
        self, session: Session, identity_type: str, identity_id: str | None, name: str | None
    ) -> tuple[str, str]:
        if identity_id is not None:
            return identity_id, identity_id
        assert name is not None
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identity_type}/{name}")), name


class SessionMappingOperations(EmrBase):
    directory: IdentityDirectory = UnlinkedDirectory()

    def _identity(self, session: Session, params: dict[str, Any]) -> tuple[str, str]:
        identity_id, name = params.get("IdentityId"), params.get("IdentityName")
        if (identity_id is None) == (name is None):
            raise InvalidRequest(
                "Either IdentityName or IdentityId must be specified, but not both."
            )
        if identity_id is not None and not IDENTITY_ID.fullmatch(identity_id):
            raise InvalidRequest(f"IdentityId '{identity_id}' is not a valid identity id.")
        return self.directory.resolve(session, params["IdentityType"], identity_id, name)

    @staticmethod
    def _check_policy_arn(arn: str) -> None:
        if not POLICY_ARN.fullmatch(arn):
            raise InvalidRequest(f"SessionPolicyArn '{arn}' is not a valid IAM policy ARN.")

    def _sso_studio(self, session: Session, studio_id: str) -> Studio:
        studio = self.get_studio_or_raise(session, studio_id)
        if studio.auth_mode != "SSO":
            raise InvalidRequest(
                "Session mappings are only supported for Studios that use IAM Identity Center"
                " authentication (AuthMode SSO)."
            )
        return studio

    def _find(self, session: Session, params: dict[str, Any]) -> StudioSessionMapping:
        self.get_studio_or_raise(session, params["StudioId"])
        identity_id, _ = self._identity(session, params)
        found = session.get(
            StudioSessionMapping, (params["StudioId"], params["IdentityType"], identity_id)
        )
        if found is None:
            raise InvalidRequest(MAPPING_NOT_FOUND)
        return found

    @operation("CreateStudioSessionMapping")
    async def create_studio_session_mapping(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._check_policy_arn(params["SessionPolicyArn"])

        def create(session: Session) -> dict[str, Any]:
            studio = self._sso_studio(session, params["StudioId"])
            identity_id, name = self._identity(session, params)
            key = (studio.id, params["IdentityType"], identity_id)
            if session.get(StudioSessionMapping, key) is not None:
                raise InvalidRequest("Studio session mapping already exists.")
            now = self.now()
            session.add(
                StudioSessionMapping(
                    studio_id=studio.id,
                    identity_type=params["IdentityType"],
                    identity_id=identity_id,
                    identity_name=name,
                    session_policy_arn=params["SessionPolicyArn"],
                    created_at=now,
                    last_modified_at=now,
                )
            )
            return {}

        return await self.store.tx(create)

    @operation("GetStudioSessionMapping")
    async def get_studio_session_mapping(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            m = self._find(session, params)
            return {
                "SessionMapping": {
                    "StudioId": m.studio_id,
                    "IdentityId": m.identity_id,
                    "IdentityName": m.identity_name,
                    "IdentityType": m.identity_type,
                    "SessionPolicyArn": m.session_policy_arn,
                    "CreationTime": epoch(m.created_at),
                    "LastModifiedTime": epoch(m.last_modified_at),
                }
            }

        return await self.store.tx(get)

    @operation("UpdateStudioSessionMapping")
    async def update_studio_session_mapping(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._check_policy_arn(params["SessionPolicyArn"])

        def update(session: Session) -> dict[str, Any]:
            m = self._find(session, params)
            m.session_policy_arn = params["SessionPolicyArn"]
            m.last_modified_at = self.now()
            session.add(m)
            return {}

        return await self.store.tx(update)

    @operation("DeleteStudioSessionMapping")
    async def delete_studio_session_mapping(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            session.delete(self._find(session, params))
            return {}

        return await self.store.tx(delete)

    @operation("ListStudioSessionMappings")
    async def list_studio_session_mappings(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            query = select(StudioSessionMapping).order_by(
                col(StudioSessionMapping.created_at), col(StudioSessionMapping.identity_id)
            )
            if studio_id := params.get("StudioId"):
                self.get_studio_or_raise(session, studio_id)
                query = query.where(StudioSessionMapping.studio_id == studio_id)
            if identity_type := params.get("IdentityType"):
                query = query.where(StudioSessionMapping.identity_type == identity_type)
            mappings = [
                m
                for m in session.exec(query)
                if (s := session.get(Studio, m.studio_id)) and s.region == self.region
            ]
            page, marker = self.page(mappings, params.get("Marker"))
            return pages.with_token(
                {
                    "SessionMappings": [
                        {
                            "StudioId": m.studio_id,
                            "IdentityId": m.identity_id,
                            "IdentityName": m.identity_name,
                            "IdentityType": m.identity_type,
                            "SessionPolicyArn": m.session_policy_arn,
                            "CreationTime": epoch(m.created_at),
                        }
                        for m in page
                    ]
                },
                marker,
                "Marker",
            )

        return await self.store.tx(list_)
