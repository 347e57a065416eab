"""ModifyInstanceGroups and ModifyInstanceFleet: a resize really adds or removes worker nodes.

A core or task group's ``InstanceCount`` changes, or a core or task fleet's target capacities
(``TargetOnDemandCapacity`` + ``TargetSpotCapacity``, in units of its instance type's
``WeightedCapacity``). The group or fleet is ``RESIZING`` while the engine starts the new nodes
(they run the cluster's bootstrap actions, then their Spark workers register with the master) or
takes nodes away. Nodes go gracefully, as EMR decommissions them: each node's Spark worker is
decommissioned, its running tasks end (their blocks move to other executors), and only then,
or at the decommission timeout, is it removed (``engines/decommission.py``); meanwhile it is
still ``RUNNING``, and ``TERMINATED`` (still listed) once gone. The timeout is the group's
``ShrinkPolicy.DecommissionTimeout`` (or ``InstanceResizePolicy.InstanceTerminationTimeout``)
when given, else EMR's default, an hour. Which nodes go: those named
(``EC2InstanceIdsToTerminate``, ``InstanceResizePolicy.InstancesToTerminate``) first, then the
newest, never one in ``InstancesToProtect``.

The master group or fleet is not resized; the cluster must be ``RUNNING`` or ``WAITING``; one
resize of a group or fleet at a time. A group or fleet whose executors come from an external
Spark standalone master (``engines/standalone.py``) has no instance to resize. A refused change
changes nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlmodel import Session, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.engines import releases
from emustudio.engines.decommission import DEFAULT_TIMEOUT
from emustudio.services.base import operation
from emustudio.services.emr.cluster_life import live_nodes
from emustudio.services.emr.clusters import ClusterOperations, _drop_none, _emr_id
from emustudio.services.emr.common import InvalidRequest, ValidationException
from emustudio.store.cluster_tables import Cluster

Plan = tuple[list[str], list[str], float]
"""The instance ids added, those removed, and the removed ones' decommission timeout."""


