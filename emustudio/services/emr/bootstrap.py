"""Bootstrap actions: scripts from S3 run on every node, in order, before the cluster runs.

``RunJobFlow`` takes ``BootstrapActions`` (``ScriptBootstrapAction``: an ``s3://`` path and
arguments, at most 16); ``ListBootstrapActions`` and ``DescribeJobFlows`` report them. While the
cluster is ``BOOTSTRAPPING`` each node fetches each script with the instance profile's role
(``instance_s3.py``), puts it where EMR does
(``/emr/instance-controller/lib/bootstrap-actions/<n>/<file>``) and runs it as ``hadoop`` with
its arguments; the nodes run in parallel, the actions one after another on each. The first
failure ends the cluster ``TERMINATED_WITH_ERRORS``, ``BOOTSTRAP_FAILURE``, in EMR's words.

With a ``LogUri``, each node writes each action's output where EMR puts it,
``<LogUri>/<cluster id>/node/<instance id>/bootstrap-actions/<n>/{controller,stdout,stderr}.gz``,
as the node's instance profile role, once the action ended (before a failure ends the cluster):
``controller`` says what ran, for how long and how it ended (``controller_log``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from emustudio.engines import ClusterEngine
from emustudio.services.emr import step_work
from emustudio.services.emr.common import ValidationException
from emustudio.services.emr.instance_s3 import InstanceProfileS3, S3Refused, split_s3_uri
from emustudio.store.cluster_tables import ClusterBootstrapAction

log = logging.getLogger(__name__)

MAX_ACTIONS = 16  # EMR's limit
ACTION_DIR = "/emr/instance-controller/lib/bootstrap-actions"


@dataclass(frozen=True)
class Action:
    seq: int
    name: str
    path: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    instance_id: str
    role: str  # MASTER, CORE, TASK


def check_actions(actions: list[dict[str, Any]]) -> list[Action]:
    if len(actions) > MAX_ACTIONS:
        raise ValidationException(
            f"A cluster may have at most {MAX_ACTIONS} bootstrap actions; {len(actions)} given."
        )
    out = []
    for seq, action in enumerate(actions, start=1):
        script = action["ScriptBootstrapAction"]
        try:
            split_s3_uri(script["Path"])
        except ValueError:
            raise ValidationException(
                f"The bootstrap action {action['Name']} has an invalid path: {script['Path']}"
                " (an s3:// location is expected)."
            ) from None
        out.append(Action(seq, action["Name"], script["Path"], tuple(script.get("Args") or [])))
    return out


def add_actions(session: Session, cluster_id: str, actions: list[Action]) -> None:
    for a in actions:
        session.add(ClusterBootstrapAction(cluster_id=cluster_id, seq=a.seq, name=a.name,
                                           path=a.path, args=list(a.args)))  # fmt: skip


def actions_of(session: Session, cluster_id: str) -> list[Action]:
    rows = session.exec(
        select(ClusterBootstrapAction)
        .where(ClusterBootstrapAction.cluster_id == cluster_id)
        .order_by(col(ClusterBootstrapAction.seq))
    )
    return [Action(r.seq, r.name, r.path, tuple(r.args)) for r in rows]


def command_shape(action: Action) -> dict[str, Any]:
    """``ListBootstrapActions``' ``Command``."""
    return {"Name": action.name, "ScriptPath": action.path, "Args": list(action.args)}


def config_shape(action: Action) -> dict[str, Any]:
    """``DescribeJobFlows``' ``BootstrapActionDetail``."""
    script = {"Path": action.path, "Args": list(action.args)}
    return {"BootstrapActionConfig": {"Name": action.name, "ScriptBootstrapAction": script}}


def _where(node: Node) -> str:
    return node.role.lower()


def log_prefix(log_uri: str, cluster_id: str, instance_id: str, seq: int) -> str:
    return f"{log_uri.rstrip('/')}/{cluster_id}/node/{instance_id}/bootstrap-actions/{seq}"


