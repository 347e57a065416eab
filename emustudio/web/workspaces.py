"""The Workspace list of a Studio and what its buttons do, each as the signed-in user.

The list is ``ListEditors`` for this Studio, keeping each Workspace the user may
``DescribeEditor``; create, start, stop and delete are ``CreateEditor``, ``StartEditor``,
``StopEditor`` and ``DeleteEditor``; "Open" is ``OpenEditorInConsole``, then the Workspace's URL
through the proxy. A refusal or an invalid request shows AWS's own message on the page.

Each row offers only the actions the user's policies allow on that Workspace (its
``creatorUserId`` tag included, as EMR Studio's policies use it), and says who created it. Stop
and delete ask first (``GET .../stop|delete`` is the question, ``POST`` the action); the
question for a delete says where the Workspace's notebooks stay in S3. A create that the API
refuses for one field shows the API's message beside that field, the form kept.

A Ready Workspace offers "Attach" to a running cluster of the Studio's subnets (``ListClusters``
as the user), an Attached one "Detach": ``AttachEditor`` and ``DetachEditor``; a refused attach
shows AWS's message in that Workspace's row.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from emustudio import ids
from emustudio.aws.errors import AwsError
from emustudio.store.tables import EDITOR_RUNNING
from emustudio.web.base import StudioHandler, page_status

EDITOR_ID = rf"(?P<editor_id>{ids.EDITOR_ID})"
OPENABLE = EDITOR_RUNNING
# The form field an API refusal of CreateEditor is about: the validation's member path, else
# the start of the service's own message.
FIELD_OF_PATH = {"name": "name", "description": "description", "s3Location": "s3_location"}
FIELD_OF_MESSAGE = (("Name ", "name"), ("DefaultS3Location ", "s3_location"))
CHANGING = ("Starting", "Stopping", "Deleting", "Attaching", "Detaching")
ACTIONS = {"start": "StartEditor", "stop": "StopEditor", "delete": "DeleteEditor"}


class WorkspaceListing(StudioHandler):
    """Renders the Workspace list, for the home page and for a failed action's answer."""

    async def show(
        self,
        error: str | None = None,
        draft: dict[str, str] | None = None,
        field_errors: dict[str, str] | None = None,
        row_errors: dict[str, str] | None = None,
    ) -> None:
        rows: list[dict[str, Any]] = []
        try:
            rows = await self.visible_workspaces()
        except AwsError as exc:
            error = error or f"{exc.code}: {exc.message}"
        clusters = await self.attachable_clusters() if rows else []
        self.render(
            "workspaces.html",
            **self.page_args(
                rows=rows,
                error=error,
                draft=draft or {},
                field_errors=field_errors or {},
                openable=OPENABLE,
                changing=CHANGING,
                clusters=clusters,
                row_errors=row_errors or {},
            ),
        )

    async def attachable_clusters(self) -> list[dict[str, str]]:
        """The running clusters in this Studio's subnets that the user may list."""
        assert self.studio is not None
        try:
            listed = await self.call(
                "ListClusters", {"ClusterStates": ["RUNNING", "WAITING"]}, record=False
            )
        except AwsError:
            return []  # not allowed to list clusters: nothing to offer
        out = []
        for summary in listed.get("Clusters", []):
            place = await self.site.cluster_place(summary["Id"])
            if place is not None and place.subnet_id in self.studio.subnet_ids:
                out.append({"Id": summary["Id"], "Name": summary.get("Name", "")})
        return out

    async def may(self, action: str, editor_arn: str) -> bool:
        decision = await self.site.console.allowed(
            self.require_user(), f"elasticmapreduce:{action}", editor_arn, source_ip=self.source_ip
        )
        return decision.allowed

    async def visible_workspaces(self) -> list[dict[str, Any]]:
        user = self.require_user()
        summaries: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"StudioId": self.studio_id}
            if marker:
                params["Marker"] = marker
            page = await self.call("ListEditors", params, record=marker is None)
            summaries.extend(page.get("Editors", []))
            marker = page.get("Marker")
            if not marker:
                break
        rows = []
        for summary in summaries:
            decision = await self.site.console.allowed(
                user,
                "elasticmapreduce:DescribeEditor",
                summary["EditorArn"],
                source_ip=self.source_ip,
            )
            if not decision.allowed:
                continue
            try:
                described = await self.call(
                    "DescribeEditor", {"EditorId": summary["EditorId"]}, record=False
                )
            except AwsError:
                continue  # deleted meanwhile
            editor = described["Editor"]
            editor["Progress"] = self.site.last_progress(editor["EditorId"])
            editor["CreatorName"] = creator_name(editor.get("CreatedBy", ""))
            editor["May"] = {
                action: await self.may(action, summary["EditorArn"])
                for action in (
                    "StartEditor",
                    "StopEditor",
                    "DeleteEditor",
                    "AttachEditor",
                    "DetachEditor",
                )
            }
            rows.append(editor)
        return rows


