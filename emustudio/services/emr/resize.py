"""ModifyInstanceGroups: a resize really adds or removes worker containers.

A core or task group's ``InstanceCount`` changes: the group is ``RESIZING`` while the engine
starts the new nodes (they run the cluster's bootstrap actions, then their Spark workers register
with the master) or removes nodes (those named in ``EC2InstanceIdsToTerminate`` first, else the
newest). Removed instances stay listed, ``TERMINATED``. The master group is not resized; the
cluster must be ``RUNNING`` or ``WAITING``; one resize of a group at a time. A group whose
executors come from an external Spark standalone master (``engines/standalone.py``) has no
instance to resize: ``ValidationException``, nothing changes.
"""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.emr.cluster_life import live_nodes
from emustudio.services.emr.clusters import ClusterOperations, _emr_id
from emustudio.services.emr.common import InvalidRequest, ValidationException
from emustudio.store.cluster_tables import Cluster


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

        def plan(session: Session) -> list[tuple[str, str, list[str], list[str]]]:
            out = []
            for change in changes:
                group_id = change["InstanceGroupId"]
                cluster = find(session, group_id)
                out.append((cluster.id, group_id, *self._resize(cluster, change)))
                session.add(cluster)
            return out

        for cluster_id, group_id, added, removed in await self.store.tx(plan):
            life.resize(cluster_id, group_id, added, removed)
        return {}

    def _resize(self, cluster: Cluster, change: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Write the group's new count and nodes on ``cluster``; the ids added and removed."""
        group_id = change["InstanceGroupId"]
        group = next((g for g in cluster.groups if g["Id"] == group_id), None)
        if group is None or cluster.collection_type != "INSTANCE_GROUP":
            raise InvalidRequest(f"Instance group id '{group_id}' is not valid.")
        if cluster.state not in ("RUNNING", "WAITING"):
            raise ValidationException(
                f"The cluster {cluster.id} is {cluster.state}; an instance group can be resized"
                " only while the cluster is RUNNING or WAITING."
            )
        if group["_role"] == "MASTER":
            raise ValidationException("The master instance group cannot be resized.")
        if group.get("_external"):
            raise ValidationException(
                f"The instance group {group_id} has no instance to resize: {group['_reason']}"
                " Add or remove workers of that Spark cluster instead."
            )
        if group.get("_resizing"):
            raise ValidationException(f"The instance group {group_id} is already resizing.")
        count = change.get("InstanceCount")
        if count is None:
            return [], []
        minimum = 1 if group["_role"] == "CORE" else 0
        if count < minimum:
            raise ValidationException(
                f"An instance group of type {group['_role']} needs at least {minimum} instance."
            )
        live = live_nodes(cluster)
        members = [n for n in live if n.get("InstanceGroupId") == group_id]
        total = len(live) - len(members) + count
        if total > self.max_cluster_nodes:
            raise ValidationException(
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
                              "InstanceGroupId": group_id, "InstanceType": group["_type"],
                              "Market": group.get("Market", "ON_DEMAND"), "Role": group["_role"],
                              "CreatedAt": now, "Pending": True})  # fmt: skip
                added.append(instance)
        elif count < len(members):
            named = [i for i in change.get("EC2InstanceIdsToTerminate") or []]
            order = [n["Ec2InstanceId"] for n in members]
            victims = [i for i in named if i in order]
            victims += [i for i in reversed(order) if i not in victims]
            removed = victims[: len(members) - count]
            for node in nodes:
                if node["Ec2InstanceId"] in removed:
                    node["EndedAt"] = now
        if not added and not removed:
            return [], []
        groups = [dict(g) for g in cluster.groups]
        for g in groups:
            if g["Id"] == group_id:
                g["RequestedInstanceCount"] = count
                g["_resizing"] = True
                g.pop("_reason", None)
        cluster.instances, cluster.groups = nodes, groups
        return added, removed
