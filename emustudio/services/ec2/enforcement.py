"""Security groups enforced on the subnet networks: what the groups' rules allow, and no more.

Which groups a container is in (its ENI's groups, as EC2 would list them):

* a Workspace: its Studio's ``WorkspaceSecurityGroupId``;
* a cluster's master: ``EmrManagedMasterSecurityGroup`` and ``AdditionalMasterSecurityGroups``;
  a core or task node: ``EmrManagedSlaveSecurityGroup`` and ``AdditionalSlaveSecurityGroups``;
* anything else of this gateway (a container not yet claimed by a Workspace, say): none, so it
  sends and receives nothing on the subnet.

The Studio's engine security group is the gateway's: the gateway is the Studio's ENI, and the
kernel route (Workspace → gateway → the attached cluster's 18888) is where its rule is checked
(``services/emr/attach.py``). A Workspace therefore never reaches a master's 18888 directly,
unless a rule of the master's own groups admits the Workspace group.

Traffic from A to B passes when one of A's groups has an outbound rule and one of B's groups an
inbound rule that both match (the peer a group, or a CIDR holding the other's VPC address; the
protocol and ports intersecting), as EC2 evaluates it. Groups are stateful: replies pass. Prefix
lists and IPv6 ranges match nothing here (the subnets are IPv4 and there are no prefix lists).
Only containers of one subnet network are judged: Docker keeps different bridges apart anyway.

A master node of the standalone engine also sits on a foreign bridge, the user's network where
their Spark workers call its drivers back (``engines/standalone.py``). There its own groups'
inbound CIDR rules decide what reaches it, matched against the senders' addresses on that
network (outside the VPC, as on-premises machines are to EC2); a rule naming a group matches
nothing there, and what the node sends is not judged.

:class:`GroupEnforcement` recomputes the whole allow list and hands it to the firewall
(``runtime/firewall.py``): after every change of a group's rules (before the API answers), and
whenever one of this gateway's containers starts, stops, or joins or leaves a network (Docker's
events). Recomputations are coalesced: one runs at a time, and one more follows if anything
changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, select

from emustudio.engines.docker import KIND_NODE, L_CLUSTER_ID, L_ROLE
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.firewall import Allow, Bridge, Member, SubnetFirewall
from emustudio.runtime.networks import L_INSTANCE, L_KIND
from emustudio.runtime.workspaces import KIND_WORKSPACE, L_STUDIO_ID, _EventStream
from emustudio.store import Store
from emustudio.store.cluster_tables import Cluster
from emustudio.store.tables import SecurityGroup, Studio

__all__ = ["GroupEnforcement", "allowed"]

log = logging.getLogger(__name__)

Rule = dict[str, Any]
_EVENTS = ["start", "die", "destroy", "connect", "disconnect"]


def groups_of(session: Session, member: Member) -> list[str]:
    """The security groups of a container, from what it is (see the module docstring)."""
    labels = member.labels
    kind = labels.get(L_KIND)
    if kind == KIND_WORKSPACE:
        studio = session.get(Studio, labels.get(L_STUDIO_ID, ""))
        return [studio.workspace_security_group_id] if studio is not None else []
    if kind == KIND_NODE:
        cluster = session.get(Cluster, labels.get(L_CLUSTER_ID, ""))
        if cluster is None:
            return []
        if labels.get(L_ROLE) == "MASTER":
            return [cluster.master_security_group, *cluster.additional_master_security_groups]
        return [cluster.slave_security_group, *cluster.additional_slave_security_groups]
    return []


def _peer_matches(rule: Rule, peer_groups: Iterable[str], peer_address: str) -> bool:
    if rule.get("group_id"):
        return rule["group_id"] in set(peer_groups)
    if rule.get("cidr_ipv4"):
        return ipaddress.ip_address(peer_address) in ipaddress.ip_network(rule["cidr_ipv4"])
    return False  # IPv6 ranges, prefix lists: nothing on an IPv4 subnet matches them


def _intersect(a: Rule, b: Rule) -> tuple[str, tuple[int, int] | None] | None:
    """The protocol and ports both rules admit, or None."""
    pa, pb = a["protocol"], b["protocol"]
    if pa != "-1" and pb != "-1" and pa != pb:
        return None
    protocol = pb if pa == "-1" else pa
    if protocol not in ("tcp", "udp"):
        return protocol, None
    ranges = [
        (r["from_port"], r["to_port"])
        for r in (a, b)
        if r["protocol"] != "-1" and r.get("from_port") is not None
    ]
    if not ranges:
        return protocol, None
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    return (protocol, (low, high)) if low <= high else None


def allowed(
    src_groups: Iterable[str],
    src_address: str,
    dst_groups: Iterable[str],
    dst_address: str,
    rules: Mapping[str, list[Rule]],
) -> set[tuple[str, tuple[int, int] | None]]:
    """What traffic from src to dst both sides' groups allow: (protocol, ports) pairs.

    Addresses are VPC addresses (what a CIDR rule names)."""
    src_groups, dst_groups = list(src_groups), list(dst_groups)
    egress = [
        r
        for g in src_groups
        for r in rules.get(g, [])
        if r["egress"] and _peer_matches(r, dst_groups, dst_address)
    ]
    ingress = [
        r
        for g in dst_groups
        for r in rules.get(g, [])
        if not r["egress"] and _peer_matches(r, src_groups, src_address)
    ]
    out = set()
    for e in egress:
        for i in ingress:
            if (both := _intersect(e, i)) is not None:
                out.add(both)
    if any(p == "-1" for p, _ in out):
        return {("-1", None)}
    return out


def from_outside(
    dst_groups: Iterable[str], dst_ip: str, rules: Mapping[str, list[Rule]]
) -> list[Allow]:
    """What the groups' inbound IPv4 CIDR rules admit to ``dst_ip`` from outside the VPC."""
    out = []
    for group in dst_groups:
        for rule in rules.get(group, []):
            if rule["egress"] or not rule.get("cidr_ipv4"):
                continue
            if (both := _intersect(_ANY, rule)) is not None:
                out.append(Allow(rule["cidr_ipv4"], dst_ip, *both))
    return out