class WorkspacesPage(WorkspaceListing):
    """The Studio's home page: its Workspaces, and a form to create one."""

    async def get(self, **_: str) -> None:
        self.require_user()
        await self.show()


class CreateWorkspace(WorkspaceListing):
    async def post(self, **_: str) -> None:
        self.require_user()
        draft = {
            name: self.get_body_argument(name, "").strip()
            for name in ("name", "description", "s3_location")
        }
        params: dict[str, Any] = {
            "StudioId": self.studio_id,
            # As typed: a blank name gets the service's own answer ("must not be empty").
            "Name": self.get_body_argument("name", "", strip=False),
            "ClientToken": secrets.token_hex(16),
        }
        if draft["description"]:
            params["Description"] = draft["description"]
        if draft["s3_location"]:
            params["S3Location"] = draft["s3_location"]
        try:
            await self.call("CreateEditor", params)
        except AwsError as exc:
            self.set_status(page_status(exc))
            field = field_of(exc)
            if field is None:
                await self.show(error=f"{exc.code}: {exc.message}", draft=draft)
            else:
                await self.show(draft=draft, field_errors={field: exc.message})
            return
        self.redirect(f"{self.prefix}/", status=303)


class ConfirmAction(WorkspaceListing):
    """``GET <prefix>/console/workspaces/<e-id>/<stop|delete>``: the question before the act."""

    async def get(self, editor_id: str, action: str, **_: str) -> None:
        self.require_user()
        try:
            described = await self.call("DescribeEditor", {"EditorId": editor_id}, record=False)
        except AwsError as exc:
            self.set_status(page_status(exc))
            await self.show(error=f"{exc.code}: {exc.message}")
            return
        editor = described["Editor"]
        location = editor.get("S3Location", "").rstrip("/")
        self.render(
            "workspace_confirm.html",
            **self.page_args(
                editor=editor,
                action=action,
                verb=action.capitalize(),
                backup=f"{location}/{editor_id}/" if location else "",
            ),
        )


class WorkspaceAction(WorkspaceListing):
    """Start, stop or delete: ``POST <prefix>/console/workspaces/<e-id>/<action>``."""

    async def post(self, editor_id: str, action: str, **_: str) -> None:
        self.require_user()
        try:
            await self.call(ACTIONS[action], {"EditorId": editor_id})
        except AwsError as exc:
            self.set_status(page_status(exc))
            await self.show(error=f"{exc.code}: {exc.message}")
            return
        self.redirect(f"{self.prefix}/", status=303)


class AttachAction(WorkspaceListing):
    """``POST <prefix>/console/workspaces/<e-id>/attach`` (form field ``cluster_id``) and
    ``.../detach``: ``AttachEditor`` and ``DetachEditor`` as the user."""

    async def post(self, editor_id: str, action: str, **_: str) -> None:
        self.require_user()
        try:
            if action == "attach":
                engine = {"Id": self.get_body_argument("cluster_id", ""), "Type": "EMR"}
                await self.call("AttachEditor", {"EditorId": editor_id, "ExecutionEngine": engine})
            else:
                await self.call("DetachEditor", {"EditorId": editor_id})
        except AwsError as exc:
            self.set_status(page_status(exc))
            await self.show(row_errors={editor_id: exc.message})
            return
        self.redirect(f"{self.prefix}/", status=303)


class OpenWorkspace(WorkspaceListing):
    """``OpenEditorInConsole`` as the user, then JupyterLab through the proxy."""

    async def get(self, editor_id: str, **_: str) -> None:
        self.require_user()
        try:
            await self.call("OpenEditorInConsole", {"EditorId": editor_id})
        except AwsError as exc:
            self.set_status(page_status(exc))
            await self.show(error=f"{exc.code}: {exc.message}")
            return
        self.redirect(f"{self.prefix}/workspaces/{editor_id}/lab")


def creator_name(arn: str) -> str:
    """The user part of a creator's ARN: ``alice`` of ``...:assumed-role/StudioAnalyst/alice``."""
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn.rsplit(":", 1)[-1]


def field_of(exc: AwsError) -> str | None:
    """The form field a validation refusal is about; None: not one field's."""
    if exc.status != 400 or "AccessDenied" in exc.code:
        return None
    if match := re.search(r" at '(\w+)' failed", exc.message):
        return FIELD_OF_PATH.get(match.group(1))
    for start, name in FIELD_OF_MESSAGE:
        if exc.message.startswith(start):
            return name
    return None


class WorkspaceActionPage(WorkspaceAction, ConfirmAction):
    """The same path: GET asks, POST does."""


default_handlers = [
    (r"/", WorkspacesPage),
    (r"/console/workspaces", CreateWorkspace),
    (rf"/console/workspaces/{EDITOR_ID}/(?P<action>start|stop|delete)", WorkspaceActionPage),
    (rf"/console/workspaces/{EDITOR_ID}/open", OpenWorkspace),
    (rf"/console/workspaces/{EDITOR_ID}/(?P<action>attach|detach)", AttachAction),
]
