"""The gate on the kernel route: a Workspace's server, authenticated by its engine secret.

:class:`KernelRouteGate` implements the proxy's ``EngineGate``. A request on
``/engine/<e-id>/...`` passes only when, in this order:

1. ``<e-id>`` is attached to a cluster (else 409: a detached Workspace keeps its local kernels
   and reaches no cluster);
2. it carries ``Authorization: token <engine secret>`` of that Workspace, as issued at its last
   start (else 403). No user session is accepted here: the route serves the Workspace's
   server, and a user's browser never holds the secret;
3. the path is a kernelspec, or a kernel this Workspace started on that cluster (else 404).

The upstream is always the cluster the Workspace is attached to, never one named in the
request, so a Workspace reaches no other cluster, and no cluster of another Studio (attach
already held the cluster to the Studio's VPC and subnets).
"""

from __future__ import annotations

import re

from tornado import web

from emustudio.proxy.contract import Upstream
from emustudio.services.emr.kernel_route import Attachment, KernelRoutes

_KERNEL_PATH = re.compile(r"/api/kernels/([^/?]+)(?:[/?].*)?")
_SPEC_PATH = re.compile(r"/(?:api/)?kernelspecs(?:[/?].*)?")


class KernelRouteGate:
    def __init__(self, routes: KernelRoutes) -> None:
        self.routes = routes

    def _attachment(self, editor_id: str, authorization: str) -> Attachment:
        if self.routes.attached(editor_id) is None:
            raise web.HTTPError(409, reason="The Workspace is not attached to a cluster.")
        scheme, _, secret = authorization.partition(" ")
        attachment = self.routes.lookup(editor_id, secret.strip())
        if scheme.lower() != "token" or attachment is None:
            raise web.HTTPError(403, reason="Not this Workspace's engine secret.")
        return attachment

    def open_engine(self, editor_id: str, authorization: str, path: str) -> Upstream:
        attachment = self._attachment(editor_id, authorization)
        kernel = _KERNEL_PATH.fullmatch(path)
        if kernel is not None:
            if not attachment.owns(kernel.group(1)):
                raise web.HTTPError(404, reason="No such kernel for this Workspace.")
        elif _SPEC_PATH.fullmatch(path) is None:
            raise web.HTTPError(404, reason="Not a kernel gateway path.")
        return Upstream(attachment.host, attachment.port, attachment.token, "/")

    async def kernels(
        self, editor_id: str, authorization: str, method: str, body: bytes
    ) -> tuple[int, bytes]:
        attachment = self._attachment(editor_id, authorization)
        if method == "POST":
            return await self.routes.start_kernel(attachment, body)
        return await self.routes.list_kernels(attachment)
