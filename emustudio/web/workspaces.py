"""The Workspace list of a Studio and what its buttons do, each as the signed-in user.

The list is ``ListEditors`` for this Studio, keeping each Workspace the user may
``DescribeEditor``; create, start, stop and delete are ``CreateEditor``, ``StartEditor``,
``StopEditor`` and ``DeleteEditor``; "Open" is ``OpenEditorInConsole``, then the Workspace's URL
through the proxy. A refusal or an invalid request shows AWS's own message on the page.
"""

from __future__ import annotations

import secrets
from typing import Any

from emustudio import ids
from emustudio.aws.errors import AwsError
from emustudio.store.tables import EDITOR_RUNNING
from emustudio.web.base import StudioHandler, page_status

EDITOR_ID = rf"(?P<editor_id>{ids.EDITOR_ID})"
OPENABLE = EDITOR_RUNNING
CHANGING = ("Starting", "Stopping", "Deleting", "Attaching", "Detaching")
ACTIONS = {"start": "StartEditor", "stop": "StopEditor", "delete": "DeleteEditor"}


class WorkspaceListing(StudioHandler):
    """Renders the Workspace list, for the home page and for a failed action's answer."""

    async def show(self, error: str | None = None, draft: dict[str, str] | None = None) -> None:
        rows: list[dict[str, Any]] = []
        try:
            rows = await self.visible_workspaces()
        except AwsError as exc:
            error = error or f"{exc.code}: {exc.message}"
        self.render(
            "workspaces.html",
            **self.page_args(
                rows=rows,
                error=error,
                draft=draft or {},
                openable=OPENABLE,
                changing=CHANGING,
            ),
        )

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
            "Name": draft["name"],
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
            await self.show(error=f"{exc.code}: {exc.message}", draft=draft)
            return
        self.redirect(f"{self.prefix}/", status=303)


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


default_handlers = [
    (r"/", WorkspacesPage),
    (r"/console/workspaces", CreateWorkspace),
    (rf"/console/workspaces/{EDITOR_ID}/(?P<action>start|stop|delete)", WorkspaceAction),
    (rf"/console/workspaces/{EDITOR_ID}/open", OpenWorkspace),
]
