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
    ) -> None:
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
                field_errors=field_errors or {},
                openable=OPENABLE,
                changing=CHANGING,
            ),
        )

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
                for action in ("StartEditor", "StopEditor", "DeleteEditor")
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
]
