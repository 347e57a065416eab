"""A cluster's life, run in the background: start its nodes, run its steps, terminate.

States, as EMR's::

    STARTING ─▶ BOOTSTRAPPING ─▶ RUNNING ⇄ WAITING          (RUNNING while a step runs)
       │              │             │         │
       └──────────────┴─────────────┴─────────┴─▶ TERMINATING ─▶ TERMINATED
                                                               └▶ TERMINATED_WITH_ERRORS

* the nodes fail to start: ``TERMINATED_WITH_ERRORS``, ``INTERNAL_ERROR`` with the engine's
  reason;
* a bootstrap action fails on a node (``bootstrap.py``): ``TERMINATED_WITH_ERRORS``,
  ``BOOTSTRAP_FAILURE`` with EMR's message;
* no step is left: ``WAITING`` if ``KeepJobFlowAliveWhenNoSteps``, else terminate with
  ``ALL_STEPS_COMPLETED`` "Steps completed";
* ``WAITING`` and idle (no Spark application, no running Workspace attached, ``isbusy``
  untouched) for the auto-termination policy's ``IdleTimeout``: terminate,
  ``ALL_STEPS_COMPLETED``. A stopped Workspace counts for nothing: its kernels ended with it;
* a step fails with ``ActionOnFailure`` ``TERMINATE_CLUSTER``/``TERMINATE_JOB_FLOW``: the
  pending steps are cancelled and the cluster ends ``TERMINATED_WITH_ERRORS``, ``STEP_FAILURE``
  "Shut down as step failed"; ``CANCEL_AND_WAIT`` cancels the pending steps and goes on;
  ``CONTINUE`` goes on;
* ``TerminateJobFlows`` writes ``TERMINATING`` (``USER_REQUEST``) and wakes the runner, which
  cancels a running step, removes the nodes and writes ``TERMINATED``. A terminate during the
  start waits for the start to finish, so no node is left behind by a half-made create.

Steps go ``PENDING → RUNNING → COMPLETED | FAILED | CANCELLED``; a cluster runs up to its
``StepConcurrencyLevel`` (1 unless set) at a time, in the order they were added. A gateway
restart adopts the ``WAITING`` and ``RUNNING`` clusters whose nodes all still run (as Workspaces
are adopted): the step that ran is ``FAILED`` ("The gateway restarted while the step ran."), the
pending ones run, a resize goes on (a drain with its timeout anew, an add from scratch), and
the attached Workspaces' kernel routes open again (``reattach.py``).
Other unfinished clusters end ``TERMINATED_WITH_ERRORS`` (``INTERNAL_ERROR``) and their nodes
are removed.
Workspaces attached to a cluster that ends are detached (Ready, with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Collection, Coroutine
from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.engines import (
    ClusterEngine,
    ClusterSpec,
    ClusterStartError,
    NodeSpec,
    StepOutcome,
    releases,
)
from emustudio.services.emr import bootstrap, reattach, step_work
from emustudio.services.emr.instance_s3 import InstanceProfileS3
from emustudio.services.emr.kernel_route import KernelRoutes
from emustudio.store import Store
from emustudio.store.cluster_tables import Cluster, ClusterOptions, ClusterStep
from emustudio.store.tables import Editor

log = logging.getLogger(__name__)

TERMINAL = ("TERMINATED", "TERMINATED_WITH_ERRORS")
STEP_DONE = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")
# What a bootstrap run reads: the instance profile, the nodes, the actions, the LogUri.
_Bootstrap = tuple[str, list[bootstrap.Node], list[bootstrap.Action], str | None]
_ERROR_LINE = re.compile(r"(Error|Exception|error:)")
_TRACE = re.compile(r"(at |Caused by: |Suppressed: |\.\.\. \d+ more)")


def idle_message(seconds: int) -> str:
    return (
        f"The cluster was idle for longer than its auto-termination policy's idle timeout"
        f" ({seconds} seconds) and was terminated."
    )


class ClusterLife:
    def __init__(
        self,
        store: Store,
        engine: ClusterEngine,
        *,
        region: str,
        kernels: KernelRoutes | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.region = region
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._running_steps: dict[str, set[str]] = {}
        # S3 as the nodes reach it (bootstrap scripts, step logs); the composition wires it.
        self.s3: InstanceProfileS3 | None = None
        self.idle_check_seconds = 10.0  # how often a WAITING cluster's idleness is read
        self.kernels = kernels or KernelRoutes(store)
        """The attached Workspaces' kernel routes (AttachEditor opens one, the end closes it)."""

    # --- what the API calls ---------------------------------------------------------------------

    @staticmethod
    def check_step(step: dict[str, Any]) -> None:
        jar_step = step["HadoopJarStep"]
        step_work.check_step(jar_step["Jar"], list(jar_step.get("Args") or []))

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
        """The cluster is TERMINATING in the store: stop its steps and let the runner finish."""
        for step in list(self._running_steps.get(cluster_id, ())):
            self._spawn(self.engine.cancel_step(cluster_id, step), f"cancel {step}")
        if cluster_id in self._tasks:
            self.wake(cluster_id)
        else:  # no runner (after a restart): finish here
            self._spawn(self._finish(cluster_id, None), f"terminate {cluster_id}")

    def cancel_running(self, cluster_id: str, step_id: str) -> None:
        # Also when its command has not started yet (RUNNING is written first): the engine
        # marks the step cancelled, and the command, once started, sees the mark and ends.
        self._spawn(self.engine.cancel_step(cluster_id, step_id), f"cancel {step_id}")

    def resize(
        self, cluster_id: str, group_id: str, added: list[str], removed: list[str],
        decommission_timeout: float = 0.0,
    ) -> None:  # fmt: skip
        """The store has the group's (or fleet's) new count, ``added`` nodes (no address yet)
        and ``removed`` ones (decommissioning): make the containers follow, in the background;
        the removed nodes end once drained, or after ``decommission_timeout`` seconds."""
        self._spawn(
            self._resize(cluster_id, group_id, added, removed, decommission_timeout),
            f"resize {group_id}",
        )

    async def _resize(
        self, cluster_id: str, group_id: str, added: list[str], removed: list[str],
        decommission_timeout: float,
    ) -> None:  # fmt: skip
        failure: str | None = None
        infos: dict[str, str | None] = {}
        try:
            if removed:
                await self.engine.decommission_nodes(cluster_id, removed, decommission_timeout)
                await self.engine.remove_nodes(cluster_id, removed)
            if added:
                spec = await self._spec(cluster_id)
                new = [n for n in spec.nodes if n.instance_id in added]
                started = await self.engine.add_nodes(spec, new)
                infos = {i.instance_id: i.private_ip for i in started}
                if self.s3 is not None:
                    failure = await self._bootstrap_nodes(cluster_id, added)
        except ClusterStartError as exc:
            failure = str(exc)
        except Exception as exc:
            log.exception("cluster %s: resize of %s failed", cluster_id, group_id)
            failure = f"emustudio failed: {exc}"
        if failure is not None and added:
            with contextlib.suppress(Exception):
                await self.engine.remove_nodes(cluster_id, added)

        def done(session: Session) -> None:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None:
                return
            now = time.time()
            nodes = []
            for node in cluster.instances:
                node = dict(node)
                if node["Ec2InstanceId"] in removed and "Decommissioning" in node:
                    del node["Decommissioning"]
                    node["EndedAt"] = now
                if node["Ec2InstanceId"] in added:
                    node.pop("Pending", None)
                    if failure is not None:
                        node["EndedAt"] = now
                    elif infos.get(node["Ec2InstanceId"]):
                        node["PrivateIpAddress"] = infos[node["Ec2InstanceId"]]
                nodes.append(node)
            cluster.instances = nodes
            groups = []
            for group in cluster.groups:
                group = dict(group)
                if group["Id"] == group_id:
                    group.pop("_resizing", None)
                    group["_count"] = sum(1 for n in nodes if _in_group(n, group_id)
                                          and not n.get("EndedAt"))  # fmt: skip
                    if "InstanceGroupType" in group:
                        group["RequestedInstanceCount"] = group["_count"]
                    if failure is not None:
                        group["_reason"] = failure[:1000]
                groups.append(group)
            cluster.groups = groups
            session.add(cluster)

        await self.store.tx(done)
        log.info("cluster %s: resize of %s done%s", cluster_id, group_id,
                 f" with an error: {failure}" if failure else "")  # fmt: skip

    async def _bootstrap_nodes(self, cluster_id: str, instance_ids: list[str]) -> str | None:
        """The cluster's bootstrap actions on nodes a resize added, as on every node."""

        def read(session: Session) -> _Bootstrap:
            cluster = session.get(Cluster, cluster_id)
            assert cluster is not None
            nodes = [bootstrap.Node(n["Ec2InstanceId"], n["Role"]) for n in cluster.instances
                     if n["Ec2InstanceId"] in instance_ids]  # fmt: skip
            return (cluster.job_flow_role, nodes, bootstrap.actions_of(session, cluster_id),
                    cluster.log_uri)  # fmt: skip

        profile, nodes, actions, log_uri = await self.store.tx(read)
        if not actions or self.s3 is None:
            return None
        return await bootstrap.run_actions(self.engine, self.s3, cluster_id, profile, nodes,
                                           actions, log_uri)  # fmt: skip

    async def adopt(self) -> None:
        """After a restart: a ``WAITING`` or ``RUNNING`` cluster whose nodes all still run is
        followed again (a step that ran is ``FAILED``: nothing watched it to its end); any
        other unfinished cluster ends (see the module docstring)."""

        def unfinished(session: Session) -> list[tuple[str, str, set[str]]]:
            rows = session.exec(select(Cluster).where(Cluster.region == self.region))
            # The nodes it must still have: not those a resize was removing or adding.
            return [(c.id, c.state, {n["Ec2InstanceId"] for n in live_nodes(c)
                                     if "Decommissioning" not in n and not n.get("Pending")})
                    for c in rows if c.state not in TERMINAL]  # fmt: skip

        for cluster_id, state, instances in await self.store.tx(unfinished):
            alive = state in ("WAITING", "RUNNING") and instances <= (
                await self.engine.running_instances(cluster_id)
            )
            if not alive:
                await self._finish(
                    cluster_id, ("INTERNAL_ERROR", "The gateway restarted while the cluster ran.")
                )
                continue
            interrupted = await self.store.tx(functools.partial(_interrupt_steps, cluster_id))
            for step_id in interrupted:
                await self.engine.cancel_step(cluster_id, step_id)
            log.info("cluster %s: adopted after a restart", cluster_id)
            self._wake[cluster_id] = asyncio.Event()
            self._spawn(self._resume(cluster_id), cluster_id)
            # A shrink that was draining nodes goes on (its timeout starts again).
            for group_id, draining, timeout in await self.store.tx(
                functools.partial(_draining, cluster_id)
            ):
                self.resize(cluster_id, group_id, [], draining, timeout)
            # A grow that was adding nodes starts them again, from scratch.
            for group_id, adding in await self.store.tx(functools.partial(_adding, cluster_id)):
                self._spawn(self._add_again(cluster_id, group_id, adding), f"resize {group_id}")
        # The attached Workspaces' routes, once their clusters are known to run or not.
        rest = await reattach.reopen_routes(self.store, self.engine, self.kernels, self.region)
        if rest is not None:
            self._spawn(rest, "re-open attachments")

    async def _add_again(self, cluster_id: str, group_id: str, adding: list[str]) -> None:
        """After a restart: the nodes a resize was adding, whatever of them was made (a
        container half-started, or started but not yet recorded) removed, then added."""
        await self.engine.remove_nodes(cluster_id, adding)
        await self._resize(cluster_id, group_id, adding, [], 0.0)

    async def _resume(self, cluster_id: str) -> None:
        try:
            await self._steps(cluster_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("cluster %s: runner failed", cluster_id)
            await self._finish(cluster_id, ("INTERNAL_ERROR", f"emustudio failed: {exc}"))

    async def close(self) -> None:
        # A running step's command is stopped first: the engine's close waits for its Docker
        # calls, and the next start marks the step FAILED anyway (``adopt``).
        for cluster_id, steps in list(self._running_steps.items()):
            for step_id in list(steps):
                await self.engine.cancel_step(cluster_id, step_id)
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
            for node in sorted(live_nodes(cluster), key=lambda n: n["Role"] != "MASTER"):
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
            failure = await self._bootstrap(cluster_id)
            if failure is not None:
                await self._finish(cluster_id, ("BOOTSTRAP_FAILURE", failure))
                return
            await self._steps(cluster_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or Docker failing: the cluster must not hang STARTING
            log.exception("cluster %s: runner failed", cluster_id)
            await self._finish(cluster_id, ("INTERNAL_ERROR", f"emustudio failed: {exc}"))

    async def _bootstrap(self, cluster_id: str) -> str | None:
        """Run the cluster's bootstrap actions on its nodes; the failure's message, if any."""

        def read(session: Session) -> _Bootstrap:
            cluster = session.get(Cluster, cluster_id)
            assert cluster is not None
            nodes = [bootstrap.Node(n["Ec2InstanceId"], n["Role"]) for n in live_nodes(cluster)]
            return (cluster.job_flow_role, nodes, bootstrap.actions_of(session, cluster_id),
                    cluster.log_uri)  # fmt: skip

        profile, nodes, actions, log_uri = await self.store.tx(read)
        if not actions:
            return None
        if self.s3 is None:
            return "Bootstrap actions need the gateway's S3."
        return await bootstrap.run_actions(self.engine, self.s3, cluster_id, profile, nodes,
                                           actions, log_uri)  # fmt: skip

    async def _steps(self, cluster_id: str) -> None:
        """Run the pending steps, up to the cluster's ``StepConcurrencyLevel`` at once, in
        the order they were added; ``WAITING`` (or the end) when none is left."""
        ran_any = False
        event = self._wake.setdefault(cluster_id, asyncio.Event())
        running: dict[str, asyncio.Task[str | None]] = {}
        try:
            while True:
                event.clear()
                level = await self.store.tx(functools.partial(concurrency_of, cluster_id))
                while len(running) < level:
                    step = await self._next_step(cluster_id, running)
                    if step is None:
                        break
                    if not await self._state(cluster_id, "RUNNING", "Running step"):
                        await self._finish(cluster_id, None)
                        return
                    ran_any = True
                    running[step.id] = asyncio.create_task(self._run_step(cluster_id, step))
                if not running:
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
                    idle = await self._wait_while_waiting(cluster_id, event)
                    if idle is not None:
                        await self._finish(cluster_id, ("ALL_STEPS_COMPLETED", idle_message(idle)))
                        return
                    continue
                woken = asyncio.create_task(event.wait())
                await asyncio.wait([*running.values(), woken], return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                for step_id, task in list(running.items()):
                    if not task.done():
                        continue
                    del running[step_id]
                    failed_action = task.result()
                    if failed_action in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
                        for other in running:
                            await self.engine.cancel_step(cluster_id, other)
                        await asyncio.gather(*running.values(), return_exceptions=True)
                        running.clear()
                        await self._finish(cluster_id, ("STEP_FAILURE", "Shut down as step failed"))
                        return
                    if failed_action == "CANCEL_AND_WAIT":
                        await self._cancel_pending(cluster_id)
        finally:
            for task in running.values():
                task.cancel()

    async def _wait_while_waiting(self, cluster_id: str, event: asyncio.Event) -> int | None:
        """Wait, ``WAITING``, for a wake (a step, a terminate, a policy change); the idle
        timeout when the auto-termination policy ends the cluster instead. Idle means what EMR
        reads: no Spark application, no running Workspace attached, ``isbusy`` not touched
        lately."""
        idle_since = time.monotonic()
        while True:

            def policy(session: Session) -> tuple[int | None, bool]:
                cluster = session.get(Cluster, cluster_id)
                # A running attached Workspace is a Studio connection; a stopped one that still
                # names the cluster (to attach again at its start) is not, nor are its kernels.
                attached = session.exec(
                    select(Editor.id).where(
                        Editor.attached_cluster_id == cluster_id,
                        col(Editor.status).in_(reattach.ATTACH_STATES),
                    )
                ).first()
                return (cluster.auto_termination_idle_seconds if cluster else None,
                        attached is not None)  # fmt: skip

            timeout, attached = await self.store.tx(policy)
            if timeout is None:
                await event.wait()
                return None
            try:
                await asyncio.wait_for(event.wait(), min(self.idle_check_seconds, timeout))
                return None
            except TimeoutError:
                pass
            if attached or await self.engine.busy(cluster_id, self.idle_check_seconds * 2):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= timeout:
                return timeout

    async def _next_step(
        self, cluster_id: str, started: Collection[str] = ()
    ) -> ClusterStep | None:
        def read(session: Session) -> ClusterStep | None:
            return session.exec(
                select(ClusterStep)
                .where(
                    ClusterStep.cluster_id == cluster_id,
                    ClusterStep.state == "PENDING",
                    col(ClusterStep.id).not_in(list(started)),
                )
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

        def where(session: Session) -> tuple[str, str, str | None]:
            cluster = session.get(Cluster, cluster_id)
            assert cluster is not None
            master = next(n for n in cluster.instances if n["Role"] == "MASTER")
            return cluster.job_flow_role, master["Ec2InstanceId"], cluster.log_uri

        profile, master, log_uri = await self.store.tx(where)
        started = time.time()
        self._running_steps.setdefault(cluster_id, set()).add(step.id)
        try:
            try:
                command = await step_work.command_for(self.s3, profile, master, step.id, step.jar,
                                                      step.main_class, step.args,
                                                      step.properties)  # fmt: skip
            except step_work.StepCannotRun as exc:
                command = step_work.Command([])
                outcome = StepOutcome(255, "", str(exc), logs={"stderr": f"{exc}\n".encode()})
            else:
                outcome = await self.engine.run_step(
                    cluster_id, step.id, command.argv, command.files
                )
        finally:
            self._running_steps.get(cluster_id, set()).discard(step.id)
        log.info("cluster %s: step %s exited %s", cluster_id, step.id, outcome.exit_code)
        if log_uri and self.s3 is not None:
            logs = dict(outcome.logs)
            logs["controller"] = step_work.controller_log(
                step.jar, command.argv, started, time.time(), outcome.exit_code, outcome.cancelled
            )
            prefix = step_work.log_prefix(log_uri, cluster_id, step.id)
            await step_work.upload_logs(self.s3, profile, master, prefix, logs)

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
        for editor_id in self.kernels.editors_on(cluster_id):

            def read(session: Session, editor_id: str = editor_id) -> Editor | None:
                return session.get(Editor, editor_id)

            await self.kernels.detach(await self.store.tx(read), editor_id, cluster_gone=True)


def live_nodes(cluster: Cluster) -> list[dict[str, Any]]:
    """The cluster's instances a resize has not ended."""
    return [n for n in cluster.instances if not n.get("EndedAt")]


def _in_group(node: dict[str, Any], group_id: str) -> bool:
    return group_id in (node.get("InstanceGroupId"), node.get("InstanceFleetId"))


def concurrency_of(cluster_id: str, session: Session) -> int:
    """How many steps the cluster runs at once (``StepConcurrencyLevel``; 1 unless set)."""
    row = session.get(ClusterOptions, cluster_id)
    return row.step_concurrency_level if row is not None else 1


def _draining(cluster_id: str, session: Session) -> list[tuple[str, list[str], float]]:
    """The nodes a shrink was decommissioning, by group: (group id, instance ids, timeout)."""
    cluster = session.get(Cluster, cluster_id)
    found: dict[str, tuple[list[str], float]] = {}
    for node in live_nodes(cluster) if cluster is not None else []:
        if "Decommissioning" in node:
            group = node.get("InstanceGroupId") or node.get("InstanceFleetId") or ""
            ids, _ = found.setdefault(group, ([], float(node["Decommissioning"])))
            ids.append(node["Ec2InstanceId"])
    return [(group, ids, timeout) for group, (ids, timeout) in found.items()]


def _adding(cluster_id: str, session: Session) -> list[tuple[str, list[str]]]:
    """The nodes a grow was adding (still ``Pending``), by group: (group id, instance ids)."""
    cluster = session.get(Cluster, cluster_id)
    found: dict[str, list[str]] = {}
    for node in live_nodes(cluster) if cluster is not None else []:
        if node.get("Pending"):
            group = node.get("InstanceGroupId") or node.get("InstanceFleetId") or ""
            found.setdefault(group, []).append(node["Ec2InstanceId"])
    return list(found.items())


def _interrupt_steps(cluster_id: str, session: Session) -> list[str]:
    """The steps that ran when the gateway stopped: FAILED (their ids, to stop what is left)."""
    ids = []
    for row in session.exec(
        select(ClusterStep).where(
            ClusterStep.cluster_id == cluster_id, ClusterStep.state == "RUNNING"
        )
    ):
        row.state, row.ended_at = "FAILED", time.time()
        row.failure = {"Reason": "The gateway restarted while the step ran.",
                       "Message": "The step was interrupted."}  # fmt: skip
        session.add(row)
        ids.append(row.id)
    return ids


def detach_all(session: Session, cluster_id: str) -> None:
    """The Workspaces attached to an ended cluster are detached (Ready, no cluster)."""
    for editor in session.exec(select(Editor).where(Editor.attached_cluster_id == cluster_id)):
        editor.attached_cluster_id = None
        if editor.status in ("Attaching", "Attached", "Detaching"):
            editor.status, editor.last_modified_at = "Ready", time.time()
            editor.status_reason = f"Cluster {cluster_id} terminated; the Workspace is detached."
        session.add(editor)
