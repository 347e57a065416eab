"""The operator API (supplemental model ``emustudio``): controls AWS has no API for.

``FailAvailabilityZone`` rehearses an outage: the zone shows as ``impaired`` in
DescribeAvailabilityZones, its running Workspaces lose their network, and Workspaces started
meanwhile go elsewhere. ``RestoreAvailabilityZone`` ends it.
"""

from __future__ import annotations

from typing import Any

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.services.base import Service, operation
from emustudio.services.ec2.zones import zone_by_name
from emustudio.services.emr.workspaces import WorkspaceManager


class InvalidRequest(AwsError):
    code = "InvalidRequestException"


class OperatorService(Service):
    name = "emustudio"

    def __init__(self, workspaces: WorkspaceManager, *, region: str) -> None:
        self.workspaces = workspaces
        self.region = region

    def _zone(self, params: dict[str, Any]) -> str:
        zone = str(params["ZoneName"])
        known = zone_by_name(self.region)
        if zone not in known:
            raise InvalidRequest(
                f"Availability Zone '{zone}' does not exist in {self.region};"
                f" its zones are {', '.join(known)}."
            )
        return zone

    @operation("FailAvailabilityZone")
    async def fail_availability_zone(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        zone = self._zone(params)
        hit = await self.workspaces.fail_zone(zone)
        return {"ZoneName": zone, "State": "impaired", "Workspaces": hit}

    @operation("RestoreAvailabilityZone")
    async def restore_availability_zone(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        zone = self._zone(params)
        restored = await self.workspaces.restore_zone(zone)
        return {"ZoneName": zone, "State": "available", "Workspaces": restored}
