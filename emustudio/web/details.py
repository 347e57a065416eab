"""The Studio's details page: what it is (``DescribeStudio`` as the signed-in user) and its URL
to copy. A user not allowed ``DescribeStudio`` still sees what the session already knows."""

from __future__ import annotations

from typing import Any

from emustudio.aws.errors import AwsError
from emustudio.web.base import StudioHandler


class DetailsHandler(StudioHandler):
    async def get(self, **_: str) -> None:
        self.require_user()
        described: dict[str, Any] = {}
        refused = None
        try:
            described = (await self.call("DescribeStudio", {"StudioId": self.studio_id}))["Studio"]
        except AwsError as exc:
            refused = f"{exc.code}: {exc.message}"
        self.render("studio_details.html", **self.page_args(described=described, refused=refused))


default_handlers = [(r"/details", DetailsHandler)]
