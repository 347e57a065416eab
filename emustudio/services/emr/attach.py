"""AttachEditor and DetachEditor: a Workspace's kernels move to an EMR cluster and back.

AWS's checks, each with its own message, in this order: the Workspace is running (Ready); the
cluster exists and is ``RUNNING`` or ``WAITING``; it is in the Studio's VPC and one of the
Studio's subnets; it has Spark, Livy and JupyterEnterpriseGateway; its release supports Studio;
the Workspace security group allows outbound TCP 18888 to the engine security group, and the
engine group allows it inbound from the Workspace group. A refused attach changes nothing.

Statuses go ``Ready → Attaching → Attached`` (Attached once the cluster's gateway answers an
address, the kernel route is open and the Workspace's server has switched to it) and
``Attached → Detaching → Ready`` (the Workspace's kernels on the cluster ended, its server back
on local kernels). A Workspace whose cluster ends is detached. A Workspace stopped while
attached loses its route and its kernels on the cluster (``kernel_route.RouteHooks``) but keeps
naming the cluster; its next start, once Ready, attaches it again with the same checks (a
refusal leaves it Ready with the reason, its cluster forgotten). ``kernel_route.py`` holds the
route; ``KERNEL_USERNAME`` is the attaching (or starting) principal's name (``kernel_username``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import Session

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.engines import releases
from emustudio.services.base import operation
from emustudio.services.emr.clusters import ClusterOperations
from emustudio.services.emr.common import InvalidRequest
from emustudio.services.emr.editors import EditorOperations
from emustudio.services.emr.kernel_route import kernel_username
from emustudio.services.emr.service_role import ServiceRoleAttach
from emustudio.store.cluster_tables import Cluster
from emustudio.store.tables import Editor, SecurityGroup, Studio

GATEWAY_PORT = 18888
NEEDED_APPLICATIONS = ("Spark", "Livy", "JupyterEnterpriseGateway")


def _allows(group: SecurityGroup, *, egress: bool, peer: str) -> bool:
    """Whether ``group`` has a rule for TCP 18888 to (egress) or from (ingress) group ``peer``."""
    for rule in group.rules:
        # An outbound rule to anywhere covers the engine group too; inbound must name the peer.
        anywhere = egress and rule.get("cidr_ipv4") == "0.0.0.0/0"
        if bool(rule.get("egress")) != egress or not (rule.get("group_id") == peer or anywhere):
            continue
        if rule.get("protocol") == "-1":
            return True
        low, high = rule.get("from_port"), rule.get("to_port")
        if rule.get("protocol") == "tcp" and (
            low is None or high is None or low <= GATEWAY_PORT <= high
        ):
            return True
    return False


def check_attach(
    session: Session, studio: Studio, cluster: Cluster | None, cluster_id: str
) -> None:
    if cluster is None:
        raise InvalidRequest(f"Cluster id '{cluster_id}' is not valid.")
    if cluster.state not in ("RUNNING", "WAITING"):
        raise InvalidRequest(
            f"Cluster {cluster.id} is {cluster.state}. A Workspace can be attached only to a"
            " cluster that is RUNNING or WAITING."
        )
    if cluster.vpc_id != studio.vpc_id:
        raise InvalidRequest(
            f"Cluster {cluster.id} is in VPC {cluster.vpc_id}, not in the Studio's VPC"
            f" {studio.vpc_id}."
        )
    if cluster.subnet_id not in studio.subnet_ids:
        raise InvalidRequest(
            f"Cluster {cluster.id} is in subnet {cluster.subnet_id}, which is not one of the"
            f" Studio's subnets ({', '.join(studio.subnet_ids)})."
        )
    installed = {a["Name"] for a in cluster.applications}
    missing = [a for a in NEEDED_APPLICATIONS if a not in installed]
    if missing:
        raise InvalidRequest(
            f"Cluster {cluster.id} must have Spark, Livy and JupyterEnterpriseGateway installed"
            f" to attach a Workspace; missing: {', '.join(missing)}."
        )
    release = releases.release(cluster.release_label)
    if release is None or not release.studio:
        raise InvalidRequest(f"Release {cluster.release_label} does not support EMR Studio.")
    workspace_sg = session.get(SecurityGroup, studio.workspace_security_group_id)
    engine_sg = session.get(SecurityGroup, studio.engine_security_group_id)
    if workspace_sg is None or not _allows(
        workspace_sg, egress=True, peer=studio.engine_security_group_id
    ):
        raise InvalidRequest(
            f"The Workspace security group {studio.workspace_security_group_id} must allow"
            f" outbound TCP traffic on port {GATEWAY_PORT} to the engine security group"
            f" {studio.engine_security_group_id}."
        )
    if engine_sg is None or not _allows(
        engine_sg, egress=False, peer=studio.workspace_security_group_id
    ):
        raise InvalidRequest(
            f"The engine security group {studio.engine_security_group_id} must allow inbound"
            f" TCP traffic on port {GATEWAY_PORT} from the Workspace security group"
            f" {studio.workspace_security_group_id}."
        )


class AttachOperations(EditorOperations, ClusterOperations):
    # The service-role check; the composition wires it (a unit test without STS goes without).
    service_role_attach: ServiceRoleAttach | None = None

    @operation("AttachEditor")
    async def attach_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        manager, _ = self.manager(), self.life()  # both must be there before anything changes
        editor_id = params["EditorId"]
        engine = params["ExecutionEngine"]
        if engine.get("Type", "EMR") != "EMR":
            raise InvalidRequest("ExecutionEngine Type must be EMR.")
        cluster_id = engine["Id"]

        def check(session: Session) -> tuple[str, str, str]:
            editor = self.get_editor_or_raise(session, editor_id)
            if editor.status != "Ready":
                raise InvalidRequest(
                    f"Workspace {editor_id} is {editor.status}; it can be attached only when Ready."
                )
            studio = self.get_studio_or_raise(session, editor.studio_id)
            cluster = session.get(Cluster, cluster_id)
            if cluster is not None and cluster.region != self.region:
                cluster = None
            check_attach(session, studio, cluster, cluster_id)
            assert cluster is not None
            return studio.service_role, cluster.subnet_id, studio.engine_security_group_id

        service_role, subnet_id, engine_group = await self.store.tx(check)
        if self.service_role_attach is not None:
            await self.service_role_attach.check(service_role, cluster_id, subnet_id, engine_group)
        await manager.set_status(editor_id, "Attaching", attached_cluster_id=cluster_id)
        user = kernel_username(ctx.principal)
        manager.background(self._open_route(editor_id, cluster_id, user), f"attach {editor_id}")
        return {"EditorId": editor_id, "Status": "Attaching"}

    async def _open_route(self, editor_id: str, cluster_id: str, user: str) -> None:
        """``Attaching`` → ``Attached`` once the cluster's gateway answers and the Workspace's
        server has switched to the route."""
        manager, life = self.manager(), self.life()
        endpoint = await life.engine.gateway_endpoint(cluster_id)
        if endpoint is None:
            await manager.set_status(
                editor_id, "Ready", "The cluster's gateway does not answer.",
                only_from="Attaching", attached_cluster_id=None,
            )  # fmt: skip
            return

        def read(session: Session) -> tuple[Editor | None, Cluster | None]:
            return session.get(Editor, editor_id), session.get(Cluster, cluster_id)

        editor, cluster = await self.store.tx(read)
        if editor is None or cluster is None or editor.status != "Attaching":
            return  # deleted, stopped or detached meanwhile
        await life.kernels.attach(editor, cluster_id, endpoint, cluster.gateway_token, user)
        if not await manager.set_status(editor_id, "Attached", only_from="Attaching"):
            # Stopped or deleted while its server switched: its stop may have closed the
            # route already, before this opened it, so close it (and end its kernels) here.
            await life.kernels.detach(None, editor_id)

    def after_start(
        self, ctx: RequestContext, editor_id: str
    ) -> Callable[[], Awaitable[None]] | None:
        """A Workspace stopped while attached names its cluster still: once Ready again it
        attaches to it again, as its starter (undocumented: docs/decisions.md)."""
        return functools.partial(self._attach_again, editor_id, kernel_username(ctx.principal))

    async def _attach_again(self, editor_id: str, user: str) -> None:
        manager = self.manager()

        def check(session: Session) -> tuple[str, str, str, str] | None:
            editor = session.get(Editor, editor_id)
            if editor is None or editor.status != "Ready" or not editor.attached_cluster_id:
                return None
            cluster_id = editor.attached_cluster_id
            studio = self.get_studio_or_raise(session, editor.studio_id)
            cluster = session.get(Cluster, cluster_id)
            if cluster is not None and cluster.region != self.region:
                cluster = None
            check_attach(session, studio, cluster, cluster_id)
            assert cluster is not None
            return (cluster_id, studio.service_role, cluster.subnet_id,
                    studio.engine_security_group_id)  # fmt: skip

        named = await self.store.tx(lambda session: session.get(Editor, editor_id))
        cluster_id = named.attached_cluster_id if named is not None else None
        try:
            found = await self.store.tx(check)
            if found is None:
                return
            cluster_id, service_role, subnet_id, engine_group = found
            if self.service_role_attach is not None:
                await self.service_role_attach.check(
                    service_role, cluster_id, subnet_id, engine_group
                )
        except AwsError as exc:
            # Refused as an AttachEditor would be: the Workspace is Ready, on its own kernels.
            await manager.set_status(
                editor_id, "Ready",
                f"The Workspace could not attach again to cluster {cluster_id}: {exc.message}",
                only_from="Ready", attached_cluster_id=None,
            )  # fmt: skip
            return
        if await manager.set_status(
            editor_id, "Attaching", only_from="Ready", attached_cluster_id=cluster_id
        ):
            await self._open_route(editor_id, cluster_id, user)

    @operation("DetachEditor")
    async def detach_editor(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        manager = self.manager()
        editor_id = params["EditorId"]
        await self._transition(editor_id, ("Attached",), "detached")
        await manager.set_status(editor_id, "Detaching")
        editor = await self.store.tx(lambda session: session.get(Editor, editor_id))
        await self.life().kernels.detach(editor, editor_id)
        await manager.set_status(editor_id, "Ready", attached_cluster_id=None)
        return {"EditorId": editor_id, "Status": "Ready"}