class ResizeOperations(ClusterOperations):
    @operation("ModifyInstanceGroups")
    async def modify_instance_groups(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        life = self.life()
        changes = list(params.get("InstanceGroups") or [])

        def find(session: Session, group_id: str) -> Cluster:
            if params.get("ClusterId"):
                return self.get_cluster_or_raise(session, params["ClusterId"])
            for cluster in session.exec(select(Cluster).where(Cluster.region == self.region)):
                if any(g["Id"] == group_id for g in cluster.groups):
                    return cluster
            raise InvalidRequest(f"Instance group id '{group_id}' is not valid.")

        def plan(session: Session) -> list[tuple[str, str, Plan]]:
            out = []
            for change in changes:
                group_id = change["InstanceGroupId"]
                cluster = find(session, group_id)
                out.append((cluster.id, group_id, self._resize_group(cluster, change)))
                session.add(cluster)
            return out

        for cluster_id, group_id, (added, removed, timeout) in await self.store.tx(plan):
            life.resize(cluster_id, group_id, added, removed, timeout)
        return {}

    @operation("ModifyInstanceFleet")
    async def modify_instance_fleet(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        life = self.life()
        change = params["InstanceFleet"]
        fleet_id = change["InstanceFleetId"]

        def plan(session: Session) -> Plan:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            planned = self._resize_fleet(cluster, change)
            session.add(cluster)
            return planned

        added, removed, timeout = await self.store.tx(plan)
        life.resize(params["ClusterId"], fleet_id, added, removed, timeout)
        return {}

    def _resize_group(self, cluster: Cluster, change: dict[str, Any]) -> Plan:
        """Write the group's new count and nodes on ``cluster``."""
        group_id = change["InstanceGroupId"]
        group = next((g for g in cluster.groups if g["Id"] == group_id), None)
        if group is None or cluster.collection_type != "INSTANCE_GROUP":
            raise InvalidRequest(f"Instance group id '{group_id}' is not valid.")
        _check_resizable(cluster, group, "instance group", ValidationException)
        count = change.get("InstanceCount")
        if count is None:
            return [], [], 0.0
        minimum = 1 if group["_role"] == "CORE" else 0
        if count < minimum:
            raise ValidationException(
                f"An instance group of type {group['_role']} needs at least {minimum} instance."
            )
        shrink = change.get("ShrinkPolicy") or {}
        policy = shrink.get("InstanceResizePolicy") or {}
        timeout = policy.get("InstanceTerminationTimeout", shrink.get("DecommissionTimeout"))
        named = [*(change.get("EC2InstanceIdsToTerminate") or []),
                 *(policy.get("InstancesToTerminate") or [])]  # fmt: skip
        return self._plan(
            cluster, group, count, named, list(policy.get("InstancesToProtect") or []),
            DEFAULT_TIMEOUT if timeout is None else float(timeout), ValidationException,
        )  # fmt: skip

    def _resize_fleet(self, cluster: Cluster, change: dict[str, Any]) -> Plan:
        """Write the fleet's new targets (and instance types) and nodes on ``cluster``."""
        fleet_id = change["InstanceFleetId"]
        fleet = next((f for f in cluster.groups if f["Id"] == fleet_id), None)
        if fleet is None or cluster.collection_type != "INSTANCE_FLEET":
            raise InvalidRequest(f"Instance fleet id '{fleet_id}' is not valid.")
        _check_resizable(cluster, fleet, "instance fleet", InvalidRequest)
        on_demand = change.get("TargetOnDemandCapacity", fleet["TargetOnDemandCapacity"])
        spot = change.get("TargetSpotCapacity", fleet["TargetSpotCapacity"])
        configs = change.get("InstanceTypeConfigs")
        if configs is not None and not configs:
            raise InvalidRequest("InstanceTypeConfigs must not be empty.")
        for c in configs or []:
            if releases.instance_type(c["InstanceType"]) is None:
                raise InvalidRequest(
                    f"The requested instance type {c['InstanceType']} is not supported in the"
                    " requested availability zone."
                )
        weight = (configs[0].get("WeightedCapacity") or 1) if configs else fleet["_weight"]
        target = on_demand + spot
        if fleet["_role"] == "CORE" and target < 1:
            raise InvalidRequest("The core instance fleet needs a target capacity of at least 1.")
        count = math.ceil(target / weight)
        groups = [dict(g) for g in cluster.groups]
        for g in groups:
            if g["Id"] == fleet_id:
                g["TargetOnDemandCapacity"], g["TargetSpotCapacity"] = on_demand, spot
                if configs:
                    g["InstanceTypeSpecifications"] = [
                        _drop_none({"InstanceType": c["InstanceType"],
                                    "WeightedCapacity": c.get("WeightedCapacity") or 1,
                                    "BidPriceAsPercentageOfOnDemandPrice":
                                        c.get("BidPriceAsPercentageOfOnDemandPrice")})
                        for c in configs
                    ]  # fmt: skip
                    g["_type"], g["_weight"] = configs[0]["InstanceType"], weight
                if change.get("ResizeSpecifications"):
                    g["ResizeSpecifications"] = change["ResizeSpecifications"]
                fleet = g
        cluster.groups = groups
        return self._plan(cluster, fleet, count, [], [], DEFAULT_TIMEOUT, InvalidRequest)

    def _plan(
        self, cluster: Cluster, group: dict[str, Any], count: int, named: list[str],
        protected: list[str], timeout: float, error: type[Exception],
    ) -> Plan:  # fmt: skip
        """Nodes added (pending) or marked for decommission to reach ``count`` in ``group``."""
        group_id = group["Id"]
        member = "InstanceFleetId" if cluster.collection_type == "INSTANCE_FLEET" else (
            "InstanceGroupId")  # fmt: skip
        live = live_nodes(cluster)
        members = [n for n in live if n.get(member) == group_id]
        total = len(live) - len(members) + count
        if total > self.max_cluster_nodes:
            raise error(
                f"A cluster may have at most {self.max_cluster_nodes} instances here"
                f" (setting cluster_max_nodes); {total} requested."
            )
        now = time.time()
        added: list[str] = []
        removed: list[str] = []
        nodes = [dict(n) for n in cluster.instances]
        if count > len(members):
            for _ in range(count - len(members)):
                instance = ids.ec2_id("i")
                nodes.append({"Id": _emr_id("ci-"), "Ec2InstanceId": instance,
                              member: group_id, "InstanceType": group["_type"],
                              "Market": group.get("Market", "ON_DEMAND"), "Role": group["_role"],
                              "CreatedAt": now, "Pending": True})  # fmt: skip
                added.append(instance)
        elif count < len(members):
            order = [n["Ec2InstanceId"] for n in members if n["Ec2InstanceId"] not in protected]
            victims = [i for i in named if i in order]
            victims += [i for i in reversed(order) if i not in victims]
            removed = victims[: len(members) - count]
            if len(removed) < len(members) - count:
                raise error(
                    f"Only {len(removed)} of the {len(members) - count} instances to remove"
                    " are not protected by InstancesToProtect."
                )
            for node in nodes:
                if node["Ec2InstanceId"] in removed:
                    node["Decommissioning"] = timeout  # kept: a restart resumes the drain
        if not added and not removed:
            return [], [], timeout
        groups = [dict(g) for g in cluster.groups]
        for g in groups:
            if g["Id"] == group_id:
                if "InstanceGroupType" in g:
                    g["RequestedInstanceCount"] = count
                g["_resizing"] = True
                g.pop("_reason", None)
        cluster.instances, cluster.groups = nodes, groups
        return added, removed, timeout


def _check_resizable(
    cluster: Cluster, group: dict[str, Any], what: str, error: type[Exception]
) -> None:
    if cluster.state not in ("RUNNING", "WAITING"):
        raise error(
            f"The cluster {cluster.id} is {cluster.state}; an {what} can be resized only while"
            " the cluster is RUNNING or WAITING."
        )
    if group["_role"] == "MASTER":
        raise error(f"The master {what} cannot be resized.")
    if group.get("_external"):
        raise error(
            f"The {what} {group['Id']} has no instance to resize: {group['_reason']}"
            " Add or remove workers of that Spark cluster instead."
        )
    if group.get("_resizing"):
        raise error(f"The {what} {group['Id']} is already resizing.")
