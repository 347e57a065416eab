"""The kernel route: an attached Workspace's kernels run on its cluster, through the gateway.

A Workspace's JupyterLab reaches kernels on a cluster with jupyter_server's gateway client,
whose URL is the gateway's route ``/engine/<e-id>/`` (``proxy/engine.py``). What the route may
reach is held here, per Workspace, while it is attached:

* the **engine secret**: the Workspace presents it as ``Authorization: token <secret>``. It is
  random, made at the attach and handed to the Workspace's server in the switch call alone (no
  environment, no file: kernels cannot read it), so a detach or a restart makes it worthless;
  the Workspace never learns the cluster's Enterprise Gateway token, which the gateway adds
  itself;
* the cluster's **Enterprise Gateway** (master address, port 18888, its token);
* the **kernel user**: who attached (``KERNEL_USERNAME``), which the route writes into every
  kernel start whatever the Workspace asked, and never ``root``;
* the **kernels** this Workspace started there: the route lists and reaches only those, so two
  Workspaces on one cluster do not see each other's kernels.

A Workspace that is not attached has no entry, and the route refuses it: it keeps its local
kernels (``jupyter_ext``'s engine switch). Attaching and detaching tell the Workspace's server
to switch (``POST <base_url>emustudio/engine``), without a restart. Detaching, or the cluster
ending, shuts the Workspace's kernels down on the cluster before the entry goes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from emustudio.context import Principal
from emustudio.services.emr.workspaces import workspace_base_url
from emustudio.store.tables import Editor

log = logging.getLogger(__name__)

ENGINE_PATH = "/engine/"
"""Where the route starts on the gateway: ``/engine/<e-id>/`` is a Workspace's gateway URL."""
LOCAL_KERNEL_USER = "emr-notebook"
"""The kernel user when the attaching principal gives no usable name (the account root)."""
_USER_CHARS = re.compile(r"[^A-Za-z0-9._@+=,-]")
_TIMEOUT = 20.0


def kernel_username(principal: Principal | None) -> str:
    """``KERNEL_USERNAME`` for kernels started by a Workspace that ``principal`` attached: the
    IAM user's name or the role session's name, as EMR Studio passes it; never root."""
    name = ""
    if principal is not None and not principal.is_root:
        name = principal.session_name or principal.name
    name = _USER_CHARS.sub("", name)[:64]
    return name if name and name.lower() != "root" else LOCAL_KERNEL_USER


@dataclass
class Attachment:
    editor_id: str
    cluster_id: str
    secret: str
    host: str
    port: int
    token: str
    """The cluster's Enterprise Gateway token: only the gateway sends it."""
    kernel_username: str
    kernels: set[str] = field(default_factory=set)

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def owns(self, kernel_id: str) -> bool:
        return kernel_id in self.kernels


