"""A running cluster's settings, and the old view of clusters.

``Put/Get/RemoveAutoTerminationPolicy`` (``cluster_life.py`` terminates an idle cluster),
``ModifyCluster`` (``StepConcurrencyLevel``: the runner starts that many steps at once),
and ``DescribeJobFlows``: deprecated, but botocore keeps it and older tools call it. It answers
in its own shape (``JobFlowDetail``: ``ExecutionStatusDetail``, ``Instances`` with the groups'
``InstanceGroupDetail``, ``Steps``' ``StepDetail``, ``BootstrapActions``), with EMR's old state
names (``SHUTTING_DOWN``, ``COMPLETED``, ``FAILED``) and, without ids or dates, the clusters of
the last two weeks, as EMR does.
"""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.emr import bootstrap
from emustudio.services.emr.cluster_life import TERMINAL, concurrency_of, live_nodes
from emustudio.services.emr.clusters import ClusterOperations, epoch
from emustudio.services.emr.common import ValidationException
from emustudio.store.cluster_tables import Cluster, ClusterOptions, ClusterStep

MIN_IDLE, MAX_IDLE = 60, 604800  # AWS's bounds of IdleTimeout (one minute, seven days)
TWO_WEEKS = 14 * 24 * 3600
MAX_CONCURRENCY = 256  # AWS's bound of StepConcurrencyLevel


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def flow_state(cluster: Cluster) -> str:
    """A cluster's state in ``DescribeJobFlows``' words."""
    if cluster.state == "TERMINATING":
        return "SHUTTING_DOWN"
    if cluster.state == "TERMINATED_WITH_ERRORS":
        return "FAILED"
    if cluster.state == "TERMINATED" and cluster.reason_code == "ALL_STEPS_COMPLETED":
        return "COMPLETED"
    return cluster.state


