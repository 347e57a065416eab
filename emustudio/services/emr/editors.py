"""Workspaces ("editors"): the supplemental API's operations, thin over the Workspace manager.

A Workspace belongs to one Studio and runs in one of its subnets. The creator's ``aws:userid``
is tagged ``creatorUserId``, as EMR Studio does, so that policies can limit collaboration
actions to a Workspace's creator.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.aws.errors import NotImplementedOperation
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.emr.common import EmrBase, InvalidRequest
from emustudio.services.emr.studios import check_s3_location, check_tags
from emustudio.services.emr.workspaces import RUNNING, WorkspaceManager, editor_not_found
from emustudio.store.tables import Editor, Tag


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


class EditorOperations(EmrBase):
    workspaces: WorkspaceManager | None = None

    def manager(self) -> WorkspaceManager:
        if self.workspaces is None:
            raise NotImplementedOperation("Workspaces need the gateway's container runtime.")
        return self.workspaces

    def editor_arn(self, editor_id: str) -> str:
        return ids.editor_arn(self.region, self.account_id, editor_id)

    def editor_url(self, editor: Editor) -> str:
        return f"{self.studio_url(editor.studio_id)}/workspaces/{editor.id}/lab"

    def get_editor_or_raise(self, session: Session, editor_id: str) -> Editor:
        editor = session.get(Editor, editor_id)
        if editor is None or editor.region != self.region:
            raise editor_not_found(editor_id)
        return editor

    def editor_shape(self, session: Session, editor: Editor) -> dict[str, Any]:
        tags = session.exec(select(Tag).where(Tag.resource_id == editor.id).order_by(Tag.key))
        out: dict[str, Any] = {
            "EditorId": editor.id,
            "EditorArn": self.editor_arn(editor.id),
            "StudioId": editor.studio_id,
            "Name": editor.name,
            "Description": editor.description,
            "Status": editor.status,
            "StatusReason": editor.status_reason,
            "S3Location": editor.s3_location,
            "SubnetId": editor.subnet_id,
            "AvailabilityZone": editor.availability_zone,
            "AttachedClusterId": editor.attached_cluster_id,
            "ExecutionEngine": {"Id": editor.attached_cluster_id, "Type": "EMR"}
            if editor.attached_cluster_id and editor.status == "Attached"
            else None,
            "CreatedBy": editor.created_by,
            "CreationTime": _epoch(editor.created_at),
            "LastModifiedTime": _epoch(editor.last_modified_at),
            "LastBackupTime": _epoch(editor.last_backup_at),
            "Url": self.editor_url(editor),
            "Tags": [{"Key": t.key, "Value": t.value} for t in tags],
        }
        return {k: v for k, v in out.items() if v is not None}

    @operation("CreateEditor")
    async def create_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        manager = self.manager()
        assert ctx.principal is not None
        principal = ctx.principal
        tags = list(params.get("Tags") or [])
        check_tags(tags)
        if not params["Name"].strip():
            raise InvalidRequest("Name must not be empty.")

        def create(session: Session) -> tuple[str, bool]:
            token = params.get("ClientToken")
            if token:
                earlier = session.exec(select(Editor).where(Editor.client_token == token)).first()
                if earlier is not None:
                    return earlier.id, False
            studio = self.get_studio_or_raise(session, params["StudioId"])
            location = params.get("S3Location") or studio.default_s3_location
            check_s3_location(location)
            subnet_id = params.get("SubnetId")
            if subnet_id is not None and subnet_id not in studio.subnet_ids:
                raise InvalidRequest(f"Subnet '{subnet_id}' is not one of the Studio's subnets.")
            now = time.time()
            editor = Editor(
                id=ids.editor_id(), region=self.region, studio_id=studio.id,
                name=params["Name"], description=params.get("Description"), status="Starting",
                s3_location=location, subnet_id=subnet_id, created_by=principal.arn,
                token=manager.new_token(), client_token=token, created_at=now,
                last_modified_at=now,
            )  # fmt: skip
            session.add(editor)
            for tag in [*tags, {"Key": "creatorUserId", "Value": principal.user_id}]:
                session.merge(
                    Tag(resource_id=editor.id, key=tag["Key"], value=tag.get("Value", ""),
                        resource_type="editor")
                )  # fmt: skip
            return editor.id, True

        editor_id, created = await self.store.tx(create)
        if created:
            manager.launch(editor_id)
        return {"EditorId": editor_id, "EditorArn": self.editor_arn(editor_id)}

    @operation("DescribeEditor")
    async def describe_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            editor = self.get_editor_or_raise(session, params["EditorId"])
            return {"Editor": self.editor_shape(session, editor)}

        return await self.store.tx(describe)

    @operation("ListEditors")
    async def list_editors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            query = (
                select(Editor)
                .where(Editor.region == self.region)
                .order_by(col(Editor.created_at), col(Editor.id))
            )
            if studio_id := params.get("StudioId"):
                self.get_studio_or_raise(session, studio_id)
                query = query.where(Editor.studio_id == studio_id)
            if status := params.get("Status"):
                query = query.where(Editor.status == status)
            page, marker = self.page(list(session.exec(query)), params.get("Marker"))
            summaries = [
                {
                    "EditorId": e.id,
                    "EditorArn": self.editor_arn(e.id),
                    "StudioId": e.studio_id,
                    "Name": e.name,
                    "Status": e.status,
                    "AvailabilityZone": e.availability_zone,
                    "CreationTime": _epoch(e.created_at),
                }
                for e in page
            ]
            return pages.with_token(
                {"Editors": [{k: v for k, v in s.items() if v is not None} for s in summaries]},
                marker,
                "Marker",
            )

        return await self.store.tx(list_)

    async def _transition(self, editor_id: str, allowed: tuple[str, ...], verb: str) -> Editor:
        def check(session: Session) -> Editor:
            editor = self.get_editor_or_raise(session, editor_id)
            if editor.status not in allowed:
                raise InvalidRequest(
                    f"Workspace {editor_id} is {editor.status}; it can be {verb} only when"
                    f" {' or '.join(allowed)}."
                )
            return editor

        return await self.store.tx(check)

    def after_start(
        self, ctx: RequestContext, editor_id: str
    ) -> Callable[[], Awaitable[None]] | None:
        """What follows a start once the Workspace is Ready (``attach.py``: its cluster)."""
        return None

    @operation("StartEditor")
    async def start_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        manager = self.manager()
        editor_id = params["EditorId"]
        await self._transition(editor_id, ("Idle",), "started")
        await manager.set_status(editor_id, "Starting")
        manager.launch(editor_id, self.after_start(ctx, editor_id))
        return {"EditorId": editor_id, "Status": "Starting"}

    @operation("StopEditor")
    async def stop_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        manager = self.manager()
        editor_id = params["EditorId"]
        await self._transition(editor_id, RUNNING, "stopped")
        await manager.set_status(editor_id, "Stopping")
        manager.background(manager.stop(editor_id), f"stop {editor_id}")
        return {"EditorId": editor_id, "Status": "Stopping"}

    @operation("DeleteEditor")
    async def delete_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        manager = self.manager()
        editor_id = params["EditorId"]
        await self._transition(editor_id, ("Idle", *RUNNING), "deleted")
        await manager.set_status(editor_id, "Deleting")
        manager.background(manager.delete(editor_id), f"delete {editor_id}")
        return {}

    @operation("OpenEditorInConsole")
    async def open_editor_in_console(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        editor = await self._transition(params["EditorId"], RUNNING, "opened")
        return {"Url": self.editor_url(editor)}