class KernelRoutes:
    """The attached Workspaces' routes, in memory: an attachment lives no longer than the
    gateway process, as a cluster does today (clusters are not adopted after a restart)."""

    def __init__(self) -> None:
        self._attached: dict[str, Attachment] = {}

    def lookup(self, editor_id: str, secret: str) -> Attachment | None:
        """The attachment of ``editor_id`` if ``secret`` is its engine secret, else None."""
        attachment = self._attached.get(editor_id)
        if attachment is None or not hmac.compare_digest(attachment.secret, secret):
            return None
        return attachment

    def attached(self, editor_id: str) -> Attachment | None:
        return self._attached.get(editor_id)

    async def attach(
        self, editor: Editor, cluster_id: str, endpoint: str, token: str, user: str
    ) -> None:
        """Open the route of ``editor`` to the cluster whose gateway is at ``endpoint`` and
        switch the Workspace's server to it."""
        host, _, port = endpoint.rpartition(":")
        # A secret of this attachment alone, handed to the Workspace's server in the switch
        # call (token-authenticated): it never sits in the container's environment or files,
        # where a kernel could read it (the server itself is not dumpable), and it dies with
        # the attachment.
        secret = secrets.token_urlsafe(32)
        self._attached[editor.id] = Attachment(
            editor.id, cluster_id, secret, host, int(port), token, user
        )
        await self._tell_workspace(
            editor, {"cluster_id": cluster_id, "kernel_username": user, "engine_token": secret}
        )

    async def detach(
        self, editor: Editor | None, editor_id: str, *, cluster_gone: bool = False
    ) -> None:
        """Switch the Workspace back to its local kernels, end its kernels on the cluster, and
        close its route. When the cluster is gone its kernels went with it: the route closes
        first, so the Workspace's own shutdown calls are refused at once, not left to time out.
        """
        if cluster_gone:
            self._attached.pop(editor_id, None)
        if editor is not None:
            # The Workspace first shuts down its kernels itself (through the route, so that
            # its sessions end cleanly), then returns to local kernels.
            await self._tell_workspace(editor, {"cluster_id": None})
        attachment = self._attached.pop(editor_id, None)
        if attachment is not None:
            for kernel_id in sorted(attachment.kernels):
                await self._delete_kernel(attachment, kernel_id)

    def editors_on(self, cluster_id: str) -> list[str]:
        return [a.editor_id for a in self._attached.values() if a.cluster_id == cluster_id]

    # --- the two kernel calls the route answers itself (both small JSON) ---------------------

    async def start_kernel(self, attachment: Attachment, body: bytes) -> tuple[int, bytes]:
        """``POST /api/kernels`` with the kernel user set; the new kernel becomes this
        Workspace's."""
        try:
            model = json.loads(body or b"{}")
        except ValueError:
            return 400, _message("The kernel request is not JSON.")
        if not isinstance(model, dict):
            return 400, _message("The kernel request is not a JSON object.")
        env = model.get("env")
        env = dict(env) if isinstance(env, dict) else {}
        env["KERNEL_USERNAME"] = attachment.kernel_username
        # The Workspace's own paths mean nothing on the cluster.
        env.pop("KERNEL_WORKING_DIR", None)
        model["env"] = env
        code, answer = await self._call(attachment, "POST", "/api/kernels", json.dumps(model))
        if code == 201:
            try:
                attachment.kernels.add(str(json.loads(answer)["id"]))
            except (ValueError, KeyError, TypeError):
                return 502, _message("The cluster's kernel gateway answered no kernel id.")
        return code, answer

    async def list_kernels(self, attachment: Attachment) -> tuple[int, bytes]:
        """``GET /api/kernels``: this Workspace's kernels only, each asked for by id.

        Enterprise Gateway lists no kernels unless ``list_kernels`` is on (it is off on the
        cluster image, as by default); the route knows this Workspace's kernels anyway, and
        a kernel that is gone answers 404 and leaves the list."""
        ids = sorted(attachment.kernels)
        answers = await asyncio.gather(
            *(self._call(attachment, "GET", f"/api/kernels/{k}", None) for k in ids)
        )
        models = []
        for kernel_id, (code, answer) in zip(ids, answers, strict=True):
            if code == 404:
                attachment.kernels.discard(kernel_id)
            elif code == 200:
                try:
                    models.append(json.loads(answer))
                except ValueError:
                    return 502, _message("The cluster's kernel gateway answered no kernel model.")
            else:
                return code, answer
        return 200, json.dumps(models).encode()

    async def _delete_kernel(self, attachment: Attachment, kernel_id: str) -> None:
        code, _ = await self._call(attachment, "DELETE", f"/api/kernels/{kernel_id}", None)
        if code not in (204, 404):
            log.warning(
                "cluster %s: ending kernel %s of %s: HTTP %s",
                attachment.cluster_id, kernel_id, attachment.editor_id, code,
            )  # fmt: skip

    async def _call(
        self, attachment: Attachment, method: str, path: str, body: str | None
    ) -> tuple[int, bytes]:
        request = HTTPRequest(
            attachment.base + path,
            method=method,
            body=body,
            headers={
                "Authorization": f"token {attachment.token}",
                "Content-Type": "application/json",
            },
            request_timeout=_TIMEOUT,
            allow_nonstandard_methods=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            body_bytes = e.response.body if e.response is not None else b""
            return e.code, body_bytes or _message(str(e))
        except OSError as e:
            log.warning("cluster %s: kernel gateway unreachable: %s", attachment.cluster_id, e)
            return 502, _message("The cluster's kernel gateway does not answer.")
        return response.code, response.body

    async def _tell_workspace(self, editor: Editor, body: dict[str, Any]) -> None:
        """Tell the Workspace's server where its kernels run now (with its JupyterLab token,
        which only the gateway holds). A Workspace that does not answer is left as it is: a
        detached one is refused by the route anyway."""
        endpoint = editor.upstream()
        if endpoint is None:
            return
        url = f"http://{endpoint.netloc}{workspace_base_url(editor.id)}emustudio/engine"
        request = HTTPRequest(
            url,
            method="POST",
            body=json.dumps(body),
            headers={"Authorization": f"token {editor.token}", "Content-Type": "application/json"},
            request_timeout=60.0,
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError) as e:
            log.warning("workspace %s: switching its kernels failed: %s", editor.id, e)


def _message(text: str) -> bytes:
    return json.dumps({"message": text, "reason": text}).encode()
