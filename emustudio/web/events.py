"""Live state of one Workspace, as Server-Sent Events for its row on the Studio page.

``GET <prefix>/console/workspaces/<e-id>/events`` (the user must be allowed ``DescribeEditor``
on it) streams:

* ``progress``: each start-progress message while the Workspace starts
  (`WorkspaceManager.watch`: placement, image, container, health);
* ``status``: ``{"status", "reason", "zone", "subnet"}`` whenever it changes (``status`` is
  ``Deleted`` once the Workspace is gone);
* ``done``: the Workspace is no longer changing; the page closes the stream.

``static/studio.js`` opens one stream per row whose status is changing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tornado.iostream import StreamClosedError

from emustudio.aws.errors import AwsError
from emustudio.web.base import StudioHandler
from emustudio.web.workspaces import CHANGING, EDITOR_ID

POLL_SECONDS = 1.0
MAX_SECONDS = 900.0


class WorkspaceEvents(StudioHandler):
    async def get(self, editor_id: str, **_: str) -> None:
        self.require_user()
        state = await self.state(editor_id)  # refuses (an error page) before the stream starts
        self.set_header("Content-Type", "text/event-stream; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        try:
            await self.send("status", json.dumps(state))
            progress = self.site.watch(editor_id) if state["status"] == "Starting" else None
            if progress is not None:
                async for message in progress:
                    await self.send("progress", message)
            deadline = time.monotonic() + MAX_SECONDS
            while state["status"] in CHANGING and time.monotonic() < deadline:
                await asyncio.sleep(POLL_SECONDS)
                latest = await self.state(editor_id, gone_ok=True)
                if latest != state:
                    state = latest
                    await self.send("status", json.dumps(state))
            await self.send("done", state["status"])
        except StreamClosedError:
            return  # the page went away
        self.finish()

    async def state(self, editor_id: str, *, gone_ok: bool = False) -> dict[str, Any]:
        try:
            described = await self.call("DescribeEditor", {"EditorId": editor_id}, record=False)
        except AwsError as exc:
            if gone_ok and "does not exist" in exc.message:
                return {"status": "Deleted", "reason": None, "zone": None, "subnet": None}
            raise
        editor = described["Editor"]
        return {
            "status": editor["Status"],
            "reason": editor.get("StatusReason"),
            "zone": editor.get("AvailabilityZone"),
            "subnet": editor.get("SubnetId"),
        }

    async def send(self, event: str, data: str) -> None:
        lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
        self.write(f"event: {event}\n{lines}\n")
        await self.flush()


default_handlers = [
    (rf"/console/workspaces/{EDITOR_ID}/events", WorkspaceEvents),
]
