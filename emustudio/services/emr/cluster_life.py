"""A cluster's life, run in the background: start its nodes, run its steps, terminate.

States, as EMR's::

    STARTING ─▶ BOOTSTRAPPING ─▶ RUNNING ⇄ WAITING          (RUNNING while a step runs)
       │              │             │         │
       └──────────────┴─────────────┴─────────┴─▶ TERMINATING ─▶ TERMINATED
                                                               └▶ TERMINATED_WITH_ERRORS

* the nodes fail to start: ``TERMINATED_WITH_ERRORS``, ``INTERNAL_ERROR`` with the engine's
  reason;
* no step is left: ``WAITING`` if ``KeepJobFlowAliveWhenNoSteps``, else terminate with
  ``ALL_STEPS_COMPLETED`` "Steps completed";
* a step fails with ``ActionOnFailure`` ``TERMINATE_CLUSTER``/``TERMINATE_JOB_FLOW``: the
  pending steps are cancelled and the cluster ends ``TERMINATED_WITH_ERRORS``, ``STEP_FAILURE``
  "Shut down as step failed"; ``CANCEL_AND_WAIT`` cancels the pending steps and goes on;
  ``CONTINUE`` goes on;
* ``TerminateJobFlows`` writes ``TERMINATING`` (``USER_REQUEST``) and wakes the runner, which
  cancels a running step, removes the nodes and writes ``TERMINATED``. A terminate during the
  start waits for the start to finish, so no node is left behind by a half-made create.

Steps go ``PENDING → RUNNING → COMPLETED | FAILED | CANCELLED``; a cluster runs one at a time,
in the order they were added. A gateway restart ends clusters it finds unfinished
``TERMINATED_WITH_ERRORS`` and removes their nodes: nothing would run their steps any more.
Workspaces attached to a cluster that ends are detached (Ready, with the reason).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.engines import ClusterEngine, ClusterSpec, ClusterStartError, NodeSpec, releases
from emustudio.services.emr.common import ValidationException
from emustudio.store import Store
from emustudio.store.cluster_tables import Cluster, ClusterStep
from emustudio.store.tables import Editor

log = logging.getLogger(__name__)

TERMINAL = ("TERMINATED", "TERMINATED_WITH_ERRORS")
STEP_DONE = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")
_ERROR_LINE = re.compile(r"(Error|Exception|error:)")
_TRACE = re.compile(r"(at |Caused by: |Suppressed: |\.\.\. \d+ more)")


def step_argv(jar: str, args: list[str]) -> list[str] | None:
    """What a step runs on the master; None for a JAR emustudio does not run."""
    if jar.rsplit("/", 1)[-1] == "command-runner.jar":
        return list(args)
    return None


class ClusterLife:
    def __init__(self, store: Store, engine: ClusterEngine, *, region: str) -> None:
        self.store = store
        self.engine = engine
        self.region = region
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._running_step: dict[str, str] = {}

    # --- what the API calls ---------------------------------------------------------------------

    @staticmethod
    def check_step(step: dict[str, Any]) -> None:
        jar_step = step["HadoopJarStep"]
        if step_argv(jar_step["Jar"], list(jar_step.get("Args") or [])) is None:
            raise ValidationException(
                f"emustudio runs command-runner.jar steps (spark-submit, bash -c...); the JAR"
                f" {jar_step['Jar']} is not supported yet."
            )
        if not jar_step.get("Args"):
            raise ValidationException("A command-runner.jar step needs Args (the command).")

    @staticmethod
    def add_steps(
        session: Session, cluster_id: str, steps: list[dict[str, Any]], now: float
    ) -> list[str]:
        last = session.exec(
            select(ClusterStep.seq)
            .where(ClusterStep.cluster_id == cluster_id)
            .order_by(col(ClusterStep.seq).desc())
        ).first()
        seq = (last or 0) + 1
        added = []
        for i, step in enumerate(steps):
            jar = step["HadoopJarStep"]
            row = ClusterStep(
                id=ids.step_id(), cluster_id=cluster_id, seq=seq + i, name=step["Name"],
                action_on_failure=step.get("ActionOnFailure") or "CONTINUE", jar=jar["Jar"],
                main_class=jar.get("MainClass"), args=list(jar.get("Args") or []),
                properties=list(jar.get("Properties") or []), state="PENDING", created_at=now,
            )  # fmt: skip
            session.add(row)
            added.append(row.id)
        return added

    def launch(self, cluster_id: str) -> None:
        self._wake[cluster_id] = asyncio.Event()
        self._spawn(self._run(cluster_id), cluster_id)

    def wake(self, cluster_id: str) -> None:
        event = self._wake.get(cluster_id)
        if event is not None:
            event.set()

    def terminate(self, cluster_id: str) -> None:
        """The cluster is TERMINATING in the store: stop its step and let the runner finish."""
        step = self._running_step.get(cluster_id)
        if step is not None:
            self._spawn(self.engine.cancel_step(cluster_id, step), f"cancel {step}")
        if cluster_id in self._tasks:
            self.wake(cluster_id)
        else:  # no runner (after a restart): finish here
            self._spawn(self._finish(cluster_id, None), f"terminate {cluster_id}")

    def cancel_running(self, cluster_id: str, step_id: str) -> None:
        if self._running_step.get(cluster_id) == step_id:
            self._spawn(self.engine.cancel_step(cluster_id, step_id), f"cancel {step_id}")

    async def adopt(self) -> None:
        """After a restart: end what no runner follows any more (see the module docstring)."""

        def unfinished(session: Session) -> list[str]:
            rows = session.exec(select(Cluster).where(Cluster.region == self.region))
            return [c.id for c in rows if c.state not in TERMINAL]

        for cluster_id in await self.store.tx(unfinished):
            await self._finish(
                cluster_id, ("INTERNAL_ERROR", "The gateway restarted while the cluster ran.")
            )

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await self.engine.close()

    # --- the runner -----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        if name.startswith("j-"):
            self._tasks[name] = task
            task.add_done_callback(lambda _t: self._tasks.pop(name, None))
        else:
            self._tasks.setdefault(f"aux {id(task)}", task)
            task.add_done_callback(lambda _t: self._tasks.pop(f"aux {id(task)}", None))

    async def _state(self, cluster_id: str, state: str, message: str | None = None) -> bool:
        """Move to ``state`` unless the cluster is terminating; False if it is."""

        def write(session: Session) -> bool:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None or cluster.state in (*TERMINAL, "TERMINATING"):
                return False
            if cluster.state != state or cluster.reason_message != message:
                cluster.state, cluster.reason_code, cluster.reason_message = state, None, message
                session.add(cluster)
            return True

        return await self.store.tx(write)

    async def _spec(self, cluster_id: str) -> ClusterSpec:
        def read(session: Session) -> ClusterSpec:
            cluster = session.get(Cluster, cluster_id)
            assert cluster is not None
            nodes = []
            for node in sorted(cluster.instances, key=lambda n: n["Role"] != "MASTER"):
                itype = releases.instance_type(node["InstanceType"])
                assert itype is not None
                nodes.append(NodeSpec(node["Ec2InstanceId"], node["Role"], itype))
            defaults: dict[str, str] = {}
            for conf in cluster.configurations:
                if conf.get("Classification") == "spark-defaults":
                    defaults.update(
                        {str(k): str(v) for k, v in (conf.get("Properties") or {}).items()}
                    )
            return ClusterSpec(cluster.id, cluster.subnet_id, cluster.spark_version, tuple(nodes),
                               cluster.gateway_token, defaults)  # fmt: skip

        return await self.store.tx(read)

    async def _run(self, cluster_id: str) -> None:
        try:
            try:
                nodes = await self.engine.start(await self._spec(cluster_id))
            except ClusterStartError as exc:
                log.warning("cluster %s: start failed: %s", cluster_id, exc)
                await self._finish(cluster_id, ("INTERNAL_ERROR", str(exc)[:1000]))
                return
            by_id = {n.instance_id: n for n in nodes}

            def ready(session: Session) -> None:
                cluster = session.get(Cluster, cluster_id)
                assert cluster is not None
                instances = []
                for node in cluster.instances:
                    info = by_id.get(node["Ec2InstanceId"])
                    ip = info.private_ip if info else None
                    instances.append({**node, "PrivateIpAddress": ip} if ip else node)
                    if node["Role"] == "MASTER" and ip:
                        cluster.master_dns = "ip-" + ip.replace(".", "-") + ".ec2.internal"
                cluster.instances = instances
                cluster.ready_at = time.time()
                session.add(cluster)

            await self.store.tx(ready)
            if not await self._state(cluster_id, "BOOTSTRAPPING", "Running bootstrap actions"):
                await self._finish(cluster_id, None)
                return
            await self._steps(cluster_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or Docker failing: the cluster must not hang STARTING
            log.exception("cluster %s: runner failed", cluster_id)
            await self._finish(cluster_id, ("INTERNAL_ERROR", f"emustudio failed: {exc}"))

    async def _steps(self, cluster_id: str) -> None:
        ran_any = False
        event = self._wake.setdefault(cluster_id, asyncio.Event())
        while True:
            event.clear()
            step = await self._next_step(cluster_id)
            if step is None:
                keep = await self.store.tx(
                    lambda s: (c := s.get(Cluster, cluster_id)) is not None and c.keep_alive
                )
                if not keep:
                    await self._finish(cluster_id, ("ALL_STEPS_COMPLETED", "Steps completed"))
                    return
                message = (
                    "Cluster ready after last step completed."
                    if ran_any
                    else "Cluster ready to run steps."
                )
                if not await self._state(cluster_id, "WAITING", message):
                    await self._finish(cluster_id, None)
                    return
                await event.wait()
                continue
            if not await self._state(cluster_id, "RUNNING", "Running step"):
                await self._finish(cluster_id, None)
                return
            ran_any = True
            failed_action = await self._run_step(cluster_id, step)
            if failed_action in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
                await self._finish(cluster_id, ("STEP_FAILURE", "Shut down as step failed"))
                return
            if failed_action == "CANCEL_AND_WAIT":
                await self._cancel_pending(cluster_id)

    async def _next_step(self, cluster_id: str) -> ClusterStep | None:
        def read(session: Session) -> ClusterStep | None:
            return session.exec(
                select(ClusterStep)
                .where(ClusterStep.cluster_id == cluster_id, ClusterStep.state == "PENDING")
                .order_by(col(ClusterStep.seq))
            ).first()

        return await self.store.tx(read)

    async def _run_step(self, cluster_id: str, step: ClusterStep) -> str | None:
        """Run one step; the ActionOnFailure to apply when it failed, else None."""

        def begin(session: Session) -> bool:
            row = session.get(ClusterStep, step.id)
            if row is None or row.state != "PENDING":
                return False
            row.state, row.started_at = "RUNNING", time.time()
            session.add(row)
            return True

        if not await self.store.tx(begin):
            return None
        argv = step_argv(step.jar, step.args) or ["false"]
        self._running_step[cluster_id] = step.id
        try:
            outcome = await self.engine.run_step(cluster_id, step.id, argv)
        finally:
            self._running_step.pop(cluster_id, None)
        log.info("cluster %s: step %s exited %s", cluster_id, step.id, outcome.exit_code)

        def end(session: Session) -> str | None:
            row = session.get(ClusterStep, step.id)
            assert row is not None
            row.ended_at = time.time()
            if outcome.cancelled:
                row.state = "CANCELLED"
                row.reason_message = "Step was cancelled."
            elif outcome.exit_code == 0:
                row.state = "COMPLETED"
            else:
                row.state = "FAILED"
                row.failure = self._failure(session, cluster_id, row, outcome.exit_code,
                                            outcome.stderr)  # fmt: skip
            session.add(row)
            return row.action_on_failure if row.state == "FAILED" else None

        return await self.store.tx(end)

    @staticmethod
    def _failure(
        session: Session, cluster_id: str, step: ClusterStep, code: int, stderr: str
    ) -> dict[str, str]:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        # A Java stack trace's frames ("at ...translateException(...)") and causes name
        # exceptions too: the exception's own line (the trace's first) says what went wrong.
        errors = [line for line in lines if _ERROR_LINE.search(line) and not _TRACE.match(line)]
        reason = (errors[-1] if errors else lines[-1] if lines else "Unknown Error.")[:256]
        out = {"Reason": reason, "Message": f"Command exited with code {code}."}
        cluster = session.get(Cluster, cluster_id)
        if cluster is not None and cluster.log_uri:
            base = cluster.log_uri.rstrip("/")
            out["LogFile"] = f"{base}/{cluster_id}/steps/{step.id}/stderr.gz"
        return out

    async def _cancel_pending(self, cluster_id: str) -> None:
        def cancel(session: Session) -> None:
            for row in session.exec(
                select(ClusterStep).where(
                    ClusterStep.cluster_id == cluster_id, ClusterStep.state == "PENDING"
                )
            ):
                row.state, row.ended_at = "CANCELLED", time.time()
                session.add(row)

        await self.store.tx(cancel)

    async def _finish(self, cluster_id: str, reason: tuple[str, str] | None) -> None:
        """TERMINATING (with ``reason``, unless the user's is already there), nodes removed,
        then TERMINATED (TERMINATED_WITH_ERRORS for an error or a failed step)."""

        def terminating(session: Session) -> str | None:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None or cluster.state in TERMINAL:
                return None
            if reason is not None and cluster.state != "TERMINATING":
                cluster.reason_code, cluster.reason_message = reason
            cluster.state = "TERMINATING"
            session.add(cluster)
            return cluster.reason_code

        code = await self.store.tx(terminating)
        if code is None:
            return
        await self._cancel_pending(cluster_id)
        try:
            await self.engine.stop(cluster_id)
        except Exception:  # the row must still end; the nodes are labelled for a later sweep
            log.exception("cluster %s: removing its nodes failed", cluster_id)

        def terminated(session: Session) -> None:
            cluster = session.get(Cluster, cluster_id)
            assert cluster is not None
            errors = code in ("INTERNAL_ERROR", "STEP_FAILURE", "BOOTSTRAP_FAILURE",
                              "VALIDATION_ERROR", "INSTANCE_FAILURE")  # fmt: skip
            cluster.state = "TERMINATED_WITH_ERRORS" if errors else "TERMINATED"
            cluster.ended_at = time.time()
            session.add(cluster)
            for row in session.exec(
                select(ClusterStep).where(
                    ClusterStep.cluster_id == cluster_id, ClusterStep.state == "RUNNING"
                )
            ):
                row.state, row.ended_at = "CANCELLED", time.time()
                session.add(row)

        await self.store.tx(terminated)
        self._wake.pop(cluster_id, None)
        await self.store.tx(lambda session: detach_all(session, cluster_id))


def detach_all(session: Session, cluster_id: str) -> None:
    """The Workspaces attached to an ended cluster are detached (Ready, no cluster)."""
    for editor in session.exec(select(Editor).where(Editor.attached_cluster_id == cluster_id)):
        editor.attached_cluster_id = None
        if editor.status in ("Attaching", "Attached", "Detaching"):
            editor.status, editor.last_modified_at = "Ready", time.time()
            editor.status_reason = f"Cluster {cluster_id} terminated; the Workspace is detached."
        session.add(editor)
