"""The kernel route: an attached Workspace's kernels run on its cluster, through the gateway.

A Workspace's JupyterLab reaches kernels on a cluster with jupyter_server's gateway client,
whose URL is the gateway's route ``/engine/<e-id>/`` (``proxy/engine.py``). What the route may
reach is held here, per Workspace, while it is attached:

* the **engine secret**: the Workspace presents it as ``Authorization: token <secret>``. It is
  random, made at the attach and handed to the Workspace's server in the switch call alone (no
  environment, no file: kernels cannot read it), so a detach makes it worthless; the gateway
  keeps only its SHA-256. The Workspace never learns the cluster's Enterprise Gateway token,
  which the gateway adds itself;
* the cluster's **Enterprise Gateway** (master address, port 18888, its token);
* the **kernel user**: who attached (``KERNEL_USERNAME``), which the route writes into every
  kernel start whatever the Workspace asked, and never ``root``;
* the **kernels** this Workspace started there: the route lists and reaches only those, so two
  Workspaces on one cluster do not see each other's kernels.

A Workspace that is not attached has no entry, and the route refuses it: it keeps its local
kernels (``jupyter_ext``'s engine switch). Attaching and detaching tell the Workspace's server
to switch (``POST <base_url>emustudio/engine``), without a restart. Detaching, or the cluster
ending, shuts the Workspace's kernels down on the cluster before the entry goes.

A Workspace that stops (or is deleted, or whose container dies) loses its route the same way
(:class:`RouteHooks`, a hook of the Workspace manager): its kernels on the cluster end, as AWS
says of a stop ("it terminates any corresponding notebook kernels"), so they hold the cluster
busy no longer, and the route refuses it. It keeps naming its cluster (``attached_cluster_id``)
and its next start attaches it again (``attach.py``).

Each attachment is also in the store (``KernelAttachment``: the secret's hash, the kernel user,
the kernel ids), so that a gateway restart re-opens it (``reattach.py``): the Workspace's server
and its kernels on the cluster never noticed the gateway was gone, and go on where they were.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from emustudio.context import Principal
from emustudio.services.emr.workspaces import workspace_base_url
from emustudio.store import Store
from emustudio.store.cluster_tables import KernelAttachment
from emustudio.store.tables import Editor, Endpoint

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


def secret_hash(secret: str) -> str:
    """What the gateway keeps of an engine secret (32 random bytes: a plain hash is enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Attachment:
    editor_id: str
    cluster_id: str
    secret_sha256: str
    host: str
    port: int
    token: str
    """The cluster's Enterprise Gateway token: only the gateway sends it."""
    kernel_username: str
    kernels: set[str] = field(default_factory=set)

    def row(self) -> KernelAttachment:
        return KernelAttachment(
            editor_id=self.editor_id, cluster_id=self.cluster_id,
            secret_sha256=self.secret_sha256, kernel_username=self.kernel_username,
            kernels=sorted(self.kernels),
        )  # fmt: skip

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def owns(self, kernel_id: str) -> bool:
        return kernel_id in self.kernels


class KernelRoutes:
    """The attached Workspaces' routes: in memory, where the route reads them, and in the
    store, from which a restarted gateway re-opens them (:meth:`reopen`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._attached: dict[str, Attachment] = {}

    def lookup(self, editor_id: str, secret: str) -> Attachment | None:
        """The attachment of ``editor_id`` if ``secret`` is its engine secret, else None."""
        attachment = self._attached.get(editor_id)
        if attachment is None or not hmac.compare_digest(
            attachment.secret_sha256, secret_hash(secret)
        ):
            return None
        return attachment

    def attached(self, editor_id: str) -> Attachment | None:
        return self._attached.get(editor_id)

    async def attach(
        self, editor: Editor, cluster_id: str, endpoint: str, token: str, user: str
    ) -> str:
        """Open the route of ``editor`` to the cluster whose gateway is at ``endpoint`` and
        switch the Workspace's server to it; the engine secret handed over."""
        host, _, port = endpoint.rpartition(":")
        # A secret of this attachment alone, handed to the Workspace's server in the switch
        # call (token-authenticated): it never sits in the container's environment or files,
        # where a kernel could read it (the server itself is not dumpable), and it dies with
        # the attachment. The gateway keeps its hash, in memory and in the store.
        secret = secrets.token_urlsafe(32)
        attachment = Attachment(
            editor.id, cluster_id, secret_hash(secret), host, int(port), token, user
        )
        self._attached[editor.id] = attachment
        await self._save(attachment)
        await self._tell_workspace(
            editor, {"cluster_id": cluster_id, "kernel_username": user, "engine_token": secret}
        )
        return secret

    async def stored(self) -> list[KernelAttachment]:
        """The attachments the store holds (after a restart: what to re-open or close)."""
        return await self.store.tx(lambda session: list(session.exec(select(KernelAttachment))))

    def reopen(self, row: KernelAttachment, endpoint: str, token: str) -> Attachment:
        """Open the route again as the store kept it (a gateway restart): the Workspace's
        server presents the secret it was given, and its kernels are its own again."""
        host, _, port = endpoint.rpartition(":")
        attachment = Attachment(
            row.editor_id, row.cluster_id, row.secret_sha256, host, int(port), token,
            row.kernel_username, set(row.kernels),
        )  # fmt: skip
        self._attached[row.editor_id] = attachment
        return attachment

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
        await self._forget(editor_id)
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
            await self._save(attachment)
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
        gone = [k for k, (code, _) in zip(ids, answers, strict=True) if code == 404]
        if gone:
            attachment.kernels.difference_update(gone)
            await self._save(attachment)
        for code, answer in answers:
            if code == 200:
                try:
                    models.append(json.loads(answer))
                except ValueError:
                    return 502, _message("The cluster's kernel gateway answered no kernel model.")
            elif code != 404:
                return code, answer
        return 200, json.dumps(models).encode()

    async def _save(self, attachment: Attachment) -> None:
        if self._attached.get(attachment.editor_id) is attachment:  # not detached meanwhile
            row = attachment.row()
            await self.store.tx(lambda session: session.merge(row))

    async def _forget(self, editor_id: str) -> None:
        def delete(session: Session) -> None:
            row = session.get(KernelAttachment, editor_id)
            if row is not None:
                session.delete(row)

        await self.store.tx(delete)

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


class RouteHooks:
    """The Workspace manager's hooks for the kernel route (``workspaces.WorkspaceHooks``)."""

    def __init__(self, routes: KernelRoutes) -> None:
        self.routes = routes

    async def before_ready(
        self,
        editor: Editor,
        endpoint: Endpoint,
        note: Callable[[str], None] | None = None,
        put_files: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        """Nothing: a start re-attaches once Ready (``attach.py``)."""

    async def before_stop(self, editor: Editor) -> None:
        """Nothing: the stopping server ends its own remote kernels through the route, which
        is still open; :meth:`after_stop` ends what is left."""

    async def after_stop(self, editor: Editor) -> None:
        """The container is gone: its kernels on the cluster end and its route closes."""
        if self.routes.attached(editor.id) is not None:
            log.info("workspace %s stopped: closing its kernel route", editor.id)
        await self.routes.detach(None, editor.id)

    async def after_delete(self, editor: Editor) -> None:
        """Nothing: ``after_stop`` closed the route."""


def _message(text: str) -> bytes:
    return json.dumps({"message": text, "reason": text}).encode()
