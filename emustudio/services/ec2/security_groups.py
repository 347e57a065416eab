"""Security groups and their rules.

A rule is stored with one peer (a CIDR, an IPv6 CIDR, a group or a prefix list), as AWS gives
each such rule its own ``sgr-`` id; DescribeSecurityGroups folds them back into ``IpPermissions``
by protocol and port range. A new group may send anywhere (one egress rule to ``0.0.0.0/0``);
a VPC's ``default`` group also admits traffic from itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.ec2.base import Ec2Base, Rule
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
from emustudio.store.tables import SecurityGroup

PEER_KEYS = ("cidr_ipv4", "cidr_ipv6", "group_id", "prefix_list_id")
_PROTOCOLS = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "-1": "-1",
    "all": "-1",
    "icmpv6": "icmpv6",
    "58": "icmpv6",
}


def rule_key(rule: Rule) -> tuple[Any, ...]:
    return (
        rule["egress"],
        rule["protocol"],
        rule["from_port"],
        rule["to_port"],
        *tuple(rule.get(k) for k in PEER_KEYS),
    )


def describe_rule(rule: Rule) -> str:
    peer = next(rule[k] for k in PEER_KEYS if rule.get(k))
    protocol = "ALL" if rule["protocol"] == "-1" else rule["protocol"].upper()
    ports = (
        ""
        if rule["from_port"] is None
        else f", from port: {rule['from_port']}, to port: {rule['to_port']}"
    )
    return f"peer: {peer}, {protocol}{ports}, ALLOW"


class SecurityGroupOperations(Ec2Base):
    def group_arn(self, group_id: str) -> str:
        return ids.arn("ec2", self.region, self.account_id, f"security-group/{group_id}")

    # --- shapes -------------------------------------------------------------------------------

    def permissions(self, rules: list[Rule], egress: bool) -> list[dict[str, Any]]:
        grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
        for rule in rules:
            if rule["egress"] != egress:
                continue
            key = (rule["protocol"], rule["from_port"], rule["to_port"])
            perm = grouped.setdefault(key, self._permission_head(rule))
            description = {"Description": rule["description"]} if rule.get("description") else {}
            if rule.get("cidr_ipv4"):
                perm["IpRanges"].append({"CidrIp": rule["cidr_ipv4"], **description})
            elif rule.get("cidr_ipv6"):
                perm["Ipv6Ranges"].append({"CidrIpv6": rule["cidr_ipv6"], **description})
            elif rule.get("group_id"):
                perm["UserIdGroupPairs"].append(
                    {"GroupId": rule["group_id"], "UserId": self.account_id, **description}
                )
            else:
                perm["PrefixListIds"].append(
                    {"PrefixListId": rule["prefix_list_id"], **description}
                )
        return list(grouped.values())

    @staticmethod
    def _permission_head(rule: Rule) -> dict[str, Any]:
        head: dict[str, Any] = {
            "IpProtocol": rule["protocol"],
            "IpRanges": [],
            "Ipv6Ranges": [],
            "UserIdGroupPairs": [],
            "PrefixListIds": [],
        }
        if rule["from_port"] is not None:
            head["FromPort"] = rule["from_port"]
            head["ToPort"] = rule["to_port"]
        return head

    def group_shape(self, group: SecurityGroup, tags: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "GroupId": group.id,
            "GroupName": group.name,
            "Description": group.description,
            "VpcId": group.vpc_id,
            "OwnerId": self.account_id,
            "SecurityGroupArn": self.group_arn(group.id),
            "IpPermissions": self.permissions(group.rules, egress=False),
            "IpPermissionsEgress": self.permissions(group.rules, egress=True),
        }
        if tags:
            out["Tags"] = tag_list(tags)
        return out

    def rule_shape(self, group: SecurityGroup, rule: Rule) -> dict[str, Any]:
        out: dict[str, Any] = {
            "SecurityGroupRuleId": rule["id"],
            "GroupId": group.id,
            "GroupOwnerId": self.account_id,
            "IsEgress": rule["egress"],
            "IpProtocol": rule["protocol"],
            "FromPort": -1 if rule["from_port"] is None else rule["from_port"],
            "ToPort": -1 if rule["to_port"] is None else rule["to_port"],
            "SecurityGroupRuleArn": ids.arn(
                "ec2", self.region, self.account_id, f"security-group-rule/{rule['id']}"
            ),
        }
        if rule.get("cidr_ipv4"):
            out["CidrIpv4"] = rule["cidr_ipv4"]
        if rule.get("cidr_ipv6"):
            out["CidrIpv6"] = rule["cidr_ipv6"]
        if rule.get("prefix_list_id"):
            out["PrefixListId"] = rule["prefix_list_id"]
        if rule.get("group_id"):
            out["ReferencedGroupInfo"] = {"GroupId": rule["group_id"], "UserId": self.account_id}
        if rule.get("description"):
            out["Description"] = rule["description"]
        return out

    def revoked_shape(self, group: SecurityGroup, rule: Rule) -> dict[str, Any]:
        out = self.rule_shape(group, rule)
        for key in ("GroupOwnerId", "SecurityGroupRuleArn"):
            out.pop(key)
        if referenced := out.pop("ReferencedGroupInfo", None):
            out["ReferencedGroupId"] = referenced["GroupId"]
        return out

    # --- reading rules from a request ---------------------------------------------------------

    def _rules_from(
        self, session: Session, group: SecurityGroup, params: dict[str, Any], egress: bool
    ) -> list[Rule]:
        perms = list(params.get("IpPermissions") or [])
        if (
            params.get("IpProtocol")
            or params.get("CidrIp")
            or params.get("SourceSecurityGroupName")
        ):
            legacy: dict[str, Any] = {"IpProtocol": params.get("IpProtocol", "-1")}
            for key in ("FromPort", "ToPort"):
                if key in params:
                    legacy[key] = params[key]
            if params.get("CidrIp"):
                legacy["IpRanges"] = [{"CidrIp": params["CidrIp"]}]
            if params.get("SourceSecurityGroupName"):
                legacy["UserIdGroupPairs"] = [{"GroupName": params["SourceSecurityGroupName"]}]
            perms.append(legacy)
        if not perms:
            raise Ec2Error(
                "MissingParameter", "The request must contain the parameter ipPermissions"
            )
        return [rule for perm in perms for rule in self._expand(session, group, perm, egress)]

    def _expand(
        self, session: Session, group: SecurityGroup, perm: dict[str, Any], egress: bool
    ) -> Iterator[Rule]:
        raw_protocol = str(perm.get("IpProtocol", "")).lower()
        protocol = _PROTOCOLS.get(raw_protocol)
        if protocol is None:
            raise Ec2Error(
                "InvalidParameterValue",
                f"Invalid value '{perm.get('IpProtocol')}' for IP protocol. Unknown protocol.",
            )
        from_port, to_port = perm.get("FromPort"), perm.get("ToPort")
        if protocol == "-1":
            from_port = to_port = None
        elif protocol in ("tcp", "udp"):
            if from_port is None or to_port is None:
                raise Ec2Error(
                    "InvalidParameterValue",
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.'"
                    " for portRange",
                )
            if not (0 <= from_port <= to_port <= 65535):
                raise Ec2Error(
                    "InvalidParameterValue",
                    f"Invalid value 'Invalid port range: from {from_port} to {to_port}'"
                    " for portRange",
                )
        base = {"egress": egress, "protocol": protocol, "from_port": from_port, "to_port": to_port}
        peers = 0
        for r in perm.get("IpRanges") or []:
            peers += 1
            cidr = str(parse_cidr(r.get("CidrIp", ""), "cidrIp"))
            yield {**base, "cidr_ipv4": cidr, "description": r.get("Description")}
        for r in perm.get("Ipv6Ranges") or []:
            peers += 1
            yield {**base, "cidr_ipv6": r.get("CidrIpv6"), "description": r.get("Description")}
        for r in perm.get("PrefixListIds") or []:
            peers += 1
            yield {
                **base,
                "prefix_list_id": r.get("PrefixListId"),
                "description": r.get("Description"),
            }
        for pair in perm.get("UserIdGroupPairs") or []:
            peers += 1
            if pair.get("GroupId"):
                peer = self.get_group_or_raise(session, pair["GroupId"])
            else:
                peer = self._group_by_name(session, group.vpc_id, pair.get("GroupName", ""))
            yield {**base, "group_id": peer.id, "description": pair.get("Description")}
        if peers == 0:
            raise Ec2Error(
                "MissingParameter",
                "The request must contain a peer: an IP range, a group or a prefix list",
            )

    def _group_by_name(self, session: Session, vpc_id: str, name: str) -> SecurityGroup:
        group = session.exec(
            select(SecurityGroup).where(SecurityGroup.vpc_id == vpc_id, SecurityGroup.name == name)
        ).first()
        if group is None:
            raise Ec2Error(
                "InvalidGroup.NotFound",
                f"The security group '{name}' does not exist in VPC '{vpc_id}'",
            )
        return group

    def _target(self, session: Session, params: dict[str, Any]) -> SecurityGroup:
        if params.get("GroupId"):
            return self.get_group_or_raise(session, params["GroupId"])
        if params.get("GroupName"):
            default = self.default_vpc(session)
            if default is None:
                raise Ec2Error(
                    "VPCIdNotSpecified",
                    "No default VPC for this user. GroupName is only"
                    " supported for EC2-Classic and default VPC.",
                )
            return self._group_by_name(session, default.id, params["GroupName"])
        raise Ec2Error("MissingParameter", "The request must contain the parameter groupId")

    # --- operations ---------------------------------------------------------------------------

    @operation("CreateSecurityGroup")
    async def create_security_group(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        name, description = params["GroupName"], params["Description"]
        if name.lower().startswith("sg-"):
            raise Ec2Error(
                "InvalidParameterValue",
                f"Value ({name}) for parameter GroupName is invalid. Group names may not be in"
                " the format sg-*.",
            )
        if not 1 <= len(name) <= 255 or len(description) > 255:
            raise Ec2Error(
                "InvalidParameterValue",
                "Group name and description must be between 1 and 255 characters.",
            )
        tags = spec_tags(params, "security-group")

        def create(session: Session) -> dict[str, Any]:
            if params.get("VpcId"):
                vpc = self.get_vpc_or_raise(session, params["VpcId"])
            else:
                found = self.default_vpc(session)
                if found is None:
                    raise Ec2Error("VPCIdNotSpecified", "No default VPC for this user")
                vpc = found
            clash = session.exec(
                select(SecurityGroup).where(
                    SecurityGroup.vpc_id == vpc.id, SecurityGroup.name == name
                )
            ).first()
            if clash is not None:
                raise Ec2Error(
                    "InvalidGroup.Duplicate",
                    f"The security group '{name}' already exists for VPC '{vpc.id}'",
                )
            group = self.new_group(vpc.id, name, description)
            session.add(group)
            put_tags(session, group.id, "security-group", tags)
            out: dict[str, Any] = {
                "GroupId": group.id,
                "SecurityGroupArn": self.group_arn(group.id),
            }
            if tags:
                out["Tags"] = tags
            return out

        return await self.store.tx(create)

    @operation("DescribeSecurityGroups")
    async def describe_security_groups(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            groups = list(
                session.exec(
                    select(SecurityGroup)
                    .where(SecurityGroup.region == self.region)
                    .order_by(col(SecurityGroup.created_at))
                )
            )
            groups = only_ids(
                groups, params.get("GroupIds"), "InvalidGroup.NotFound", "security group"
            )
            if names := params.get("GroupNames"):
                default = self.default_vpc(session)
                in_default = [g for g in groups if default and g.vpc_id == default.id]
                for name in names:
                    if not any(g.name == name for g in in_default):
                        raise Ec2Error(
                            "InvalidGroup.NotFound",
                            f"The security group '{name}' does not exist in default VPC"
                            f" '{default.id if default else 'none'}'",
                        )
                groups = [g for g in in_default if g.name in names]
            tags = tags_of(session, [g.id for g in groups])
            groups = apply_filters(
                groups,
                params.get("Filters", []),
                {
                    "group-id": lambda g: [g.id],
                    "group-name": lambda g: [g.name],
                    "description": lambda g: [g.description],
                    "vpc-id": lambda g: [g.vpc_id],
                    "owner-id": lambda g: [self.account_id],
                    "ip-permission.protocol": lambda g: [
                        r["protocol"] for r in g.rules if not r["egress"]
                    ],
                    "ip-permission.cidr": lambda g: [
                        r["cidr_ipv4"] for r in g.rules if not r["egress"] and r.get("cidr_ipv4")
                    ],
                    "ip-permission.group-id": lambda g: [
                        r["group_id"] for r in g.rules if not r["egress"] and r.get("group_id")
                    ],
                    "egress.ip-permission.cidr": lambda g: [
                        r["cidr_ipv4"] for r in g.rules if r["egress"] and r.get("cidr_ipv4")
                    ],
                },
                lambda g: tags[g.id],
            )
            page, token = paginate(groups, params)
            return pages.with_token(
                {"SecurityGroups": [self.group_shape(g, tags[g.id]) for g in page]}, token
            )

        return await self.store.tx(describe)

    @operation("DeleteSecurityGroup")
    async def delete_security_group(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            group = self._target(session, params)
            if group.name == "default":
                raise Ec2Error(
                    "CannotDelete",
                    f'the specified group: "{group.id}" name: "default" cannot be deleted by a'
                    " user",
                )
            others = session.exec(select(SecurityGroup).where(SecurityGroup.region == self.region))
            for other in others:
                if other.id != group.id and any(r.get("group_id") == group.id for r in other.rules):
                    raise Ec2Error(
                        "DependencyViolation", f"resource {group.id} has a dependent object"
                    )
            drop_tags(session, group.id)
            session.delete(group)
            return {"Return": True, "GroupId": group.id}

        out = await self.store.tx(delete)
        await self.enforce()
        return out

    async def _authorize(self, params: dict[str, Any], egress: bool) -> dict[str, Any]:
        def authorize(session: Session) -> dict[str, Any]:
            group = self._target(session, params)
            rules = list(group.rules)
            existing = {rule_key(r) for r in rules}
            added: list[Rule] = []
            for rule in self._rules_from(session, group, params, egress):
                if rule_key(rule) in existing:
                    raise Ec2Error(
                        "InvalidPermission.Duplicate",
                        f'the specified rule "{describe_rule(rule)}" already exists',
                    )
                existing.add(rule_key(rule))
                added.append({"id": ids.ec2_id("sgr"), **rule})
            group.rules = rules + added
            session.add(group)
            return {
                "Return": True,
                "SecurityGroupRules": [self.rule_shape(group, r) for r in added],
            }

        out = await self.store.tx(authorize)
        await self.enforce()
        return out

    async def _revoke(self, params: dict[str, Any], egress: bool) -> dict[str, Any]:
        def revoke(session: Session) -> dict[str, Any]:
            group = self._target(session, params)
            remaining = list(group.rules)
            if rule_ids := params.get("SecurityGroupRuleIds"):
                known = {r["id"] for r in remaining if r["egress"] == egress}
                for rule_id in rule_ids:
                    if rule_id not in known:
                        raise Ec2Error(
                            "InvalidSecurityGroupRuleId.NotFound",
                            f"The security group rule ID '{rule_id}' does not exist",
                        )
                removed = [r for r in remaining if r["id"] in rule_ids]
            else:
                wanted = {rule_key(r) for r in self._rules_from(session, group, params, egress)}
                removed = [r for r in remaining if rule_key(r) in wanted]
                if len(removed) != len(wanted):
                    raise Ec2Error(
                        "InvalidPermission.NotFound",
                        "The specified rule does not exist in this security group.",
                    )
            group.rules = [r for r in remaining if r not in removed]
            session.add(group)
            return {
                "Return": True,
                "RevokedSecurityGroupRules": [self.revoked_shape(group, r) for r in removed],
            }

        out = await self.store.tx(revoke)
        await self.enforce()
        return out

    @operation("AuthorizeSecurityGroupIngress")
    async def authorize_security_group_ingress(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._authorize(params, egress=False)

    @operation("AuthorizeSecurityGroupEgress")
    async def authorize_security_group_egress(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._authorize(params, egress=True)

    @operation("RevokeSecurityGroupIngress")
    async def revoke_security_group_ingress(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._revoke(params, egress=False)

    @operation("RevokeSecurityGroupEgress")
    async def revoke_security_group_egress(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._revoke(params, egress=True)