class ClusterSettingOperations(ClusterOperations):
    @operation("PutAutoTerminationPolicy")
    async def put_auto_termination_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        idle = (params.get("AutoTerminationPolicy") or {}).get("IdleTimeout")
        check_idle_timeout(idle)
        return await self._set_idle(params["ClusterId"], idle)

    @operation("RemoveAutoTerminationPolicy")
    async def remove_auto_termination_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._set_idle(params["ClusterId"], None)

    async def _set_idle(self, cluster_id: str, idle: int | None) -> dict[str, Any]:
        life = self.life()

        def update(session: Session) -> None:
            cluster = self.get_cluster_or_raise(session, cluster_id)
            if cluster.state in (*TERMINAL, "TERMINATING"):
                raise ValidationException(
                    f"A job flow that is shutting down, terminated, or finished may not be"
                    f" modified. ({cluster.id})"
                )
            cluster.auto_termination_idle_seconds = idle
            session.add(cluster)

        await self.store.tx(update)
        life.wake(cluster_id)  # a WAITING cluster reads its policy again
        return {}

    @operation("GetAutoTerminationPolicy")
    async def get_auto_termination_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def read(session: Session) -> dict[str, Any]:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            idle = cluster.auto_termination_idle_seconds
            return {} if idle is None else {"AutoTerminationPolicy": {"IdleTimeout": idle}}

        return await self.store.tx(read)

    @operation("ModifyCluster")
    async def modify_cluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        life = self.life()
        level = params.get("StepConcurrencyLevel")
        if level is not None:
            check_concurrency(level)

        def update(session: Session) -> int:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            if level is None:
                return concurrency_of(cluster.id, session)
            if cluster.state in (*TERMINAL, "TERMINATING"):
                raise ValidationException(
                    f"A job flow that is shutting down, terminated, or finished may not be"
                    f" modified. ({cluster.id})"
                )
            session.merge(ClusterOptions(cluster_id=cluster.id, step_concurrency_level=level))
            return int(level)

        answer = await self.store.tx(update)
        life.wake(params["ClusterId"])  # more steps may start now
        return {"StepConcurrencyLevel": answer}

    # --- DescribeJobFlows -----------------------------------------------------------------------

    @operation("DescribeJobFlows")
    async def describe_job_flows(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        wanted = set(params.get("JobFlowIds") or [])
        states = set(params.get("JobFlowStates") or [])
        after, before = params.get("CreatedAfter"), params.get("CreatedBefore")
        if not wanted and after is None and before is None:
            after_ts: float | None = time.time() - TWO_WEEKS
        else:
            after_ts = after.timestamp() if after is not None else None

        def describe(session: Session) -> dict[str, Any]:
            query = select(Cluster).where(Cluster.region == self.region)
            rows = session.exec(query.order_by(col(Cluster.created_at).desc()))
            chosen = [
                c
                for c in rows
                if (not wanted or c.id in wanted)
                and (not states or flow_state(c) in states)
                and (after_ts is None or c.created_at >= after_ts)
                and (before is None or c.created_at <= before.timestamp())
            ]
            return {"JobFlows": [self.job_flow_shape(session, c) for c in chosen]}

        return await self.store.tx(describe)

    def job_flow_shape(self, session: Session, cluster: Cluster) -> dict[str, Any]:
        reason = cluster.reason_message
        status = _drop_none({
            "State": flow_state(cluster),
            "CreationDateTime": epoch(cluster.created_at),
            "StartDateTime": epoch(cluster.ready_at),
            "ReadyDateTime": epoch(cluster.ready_at),
            "EndDateTime": epoch(cluster.ended_at),
            "LastStateChangeReason": reason,
        })  # fmt: skip
        node_state = self.node_state(cluster)
        up = node_state not in ("PROVISIONING", "ENDED")
        groups = []
        for g in cluster.groups:
            groups.append(_drop_none({
                "InstanceGroupId": g["Id"], "Name": g.get("Name"),
                "Market": g.get("Market", "ON_DEMAND"), "InstanceRole": g["_role"],
                "InstanceType": g["_type"], "InstanceRequestCount": g["_count"],
                "InstanceRunningCount": g["_count"] if up else 0, "State": node_state,
                "CreationDateTime": epoch(cluster.created_at),
                "StartDateTime": epoch(cluster.ready_at), "ReadyDateTime": epoch(cluster.ready_at),
                "EndDateTime": epoch(cluster.ended_at),
            }))  # fmt: skip
        master = next((n for n in cluster.instances if n["Role"] == "MASTER"), None)
        slave = next((g["_type"] for g in cluster.groups if g["_role"] != "MASTER"), None)
        instances = _drop_none({
            "MasterInstanceType": master["InstanceType"] if master else None,
            "MasterPublicDnsName": cluster.master_dns,
            "MasterInstanceId": master["Ec2InstanceId"] if master else None,
            "SlaveInstanceType": slave or (master["InstanceType"] if master else None),
            "InstanceCount": len(live_nodes(cluster)),
            "InstanceGroups": groups if cluster.collection_type == "INSTANCE_GROUP" else None,
            "NormalizedInstanceHours": self.normalized_hours(cluster),
            "Ec2KeyName": cluster.ec2_key_name,
            "Ec2SubnetId": cluster.subnet_id,
            "Placement": {"AvailabilityZone": cluster.availability_zone},
            "KeepJobFlowAliveWhenNoSteps": cluster.keep_alive,
            "TerminationProtected": cluster.termination_protected,
        })  # fmt: skip
        steps = session.exec(
            select(ClusterStep)
            .where(ClusterStep.cluster_id == cluster.id)
            .order_by(col(ClusterStep.seq))
        )
        return _drop_none({
            "JobFlowId": cluster.id,
            "Name": cluster.name,
            "LogUri": cluster.log_uri,
            "ReleaseLabel": cluster.release_label,
            "ExecutionStatusDetail": status,
            "Instances": instances,
            "Steps": [self.step_detail(s) for s in steps],
            "BootstrapActions": [
                bootstrap.config_shape(a) for a in bootstrap.actions_of(session, cluster.id)
            ],
            "SupportedProducts": [],
            "VisibleToAllUsers": cluster.visible_to_all_users,
            "JobFlowRole": cluster.job_flow_role,
            "ServiceRole": cluster.service_role,
            "ScaleDownBehavior": "TERMINATE_AT_TASK_COMPLETION",
        })  # fmt: skip

    @staticmethod
    def step_detail(step: ClusterStep) -> dict[str, Any]:
        jar = _drop_none({
            "Properties": [{"Key": p["Key"], "Value": p.get("Value", "")}
                           for p in step.properties],
            "Jar": step.jar, "MainClass": step.main_class, "Args": list(step.args),
        })  # fmt: skip
        status = _drop_none({
            "State": step.state,
            "CreationDateTime": epoch(step.created_at),
            "StartDateTime": epoch(step.started_at),
            "EndDateTime": epoch(step.ended_at),
            "LastStateChangeReason": step.reason_message,
        })  # fmt: skip
        return {
            "StepConfig": {"Name": step.name, "ActionOnFailure": step.action_on_failure,
                           "HadoopJarStep": jar},
            "ExecutionStatusDetail": status,
        }  # fmt: skip


def check_concurrency(level: Any) -> None:
    if not isinstance(level, int) or not 1 <= level <= MAX_CONCURRENCY:
        raise ValidationException(
            f"StepConcurrencyLevel must be between 1 and {MAX_CONCURRENCY}; {level} given."
        )


def check_idle_timeout(idle: Any) -> None:
    if not isinstance(idle, int) or not MIN_IDLE <= idle <= MAX_IDLE:
        raise ValidationException(
            f"IdleTimeout must be between {MIN_IDLE} and {MAX_IDLE} seconds; {idle} given."
        )