def controller_log(
    action: Action, argv: list[str], started: float, ended: float, code: int | None,
    error: str | None = None,
) -> bytes:  # fmt: skip
    """An action's ``controller`` log, in the words of EMR's instance controller (``code``
    None: the script was never run, ``error`` says why)."""
    stamp = step_work.stamp
    lines = [f"{stamp(started)} INFO Fetching file '{action.path}'"]
    if code is None:
        lines.append(f"{stamp(ended)} ERROR Failed to download bootstrap action file: {error}")
    else:
        took = max(0, round(ended - started))
        lines += [
            f"{stamp(started)} INFO startExec '{' '.join(argv)}'",
            f"{stamp(ended)} INFO total process run time: {took} seconds",
            f"{stamp(ended)} INFO waitProcessCompletion ended with exit code {code} : {argv[0]}",
            f"{stamp(ended)} INFO Execution succeeded"
            if code == 0
            else f"{stamp(ended)} WARN Execution failed with code '{code}'",
        ]
    return ("\n".join(lines) + "\n").encode()


async def run_actions(
    engine: ClusterEngine,
    s3: InstanceProfileS3,
    cluster_id: str,
    profile: str,
    nodes: list[Node],
    actions: list[Action],
    log_uri: str | None = None,
) -> str | None:
    """Run ``actions`` on every node, their logs to ``log_uri`` if given; None when all
    succeeded, else the failure's message (the master's when it is among the failed)."""

    async def push(node: Node, action: Action, logs: dict[str, bytes]) -> None:
        if log_uri:
            prefix = log_prefix(log_uri, cluster_id, node.instance_id, action.seq)
            await step_work.upload_logs(s3, profile, node.instance_id, prefix, logs)

    async def on(node: Node) -> str | None:
        for action in actions:
            log.info("cluster %s: bootstrap action %d on %s: fetching %s", cluster_id,
                     action.seq, node.instance_id, action.path)  # fmt: skip
            started = time.time()
            try:
                script = await s3.get(profile, node.instance_id, action.path)
            except S3Refused as exc:
                log.info("cluster %s: bootstrap %d on %s: %s", cluster_id, action.seq,
                         node.instance_id, exc)  # fmt: skip
                controller = controller_log(action, [], started, time.time(), None, str(exc))
                await push(node, action, {"controller": controller})
                return (
                    f"{node.role.title()} instance ({node.instance_id}) failed attempting to"
                    f" download bootstrap action {action.seq} file from S3"
                )
            name = action.path.rstrip("/").rsplit("/", 1)[-1] or "script"
            path = f"{ACTION_DIR}/{action.seq}/{name}"
            # A script without "#!" is a shell script, as EMR runs it.
            argv = [path] if script.startswith(b"#!") else ["/bin/bash", path]
            log.info("cluster %s: bootstrap action %d on %s: running", cluster_id, action.seq,
                     node.instance_id)  # fmt: skip
            argv = [*argv, *action.args]
            outcome = await engine.run_on_node(cluster_id, node.instance_id, argv, {path: script})
            logs = dict(outcome.logs)
            logs["controller"] = controller_log(
                action, argv, started, time.time(), outcome.exit_code
            )
            await push(node, action, logs)
            if outcome.exit_code != 0:
                log.info("cluster %s: bootstrap %d on %s exited %d: %s", cluster_id, action.seq,
                         node.instance_id, outcome.exit_code, outcome.stderr[-500:])  # fmt: skip
                return (
                    f"On the {_where(node)} instance ({node.instance_id}), bootstrap action"
                    f" {action.seq} returned a non-zero return code"
                )
        return None

    failures = await asyncio.gather(*(on(n) for n in nodes))
    for node, failure in zip(nodes, failures, strict=True):
        if failure is not None and node.role == "MASTER":
            return failure
    return next((f for f in failures if f is not None), None)
