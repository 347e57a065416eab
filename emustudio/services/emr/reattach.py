"""After a gateway restart, the attached Workspaces' kernel routes open again.

A restart leaves the Workspace containers and the clusters running (both are adopted), and the
Workspace's server still holds its engine secret, its kernels still run on the cluster. Only
the gateway forgot the route: it re-opens it from the store (``KernelAttachment``), so the
server's next call through ``/engine/<e-id>/`` (its kernel WebSocket reconnecting, JupyterLab
listing kernels) goes through as before, to the same kernels, with their state.

Where that is not possible the Workspace is detached, and says so, as AWS never detaches in
silence: its server is switched back to local kernels, its kernels on a cluster that still runs
are ended, and it is ``Ready`` with the reason. Case by case:

* ``Attached``, its route in the store, its cluster adopted and its kernel gateway answering:
  re-opened before the gateway listens (nothing to tell the Workspace);
* ``Attaching`` with its route in the store (the gateway stopped between opening the route and
  writing ``Attached``): attached again with a new secret handed to the server, then
  ``Attached``; ``Attaching`` without one: detached ("attach it again");
* ``Detaching``: the detach is finished;
* the cluster ended while the gateway was down (the adoption ended it and detached the
  Workspace), or its kernel gateway does not answer: detached, with the reason;
* a route whose Workspace stopped or was deleted meanwhile: closed, its kernels ended (a
  stopped one keeps naming its cluster, as after any stop: its start attaches it again).

What needs the Workspaces' servers runs after start-up, in the background (the caller spawns
it): a server switching back ends its kernels through the route, which must be listening.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any

from sqlmodel import Session, col, or_, select

from emustudio.engines import ClusterEngine
from emustudio.services.emr.kernel_route import KernelRoutes
from emustudio.store import Store
from emustudio.store.cluster_tables import Cluster, KernelAttachment
from emustudio.store.tables import EDITOR_RUNNING, Editor

log = logging.getLogger(__name__)

ALIVE = ("RUNNING", "WAITING")
ATTACH_STATES = ("Attaching", "Attached", "Detaching")


async def reopen_routes(
    store: Store, engine: ClusterEngine, kernels: KernelRoutes, region: str
) -> Coroutine[Any, Any, None] | None:
    """Re-open the intact routes now; return the rest of the work (telling Workspaces), or
    None when there is none."""

    def read(
        session: Session,
    ) -> tuple[dict[str, KernelAttachment], dict[str, Editor], dict[str, Cluster]]:
        rows = {r.editor_id: r for r in session.exec(select(KernelAttachment))}
        editors = {
            e.id: e
            for e in session.exec(
                select(Editor).where(
                    Editor.region == region,
                    or_(col(Editor.id).in_(list(rows)), col(Editor.status).in_(ATTACH_STATES)),
                )
            )
        }
        wanted = {r.cluster_id for r in rows.values()} | {
            e.attached_cluster_id for e in editors.values() if e.attached_cluster_id
        }
        clusters = {
            c.id: c for c in session.exec(select(Cluster).where(col(Cluster.id).in_(wanted)))
        }
        return rows, editors, clusters

    rows, editors, clusters = await store.tx(read)
    endpoints: dict[str, str] = {}
    for cluster in clusters.values():
        if cluster.state in ALIVE:
            endpoint = await engine.gateway_endpoint(cluster.id)
            if endpoint is not None:
                endpoints[cluster.id] = endpoint

    later: list[Coroutine[Any, Any, None]] = []
    for editor_id in sorted(set(rows) | set(editors)):
        row, editor = rows.get(editor_id), editors.get(editor_id)
        if editor is None and row is not None and await _elsewhere(store, editor_id):
            continue  # another region's Workspace: its own gateway's
        status = editor.status if editor is not None else None
        cluster_id = editor.attached_cluster_id if editor is not None else None
        intact = row is not None and row.cluster_id == cluster_id and cluster_id in endpoints
        if intact and status == "Attached":
            assert row is not None and cluster_id is not None
            kernels.reopen(row, endpoints[cluster_id], clusters[cluster_id].gateway_token)
            log.info("workspace %s: its route to %s is open again", editor_id, cluster_id)
            continue
        if intact and status == "Attaching":
            assert row is not None and editor is not None and cluster_id is not None
            later.append(
                _attach_again(
                    store, kernels, editor, cluster_id, endpoints[cluster_id],
                    clusters[cluster_id].gateway_token, row.kernel_username,
                )
            )  # fmt: skip
            continue
        if row is not None and row.cluster_id in endpoints:
            # Opened only to end its kernels on the cluster, which still runs.
            kernels.reopen(row, endpoints[row.cluster_id], clusters[row.cluster_id].gateway_token)
        reason = _reason(status, cluster_id, row is not None, cluster_id in endpoints)
        later.append(_detach(store, kernels, editor_id, editor, reason))
    if not later:
        return None
    return _run_all(later)


async def _elsewhere(store: Store, editor_id: str) -> bool:
    return await store.tx(lambda session: session.get(Editor, editor_id) is not None)


def _reason(status: str | None, cluster_id: str | None, had_route: bool, alive: bool) -> str | None:
    """Why a Workspace in an attach state is detached after a restart (None: a finished
    detach, or a Workspace that no longer shows an attachment)."""
    if status == "Detaching" or status not in ATTACH_STATES:
        return None
    if status == "Attaching" and not had_route and alive:
        return (
            f"The gateway restarted while the Workspace was attaching to cluster {cluster_id};"
            " attach it again."
        )
    if not alive:
        return (
            f"Cluster {cluster_id} did not answer after the gateway restarted; the Workspace"
            " is detached."
        )
    return (
        f"The gateway restarted and could not re-open the Workspace's route to cluster"
        f" {cluster_id}; the Workspace is detached."
    )


async def _run_all(work: list[Coroutine[Any, Any, None]]) -> None:
    for coro in work:
        try:
            await coro
        except Exception:
            log.exception("re-opening an attachment after the restart failed")


async def _attach_again(
    store: Store, kernels: KernelRoutes, editor: Editor, cluster_id: str, endpoint: str,
    token: str, user: str,
) -> None:  # fmt: skip
    await kernels.attach(editor, cluster_id, endpoint, token, user)
    await _set_status(store, editor.id, "Attaching", "Attached", None, keep_cluster=True)
    log.info("workspace %s: attached to %s after the restart", editor.id, cluster_id)


async def _detach(
    store: Store, kernels: KernelRoutes, editor_id: str, editor: Editor | None, reason: str | None
) -> None:
    running = editor if editor is not None and editor.status in EDITOR_RUNNING else None
    attachment = kernels.attached(editor_id)
    # The server switches back to local kernels (ending its own through the route), then the
    # route ends what is left on the cluster, if the cluster still runs.
    await kernels.detach(running, editor_id, cluster_gone=attachment is None)
    if editor is not None and editor.status in ATTACH_STATES:
        await _set_status(store, editor_id, editor.status, "Ready", reason, keep_cluster=False)
        log.info("workspace %s: detached after the restart: %s", editor_id, reason or "done")
    elif editor is not None and editor.attached_cluster_id and editor.status in EDITOR_RUNNING:
        # Running but not attached: it names no cluster any more either. A stopped one keeps
        # naming its cluster, as after a stop, and attaches again at its next start.
        await _set_status(store, editor_id, editor.status, editor.status, editor.status_reason,
                          keep_cluster=False)  # fmt: skip


async def _set_status(
    store: Store, editor_id: str, was: str, status: str, reason: str | None, *, keep_cluster: bool
) -> None:
    """Write ``status`` unless the Workspace moved on meanwhile (a user's call after start)."""

    def write(session: Session) -> None:
        editor = session.get(Editor, editor_id)
        if editor is None or editor.status != was:
            return
        editor.status, editor.status_reason = status, reason
        editor.last_modified_at = time.time()
        if not keep_cluster:
            editor.attached_cluster_id = None
        session.add(editor)

    await store.tx(write)


def reached_subnets(region: str, session: Session) -> set[str]:
    """The subnets whose running containers reach the gateway at their network's address: an
    unfinished cluster's nodes (S3, instance metadata) and a running Workspace (the kernel
    route). After a restart the gateway listens there again before anything asks."""
    clusters = session.exec(select(Cluster).where(Cluster.region == region))
    editors = session.exec(
        select(Editor).where(Editor.region == region, col(Editor.status).in_(EDITOR_RUNNING))
    )
    return {c.subnet_id for c in clusters if c.state not in ("TERMINATED",
            "TERMINATED_WITH_ERRORS")} | {e.subnet_id for e in editors if e.subnet_id}  # fmt: skip
