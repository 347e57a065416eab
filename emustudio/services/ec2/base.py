"""What the EC2 operation groups share: their dependencies and the ``get_*_or_raise`` lookups."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import Session, select

from emustudio import ids
from emustudio.runtime.networks import SubnetNetworks
from emustudio.services.base import Service
from emustudio.services.ec2.common import Ec2Error
from emustudio.store import Store
from emustudio.store.tables import SecurityGroup, Subnet, Vpc

Rule = dict[str, Any]


def egress_everywhere() -> Rule:
    return {
        "id": ids.ec2_id("sgr"),
        "egress": True,
        "protocol": "-1",
        "from_port": None,
        "to_port": None,
        "cidr_ipv4": "0.0.0.0/0",
        "description": None,
    }


class Ec2Base(Service):
    name = "ec2"

    def __init__(
        self,
        store: Store,
        networks: SubnetNetworks,
        *,
        region: str,
        account_id: str,
        groups_changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.networks = networks
        self.region = region
        self.account_id = account_id
        # Called after a group's rules change, before the API answers: the enforcement on the
        # subnet networks (services/ec2/enforcement.py) takes the change before the caller
        # learns it is made.
        self.groups_changed = groups_changed

    async def enforce(self) -> None:
        if self.groups_changed is not None:
            await self.groups_changed()

    @staticmethod
    def now() -> float:
        return time.time()

    def get_vpc_or_raise(self, session: Session, vpc_id: str) -> Vpc:
        vpc = session.get(Vpc, vpc_id)
        if vpc is None or vpc.region != self.region:
            raise Ec2Error("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")
        return vpc

    def get_subnet_or_raise(self, session: Session, subnet_id: str) -> Subnet:
        subnet = session.get(Subnet, subnet_id)
        if subnet is None or subnet.region != self.region:
            raise Ec2Error(
                "InvalidSubnetID.NotFound", f"The subnet ID '{subnet_id}' does not exist"
            )
        return subnet

    def get_group_or_raise(self, session: Session, group_id: str) -> SecurityGroup:
        group = session.get(SecurityGroup, group_id)
        if group is None or group.region != self.region:
            raise Ec2Error(
                "InvalidGroup.NotFound", f"The security group '{group_id}' does not exist"
            )
        return group

    def default_vpc(self, session: Session) -> Vpc | None:
        return session.exec(
            select(Vpc).where(Vpc.region == self.region, Vpc.is_default == True)  # noqa: E712
        ).first()

    def new_group(self, vpc_id: str, name: str, description: str) -> SecurityGroup:
        group_id = ids.ec2_id("sg")
        rules = [egress_everywhere()]
        if name == "default":
            rules.append(
                {
                    "id": ids.ec2_id("sgr"),
                    "egress": False,
                    "protocol": "-1",
                    "from_port": None,
                    "to_port": None,
                    "group_id": group_id,
                    "description": None,
                }
            )
        return SecurityGroup(
            id=group_id,
            region=self.region,
            vpc_id=vpc_id,
            name=name,
            description=description,
            rules=rules,
            created_at=self.now(),
        )
