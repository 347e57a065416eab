"""EC2, the VPC pieces: VPCs, subnets (Docker networks), security groups, tags and AZs."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.runtime.networks import ReconcileReport, SubnetSpec
from emustudio.services.base import operation
from emustudio.services.ec2.common import Ec2Error, apply_filters
from emustudio.services.ec2.security_groups import SecurityGroupOperations
from emustudio.services.ec2.subnets import SubnetOperations, spec_of
from emustudio.services.ec2.tags import TagOperations
from emustudio.services.ec2.vpcs import DEFAULT_VPC_CIDR, VpcOperations
from emustudio.services.ec2.zones import zones
from emustudio.store.tables import Meta, Subnet, ZoneState

__all__ = ["Ec2Error", "Ec2Service"]

# One /20 per AZ inside 172.31.0.0/16, as AWS lays out default subnets.
_DEFAULT_SUBNET_CIDRS = ("172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20")


# Operations only ever asked with DryRun (EMR Studio's service-role check at attach): the
# authorization is real, the resource is not made.
DRY_RUN_ONLY = frozenset({"CreateNetworkInterface"})


class Ec2Service(VpcOperations, SubnetOperations, SecurityGroupOperations, TagOperations):
    """The EC2 operations emustudio answers; everything else in the model is NotImplemented.

    ``DryRun``: the pipeline has authorized the call by the time it is dispatched, so a dry run
    ends here with EC2's ``DryRunOperation`` (412), as AWS answers a permitted dry run."""

    @classmethod
    def model_operations(cls) -> frozenset[str]:
        return super().model_operations() | DRY_RUN_ONLY

    async def dispatch(self, ctx: RequestContext) -> dict[str, Any]:
        if ctx.params.get("DryRun") and (
            ctx.operation_name in self.operations or ctx.operation_name in DRY_RUN_ONLY
        ):
            raise Ec2Error(
                "DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412
            )
        return await super().dispatch(ctx)

    @operation("DescribeAvailabilityZones")
    async def describe_availability_zones(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        found = zones(self.region)
        impaired = await self.store.tx(
            lambda s: {
                z.name for z in s.exec(select(ZoneState).where(ZoneState.region == self.region))
            }
        )
        for key, attr in (("ZoneNames", "name"), ("ZoneIds", "zone_id")):
            for wanted in params.get(key) or []:
                if wanted not in {getattr(z, attr) for z in found}:
                    raise Ec2Error(
                        "InvalidParameterValue",
                        f"The zone '{wanted}' does not exist."
                        if key == "ZoneNames"
                        else f"Invalid availability zone: [{wanted}]",
                    )
            if params.get(key):
                found = [z for z in found if getattr(z, attr) in params[key]]
        found = apply_filters(
            found,
            params.get("Filters", []),
            {
                "zone-name": lambda z: [z.name],
                "zone-id": lambda z: [z.zone_id],
                "region-name": lambda z: [z.region],
                "state": lambda z: ["impaired" if z.name in impaired else "available"],
                "zone-type": lambda z: ["availability-zone"],
                "group-name": lambda z: [z.region],
                "opt-in-status": lambda z: ["opt-in-not-required"],
            },
            lambda z: {},
        )
        return {
            "AvailabilityZones": [
                {
                    "ZoneName": z.name,
                    "ZoneId": z.zone_id,
                    "State": "impaired" if z.name in impaired else "available",
                    "OptInStatus": "opt-in-not-required",
                    "Messages": (
                        [{"Message": "This Availability Zone is impaired (an emustudio outage)."}]
                        if z.name in impaired
                        else []
                    ),
                    "RegionName": z.region,
                    "GroupName": z.region,
                    "NetworkBorderGroup": z.region,
                    "ZoneType": "availability-zone",
                }
                for z in found
            ]
        }

    async def ensure_default_vpc(self) -> None:
        """Create the region's default VPC on first start (once: a user may delete it)."""
        marker = f"default-vpc:{self.region}"
        if await self.store.tx(lambda s: s.get(Meta, marker) is not None):
            return
        vpc_id = ids.ec2_id("vpc")
        specs = [
            SubnetSpec(ids.ec2_id("subnet"), vpc_id, zone.name, cidr)
            for zone, cidr in zip(zones(self.region), _DEFAULT_SUBNET_CIDRS, strict=True)
        ]
        docker_cidrs: list[str] = []
        try:
            for spec in specs:
                docker_cidrs.append(await self.make_network(spec))
        except BaseException:
            for spec in specs[: len(docker_cidrs)]:
                await self.networks.remove(spec.subnet_id)
            raise

        def create(session: Session) -> None:
            self.insert_vpc(session, DEFAULT_VPC_CIDR, [], is_default=True, vpc_id=vpc_id)
            for spec, docker_cidr in zip(specs, docker_cidrs, strict=True):
                self.insert_subnet(session, spec, docker_cidr, default_for_az=True)
            session.add(Meta(key=marker, value=vpc_id))

        await self.store.tx(create)

    async def reconcile_networks(self) -> ReconcileReport:
        """Recreate missing subnet networks; remove this instance's orphans."""
        subnets = await self.store.tx(
            lambda s: list(s.exec(select(Subnet).where(Subnet.region == self.region)))
        )
        return await self.networks.reconcile([spec_of(subnet) for subnet in subnets])
