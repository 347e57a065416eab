"""VPCs: CreateVpc, DescribeVpcs, DeleteVpc, and the default VPC every region starts with.

AWS allows IPv4 VPC blocks from /16 to /28. Every VPC gets a ``default`` security group. A VPC
with subnets or other security groups cannot be deleted (``DependencyViolation``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.context import RequestContext
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
from emustudio.store.tables import SecurityGroup, Subnet, Vpc

DEFAULT_VPC_CIDR = "172.31.0.0/16"


def check_block_size(cidr: str, code: str) -> None:
    net = parse_cidr(cidr)
    if not 16 <= net.prefixlen <= 28:
        raise Ec2Error(code, f"The CIDR '{cidr}' is invalid.")


class VpcOperations(Ec2Base):
    def vpc_shape(self, vpc: Vpc, tags: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "VpcId": vpc.id,
            "OwnerId": self.account_id,
            "State": "available",
            "CidrBlock": vpc.cidr,
            "DhcpOptionsId": "default",
            "InstanceTenancy": "default",
            "IsDefault": vpc.is_default,
            "CidrBlockAssociationSet": [
                {
                    "AssociationId": vpc.cidr_association_id,
                    "CidrBlock": vpc.cidr,
                    "CidrBlockState": {"State": "associated"},
                }
            ],
            "Ipv6CidrBlockAssociationSet": [],
        }
        if tags:
            out["Tags"] = tag_list(tags)
        return out

    def insert_vpc(
        self,
        session: Session,
        cidr: str,
        tags: list[dict[str, str]],
        *,
        is_default: bool = False,
        vpc_id: str | None = None,
    ) -> Vpc:
        vpc = Vpc(
            id=vpc_id or ids.ec2_id("vpc"),
            region=self.region,
            cidr=cidr,
            is_default=is_default,
            cidr_association_id=ids.ec2_id("vpc-cidr-assoc"),
            created_at=self.now(),
        )
        session.add(vpc)
        # Tables have no ORM relationships, so the VPC row must exist before its group's.
        session.flush()
        put_tags(session, vpc.id, "vpc", tags)
        session.add(self.new_group(vpc.id, "default", "default VPC security group"))
        session.flush()
        return vpc

    @operation("CreateVpc")
    async def create_vpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cidr_text = params.get("CidrBlock")
        if not cidr_text:
            raise Ec2Error(
                "MissingParameter", "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided."
            )
        check_block_size(cidr_text, "InvalidVpc.Range")
        cidr = str(parse_cidr(cidr_text))
        tags = spec_tags(params, "vpc")

        def create(session: Session) -> dict[str, Any]:
            vpc = self.insert_vpc(session, cidr, tags)
            return {"Vpc": self.vpc_shape(vpc, {t["Key"]: t.get("Value", "") for t in tags})}

        return await self.store.tx(create)

    @operation("DescribeVpcs")
    async def describe_vpcs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            vpcs = list(
                session.exec(
                    select(Vpc).where(Vpc.region == self.region).order_by(col(Vpc.created_at))
                )
            )
            vpcs = only_ids(vpcs, params.get("VpcIds"), "InvalidVpcID.NotFound", "vpc ID")
            tags = tags_of(session, [v.id for v in vpcs])
            vpcs = apply_filters(
                vpcs,
                params.get("Filters", []),
                {
                    "vpc-id": lambda v: [v.id],
                    "cidr": lambda v: [v.cidr],
                    "cidr-block": lambda v: [v.cidr],
                    "cidr-block-association.cidr-block": lambda v: [v.cidr],
                    "cidr-block-association.association-id": lambda v: [v.cidr_association_id],
                    "cidr-block-association.state": lambda v: ["associated"],
                    "dhcp-options-id": lambda v: ["default"],
                    "is-default": lambda v: [str(v.is_default).lower()],
                    "isDefault": lambda v: [str(v.is_default).lower()],
                    "owner-id": lambda v: [self.account_id],
                    "state": lambda v: ["available"],
                },
                lambda v: tags[v.id],
            )
            page, token = paginate(vpcs, params)
            return pages.with_token({"Vpcs": [self.vpc_shape(v, tags[v.id]) for v in page]}, token)

        return await self.store.tx(describe)

    @operation("DeleteVpc")
    async def delete_vpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]

        def delete(session: Session) -> dict[str, Any]:
            vpc = self.get_vpc_or_raise(session, vpc_id)
            subnets = session.exec(select(Subnet).where(Subnet.vpc_id == vpc_id)).first()
            groups = list(session.exec(select(SecurityGroup).where(SecurityGroup.vpc_id == vpc_id)))
            if subnets is not None or any(g.name != "default" for g in groups):
                raise Ec2Error(
                    "DependencyViolation",
                    f"The vpc '{vpc_id}' has dependencies and cannot be deleted.",
                )
            for group in groups:
                drop_tags(session, group.id)
                session.delete(group)
            drop_tags(session, vpc.id)
            session.flush()
            session.delete(vpc)
            return {}

        return await self.store.tx(delete)
