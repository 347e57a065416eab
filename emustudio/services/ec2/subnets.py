"""Subnets, each one a Docker bridge network with the subnet's CIDR.

CreateSubnet checks everything first, then creates the network, then writes the row; if the
network cannot be made (its CIDR is taken on the Docker host by something else) nothing is
written. DeleteSubnet removes the network before the row, so a subnet whose network still has
containers stays, as AWS keeps a subnet with network interfaces (``DependencyViolation``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.runtime.networks import CidrConflict, NetworkInUse, SubnetSpec
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.ec2.base import Ec2Base
from emustudio.services.ec2.common import (
    Ec2Error,
    apply_filters,
    drop_tags,
    only_ids,
    paginate,
    parse_cidr,
    put_tags,
    spec_tags,
    tag_list,
    tags_of,
)
from emustudio.services.ec2.vpcs import check_block_size
from emustudio.services.ec2.zones import zone_by_id, zone_by_name, zones
from emustudio.store.tables import Subnet

# AWS reserves the network address, three more at the start and the broadcast address.
RESERVED_ADDRESSES = 5


def spec_of(subnet: Subnet) -> SubnetSpec:
    return SubnetSpec(
        subnet_id=subnet.id,
        vpc_id=subnet.vpc_id,
        availability_zone=subnet.availability_zone,
        cidr=subnet.cidr,
        docker_cidr=subnet.docker_cidr,
    )


class SubnetOperations(Ec2Base):
    def subnet_arn(self, subnet_id: str) -> str:
        return ids.arn("ec2", self.region, self.account_id, f"subnet/{subnet_id}")

    def subnet_shape(self, subnet: Subnet, tags: dict[str, str]) -> dict[str, Any]:
        zone = zone_by_name(self.region)[subnet.availability_zone]
        size = ipaddress.IPv4Network(subnet.cidr).num_addresses
        out: dict[str, Any] = {
            "SubnetId": subnet.id,
            "SubnetArn": self.subnet_arn(subnet.id),
            "VpcId": subnet.vpc_id,
            "CidrBlock": subnet.cidr,
            "AvailabilityZone": zone.name,
            "AvailabilityZoneId": zone.zone_id,
            "AvailableIpAddressCount": size - RESERVED_ADDRESSES,
            "DefaultForAz": subnet.default_for_az,
            "MapPublicIpOnLaunch": subnet.map_public_ip_on_launch,
            "MapCustomerOwnedIpOnLaunch": False,
            "State": "available",
            "OwnerId": self.account_id,
            "AssignIpv6AddressOnCreation": False,
            "Ipv6CidrBlockAssociationSet": [],
            "EnableDns64": False,
            "Ipv6Native": False,
            "PrivateDnsNameOptionsOnLaunch": {
                "HostnameType": "ip-name",
                "EnableResourceNameDnsARecord": False,
                "EnableResourceNameDnsAAAARecord": False,
            },
        }
        if tags:
            out["Tags"] = tag_list(tags)
        return out

    def _pick_zone(self, session: Session, params: dict[str, Any]) -> str:
        names = zone_by_name(self.region)
        if name := params.get("AvailabilityZone"):
            if name not in names:
                raise Ec2Error(
                    "InvalidParameterValue",
                    f"Value ({name}) for parameter availabilityZone is invalid. Subnets can"
                    " currently only be created in the following availability zones: "
                    + ", ".join(names)
                    + ".",
                )
            return str(name)
        if zone_id := params.get("AvailabilityZoneId"):
            by_id = zone_by_id(self.region)
            if zone_id not in by_id:
                raise Ec2Error(
                    "InvalidParameterValue",
                    f"Value ({zone_id}) for parameter availabilityZoneId is invalid. Subnets can"
                    " currently only be created in the following availability zone ids: "
                    + ", ".join(by_id)
                    + ".",
                )
            return by_id[zone_id].name
        # AWS picks a zone; the one with fewest subnets spreads them as a user would.
        counts = {z.name: 0 for z in zones(self.region)}
        for subnet in session.exec(select(Subnet).where(Subnet.region == self.region)):
            counts[subnet.availability_zone] = counts.get(subnet.availability_zone, 0) + 1
        return min(counts, key=lambda n: (counts[n], n))

    def _check_placement(self, session: Session, vpc_id: str, cidr: str) -> None:
        vpc = self.get_vpc_or_raise(session, vpc_id)
        net = ipaddress.IPv4Network(cidr)
        if not net.subnet_of(ipaddress.IPv4Network(vpc.cidr)):
            raise Ec2Error("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid.")
        for other in session.exec(select(Subnet).where(Subnet.vpc_id == vpc_id)):
            if net.overlaps(ipaddress.IPv4Network(other.cidr)):
                raise Ec2Error(
                    "InvalidSubnet.Conflict",
                    f"The CIDR '{cidr}' conflicts with another subnet",
                )

    def insert_subnet(
        self, session: Session, spec: SubnetSpec, docker_cidr: str, *, default_for_az: bool
    ) -> Subnet:
        subnet = Subnet(
            id=spec.subnet_id,
            region=self.region,
            vpc_id=spec.vpc_id,
            cidr=spec.cidr,
            availability_zone=spec.availability_zone,
            default_for_az=default_for_az,
            map_public_ip_on_launch=default_for_az,
            docker_cidr=docker_cidr if docker_cidr != spec.cidr else None,
            created_at=self.now(),
        )
        session.add(subnet)
        return subnet

    async def make_network(self, spec: SubnetSpec) -> str:
        """Create the subnet's Docker network; the Docker-side CIDR (remapped or not).

        Raises ``CidrConflict`` when the CIDR is taken on the Docker host and remap is off.
        """
        network = await self.networks.ensure(spec)
        return network.docker_cidr

    @operation("CreateSubnet")
    async def create_subnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]
        cidr_text = params.get("CidrBlock")
        if not cidr_text:
            raise Ec2Error("MissingParameter", "The request must contain the parameter cidrBlock")
        check_block_size(cidr_text, "InvalidSubnet.Range")
        cidr = str(parse_cidr(cidr_text))
        tags = spec_tags(params, "subnet")

        def plan(session: Session) -> SubnetSpec:
            self._check_placement(session, vpc_id, cidr)
            return SubnetSpec(ids.ec2_id("subnet"), vpc_id, self._pick_zone(session, params), cidr)

        spec = await self.store.tx(plan)
        try:
            docker_cidr = await self.make_network(spec)
        except CidrConflict as exc:
            raise Ec2Error("InvalidSubnet.Conflict", str(exc)) from None

        def create(session: Session) -> dict[str, Any]:
            # Checked again inside the writing transaction: a concurrent CreateSubnet may have
            # taken the CIDR while the network was being made.
            self._check_placement(session, vpc_id, cidr)
            subnet = self.insert_subnet(session, spec, docker_cidr, default_for_az=False)
            put_tags(session, subnet.id, "subnet", tags)
            return {
                "Subnet": self.subnet_shape(subnet, {t["Key"]: t.get("Value", "") for t in tags})
            }

        try:
            return await self.store.tx(create)
        except BaseException:
            await self.networks.remove(spec.subnet_id)
            raise

    @operation("DescribeSubnets")
    async def describe_subnets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            subnets = list(
                session.exec(
                    select(Subnet)
                    .where(Subnet.region == self.region)
                    .order_by(col(Subnet.created_at))
                )
            )
            subnets = only_ids(
                subnets, params.get("SubnetIds"), "InvalidSubnetID.NotFound", "subnet ID"
            )
            tags = tags_of(session, [s.id for s in subnets])
            zone_ids = {z.name: z.zone_id for z in zones(self.region)}
            subnets = apply_filters(
                subnets,
                params.get("Filters", []),
                {
                    "subnet-id": lambda s: [s.id],
                    "subnet-arn": lambda s: [self.subnet_arn(s.id)],
                    "vpc-id": lambda s: [s.vpc_id],
                    "cidr": lambda s: [s.cidr],
                    "cidr-block": lambda s: [s.cidr],
                    "cidrBlock": lambda s: [s.cidr],
                    "availability-zone": lambda s: [s.availability_zone],
                    "availabilityZone": lambda s: [s.availability_zone],
                    "availability-zone-id": lambda s: [zone_ids[s.availability_zone]],
                    "default-for-az": lambda s: [str(s.default_for_az).lower()],
                    "defaultForAz": lambda s: [str(s.default_for_az).lower()],
                    "map-public-ip-on-launch": lambda s: [str(s.map_public_ip_on_launch).lower()],
                    "owner-id": lambda s: [self.account_id],
                    "state": lambda s: ["available"],
                },
                lambda s: tags[s.id],
            )
            page, token = paginate(subnets, params)
            return pages.with_token(
                {"Subnets": [self.subnet_shape(s, tags[s.id]) for s in page]}, token
            )

        return await self.store.tx(describe)

    @operation("DeleteSubnet")
    async def delete_subnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        subnet_id = params["SubnetId"]
        await self.store.tx(lambda session: self.get_subnet_or_raise(session, subnet_id))
        try:
            await self.networks.remove(subnet_id)
        except NetworkInUse:
            raise Ec2Error(
                "DependencyViolation",
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted.",
            ) from None

        def delete(session: Session) -> dict[str, Any]:
            subnet = self.get_subnet_or_raise(session, subnet_id)
            drop_tags(session, subnet.id)
            session.delete(subnet)
            return {}

        return await self.store.tx(delete)