_ANY: Rule = {"protocol": "-1"}


def plan(
    session: Session, bridges: Iterable[Bridge], members: Iterable[Member]
) -> dict[str, list[Allow]]:
    """Every Allow, by bridge network name, for the containers on each bridge."""
    members = list(members)
    groups = {m.container_id: groups_of(session, m) for m in members}
    wanted = {g for gs in groups.values() for g in gs}
    rules: dict[str, list[Rule]] = {
        g.id: list(g.rules)
        for g in session.exec(select(SecurityGroup).where(SecurityGroup.id.in_(wanted)))  # type: ignore[attr-defined]
    }
    out: dict[str, list[Allow]] = {}
    for bridge in bridges:
        here = [(m, m.addresses[bridge.network]) for m in members if bridge.network in m.addresses]
        allows = out.setdefault(bridge.network, [])
        if bridge.foreign:
            for dst, dst_ip in here:
                allows += from_outside(groups[dst.container_id], dst_ip, rules)
            continue
        for src, src_ip in here:
            for dst, dst_ip in here:
                if src.container_id == dst.container_id:
                    continue
                for protocol, ports in allowed(
                    groups[src.container_id],
                    bridge.vpc_address(src_ip),
                    groups[dst.container_id],
                    bridge.vpc_address(dst_ip),
                    rules,
                ):
                    allows.append(Allow(src_ip, dst_ip, protocol, ports))
    return out


class GroupEnforcement:
    """Keeps the firewall equal to what the security groups allow (module docstring)."""

    def __init__(
        self, store: Store, docker: DockerExecutor, firewall: SubnetFirewall, instance_id: str
    ) -> None:
        self.store = store
        self.firewall = firewall
        self._instance_id = instance_id
        self._network_prefix = f"emustudio-{instance_id}-"
        self._events = _EventStream(
            docker,
            {"type": ["container", "network"], "event": _EVENTS},
            on_event=self._on_event,
            on_lost=self._on_lost,
        )
        self._lock = asyncio.Lock()
        self._requested = 0  # refreshes asked for
        self._applied = 0  # the last request the firewall has answered
        self._pending: set[asyncio.Future[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Install the rules, and follow Docker's events from now on."""
        await self.refresh()
        await self._events.open()

    async def refresh(self) -> None:
        """Recompute and return once the firewall has a state at least as new as this call
        (an API change waits for this). Calls made while one runs share the next run."""
        self._requested += 1
        wanted = self._requested
        async with self._lock:
            if self._applied >= wanted:
                return
            upto = self._requested
            bridges = await self.firewall.bridges()
            members = await self.firewall.members()
            allows = await self.store.tx(lambda s: plan(s, bridges, members))
            guarded = {
                b.network: [m.addresses[b.network] for m in members if b.network in m.addresses]
                for b in bridges
                if b.foreign
            }
            await self.firewall.apply(bridges, allows, guarded)
            self._applied = upto

    def schedule(self) -> None:
        """Recompute soon (from Docker's events); a failure is logged."""
        if self._closed:
            return
        task = asyncio.ensure_future(self.refresh())
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("security groups: the firewall was not updated: %s", task.exception())

    def _on_event(self, event: dict[str, Any]) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if event.get("Type") == "network":
            name = str(attributes.get("name", ""))
            ours = name.startswith(self._network_prefix) or name in self.firewall.foreign_networks
        else:
            ours = attributes.get(L_INSTANCE) == self._instance_id
        if ours:
            self.schedule()

    def _on_lost(self) -> None:
        if self._closed:
            return

        async def reopen() -> None:
            await asyncio.sleep(1.0)
            try:
                await self._events.open()
            except Exception as exc:  # dockerd still away: the next loss tries again
                log.debug("security groups: events stream not re-opened: %s", exc)
                return
            self.schedule()  # whatever happened while the stream was down

        task = asyncio.ensure_future(reopen())
        self._pending.add(task)
        task.add_done_callback(self._done)

    async def close(self, *, remove_rules: bool = True) -> None:
        """Stop following events; take the rules away (the networks stay closed by Docker)."""
        self._closed = True
        self._events.close()
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task
        if remove_rules:
            await self.firewall.remove()
