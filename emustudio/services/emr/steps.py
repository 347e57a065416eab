"""Steps: AddJobFlowSteps, ListSteps, DescribeStep, CancelSteps (run by ``cluster_life.py``)."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.emr.cluster_life import TERMINAL
from emustudio.services.emr.clusters import ClusterOperations, epoch
from emustudio.services.emr.common import InvalidRequest, ValidationException, with_marker
from emustudio.store.cluster_tables import ClusterStep

MAX_PENDING_STEPS = 256  # EMR's limit of active and pending steps


class StepOperations(ClusterOperations):
    @staticmethod
    def step_status(step: ClusterStep) -> dict[str, Any]:
        status: dict[str, Any] = {
            "State": step.state,
            "StateChangeReason": {"Message": step.reason_message} if step.reason_message else {},
            "Timeline": {
                k: v
                for k, v in (
                    ("CreationDateTime", epoch(step.created_at)),
                    ("StartDateTime", epoch(step.started_at)),
                    ("EndDateTime", epoch(step.ended_at)),
                )
                if v is not None
            },
        }
        if step.failure:
            status["FailureDetails"] = dict(step.failure)
        return status

    def step_shape(self, step: ClusterStep) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Jar": step.jar,
            "Properties": {p["Key"]: p.get("Value", "") for p in step.properties},
            "Args": list(step.args),
        }
        if step.main_class:
            config["MainClass"] = step.main_class
        return {
            "Id": step.id,
            "Name": step.name,
            "Config": config,
            "ActionOnFailure": step.action_on_failure,
            "Status": self.step_status(step),
        }

    def get_step_or_raise(self, session: Session, cluster_id: str, step_id: str) -> ClusterStep:
        self.get_cluster_or_raise(session, cluster_id)
        step = session.get(ClusterStep, step_id)
        if step is None or step.cluster_id != cluster_id:
            raise InvalidRequest(f"Step id '{step_id}' is not valid.")
        return step

    @operation("AddJobFlowSteps")
    async def add_job_flow_steps(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        life = self.life()
        steps = list(params["Steps"])
        for step in steps:
            life.check_step(step)

        def add(session: Session) -> list[str]:
            cluster = self.get_cluster_or_raise(session, params["JobFlowId"])
            if cluster.state in (*TERMINAL, "TERMINATING"):
                raise ValidationException(
                    f"A job flow that is shutting down, terminated, or finished may not be"
                    f" modified. ({cluster.id})"
                )
            pending = session.exec(
                select(ClusterStep).where(
                    ClusterStep.cluster_id == cluster.id,
                    col(ClusterStep.state).in_(["PENDING", "RUNNING"]),
                )
            ).all()
            if len(pending) + len(steps) > MAX_PENDING_STEPS:
                raise ValidationException(
                    f"The maximum number of active and pending steps ({MAX_PENDING_STEPS}) would"
                    " be exceeded."
                )
            return life.add_steps(session, cluster.id, steps, time.time())

        step_ids = await self.store.tx(add)
        life.wake(params["JobFlowId"])
        return {"StepIds": step_ids}

    @operation("ListSteps")
    async def list_steps(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        states = set(params.get("StepStates") or [])
        wanted = set(params.get("StepIds") or [])

        def list_(session: Session) -> dict[str, Any]:
            self.get_cluster_or_raise(session, params["ClusterId"])
            rows = session.exec(
                select(ClusterStep)
                .where(ClusterStep.cluster_id == params["ClusterId"])
                .order_by(col(ClusterStep.seq).desc())  # newest first, as EMR lists them
            )
            chosen = [
                s
                for s in rows
                if (not states or s.state in states) and (not wanted or s.id in wanted)
            ]
            page, marker = self.page(chosen, params.get("Marker"))
            return with_marker({"Steps": [self.step_shape(s) for s in page]}, marker)

        return await self.store.tx(list_)

    @operation("DescribeStep")
    async def describe_step(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            step = self.get_step_or_raise(session, params["ClusterId"], params["StepId"])
            return {"Step": self.step_shape(step)}

        return await self.store.tx(describe)

    @operation("CancelSteps")
    async def cancel_steps(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        life = self.life()
        cluster_id = params["ClusterId"]

        def cancel(session: Session) -> tuple[list[dict[str, Any]], list[str]]:
            self.get_cluster_or_raise(session, cluster_id)
            out, running = [], []
            for step_id in params["StepIds"]:
                step = session.get(ClusterStep, step_id)
                if step is None or step.cluster_id != cluster_id:
                    out.append({"StepId": step_id, "Status": "FAILED",
                                "Reason": f"Step id '{step_id}' is not valid."})  # fmt: skip
                elif step.state == "PENDING":
                    step.state, step.ended_at = "CANCELLED", time.time()
                    step.reason_message = "Step was cancelled."
                    session.add(step)
                    out.append({"StepId": step_id, "Status": "SUBMITTED"})
                elif step.state == "RUNNING":
                    running.append(step_id)
                    out.append({"StepId": step_id, "Status": "SUBMITTED"})
                else:
                    out.append({"StepId": step_id, "Status": "FAILED",
                                "Reason": f"Step is in state {step.state}."})  # fmt: skip
            return out, running

        result, running = await self.store.tx(cancel)
        for step_id in running:
            life.cancel_running(cluster_id, step_id)
        return {"CancelStepsInfoList": result}
