"""CreateTags, DeleteTags and DescribeTags over VPCs, subnets and security groups."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.ec2.base import Ec2Base
from emustudio.services.ec2.common import Ec2Error, apply_filters, check_tags, paginate
from emustudio.store.tables import Tag

# Resource id prefix -> (EC2 resource type, lookup).
_TYPES = {"vpc": "vpc", "subnet": "subnet", "sg": "security-group"}


class TagOperations(Ec2Base):
    def _resource_type(self, session: Session, resource_id: str) -> str:
        prefix = resource_id.split("-", 1)[0]
        if prefix not in _TYPES or "-" not in resource_id:
            raise Ec2Error("InvalidID", f"The ID '{resource_id}' is not valid")
        lookup = {
            "vpc": self.get_vpc_or_raise,
            "subnet": self.get_subnet_or_raise,
            "sg": self.get_group_or_raise,
        }[prefix]
        lookup(session, resource_id)
        return _TYPES[prefix]

    @operation("CreateTags")
    async def create_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        check_tags(params["Tags"])

        def create(session: Session) -> dict[str, Any]:
            for resource_id in params["Resources"]:
                kind = self._resource_type(session, resource_id)
                for tag in params["Tags"]:
                    session.merge(
                        Tag(
                            resource_id=resource_id,
                            key=tag["Key"],
                            value=tag.get("Value", ""),
                            resource_type=kind,
                        )
                    )
            return {}

        return await self.store.tx(create)

    @operation("DeleteTags")
    async def delete_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            for resource_id in params["Resources"]:
                self._resource_type(session, resource_id)
                existing = session.exec(select(Tag).where(Tag.resource_id == resource_id)).all()
                wanted = params.get("Tags")
                for tag in existing:
                    # No Tags: every tag goes. A tag with a Value goes only when it matches.
                    if wanted is None or any(
                        w["Key"] == tag.key and ("Value" not in w or w["Value"] == tag.value)
                        for w in wanted
                    ):
                        session.delete(tag)
            return {}

        return await self.store.tx(delete)

    @operation("DescribeTags")
    async def describe_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            rows = [
                t
                for t in session.exec(select(Tag).order_by(Tag.resource_id, Tag.key))
                if t.resource_type in _TYPES.values()
            ]
            rows = apply_filters(
                rows,
                params.get("Filters", []),
                {
                    "resource-id": lambda t: [t.resource_id],
                    "resource-type": lambda t: [t.resource_type],
                    "key": lambda t: [t.key],
                    "value": lambda t: [t.value],
                },
                lambda t: {t.key: t.value},
            )
            page, token = paginate(rows, params)
            return pages.with_token(
                {
                    "Tags": [
                        {
                            "ResourceId": t.resource_id,
                            "ResourceType": t.resource_type,
                            "Key": t.key,
                            "Value": t.value,
                        }
                        for t in page
                    ]
                },
                token,
            )

        return await self.store.tx(describe)
