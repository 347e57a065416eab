"""The kernel route (``/engine/<e-id>/``) against a stand-in Enterprise Gateway: who gets in,
what is answered, and what a detach leaves behind. The real cluster and browser are in
tests/web/test_browser_cluster.py; this one runs in a second and says which rule broke."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tornado import httpclient, httpserver, web, websocket
from tornado.netutil import bind_sockets

from emustudio.auth.engine_gate import KernelRouteGate
from emustudio.proxy.engine import EngineProxy
from emustudio.services.emr.kernel_route import KernelRoutes
from emustudio.store import Store
from emustudio.store.tables import Editor

JEG_TOKEN = "cluster-token-the-workspace-never-sees"
EDITOR = "e-" + "K" * 25
OTHER = "e-" + "L" * 25


class FakeGateway:
    """Enterprise Gateway's kernel API, enough of it: token-checked, kernels in a dict."""

    def __init__(self) -> None:
        self.kernels: dict[str, dict[str, Any]] = {}
        self.seen_auth: list[str] = []


def _checked(handler: web.RequestHandler, fake: FakeGateway) -> None:
    auth = handler.request.headers.get("Authorization", "")
    fake.seen_auth.append(auth)
    if auth != f"token {JEG_TOKEN}":
        raise web.HTTPError(401)


class Kernels(web.RequestHandler):
    def initialize(self, fake: FakeGateway) -> None:
        self.fake = fake

    def get(self) -> None:
        # Enterprise Gateway's default (and the cluster image's): no kernel listing.
        raise web.HTTPError(403, "Forbidden")

    def post(self) -> None:
        _checked(self, self.fake)
        model = json.loads(self.request.body)
        kernel_id = str(uuid.uuid4())
        self.fake.kernels[kernel_id] = model
        self.set_status(201)
        self.finish({"id": kernel_id, "name": model.get("name")})


class Kernel(web.RequestHandler):
    def initialize(self, fake: FakeGateway) -> None:
        self.fake = fake

    def get(self, kernel_id: str) -> None:
        _checked(self, self.fake)
        if kernel_id not in self.fake.kernels:
            raise web.HTTPError(404)
        self.finish({"id": kernel_id})

    def delete(self, kernel_id: str) -> None:
        _checked(self, self.fake)
        self.fake.kernels.pop(kernel_id, None)
        self.set_status(204)


class Specs(web.RequestHandler):
    def initialize(self, fake: FakeGateway) -> None:
        self.fake = fake

    def get(self) -> None:
        _checked(self, self.fake)
        self.finish({"default": "python3", "kernelspecs": {"pysparkkernel": {}, "python3": {}}})


class Channels(websocket.WebSocketHandler):
    def initialize(self, fake: FakeGateway) -> None:
        self.fake = fake

    def prepare(self) -> None:
        _checked(self, self.fake)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


Route = tuple[str, KernelRoutes, FakeGateway, dict[str, str]]


@pytest.fixture
async def route(tmp_path: Path) -> AsyncIterator[Route]:
    fake = FakeGateway()
    kw = {"fake": fake}
    upstream_app = web.Application(
        [
            (r"/api/kernels", Kernels, kw),
            (r"/api/kernels/([^/]+)", Kernel, kw),
            (r"/api/kernels/([^/]+)/channels", Channels, kw),
            (r"/api/kernelspecs", Specs, kw),
        ]
    )
    up_sockets = bind_sockets(0, "127.0.0.1")
    upstream = httpserver.HTTPServer(upstream_app)
    upstream.add_sockets(up_sockets)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_all()
    routes = KernelRoutes(store)
    proxy = EngineProxy(KernelRouteGate(routes))
    sockets = bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application(proxy.rules()))
    server.add_sockets(sockets)
    handed = {}  # the engine secrets the attach handed the two Workspaces' servers
    for editor_id in (EDITOR, OTHER):
        handed[editor_id] = await routes.attach(
            editor(editor_id),
            "j-" + "C" * 13,
            f"127.0.0.1:{up_sockets[0].getsockname()[1]}",
            JEG_TOKEN,
            "alice",
        )
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", routes, fake, handed
    server.stop()
    upstream.stop()
    proxy.close()
    store.close()


def editor(editor_id: str) -> Editor:
    return Editor(
        id=editor_id, region="us-east-1", studio_id="es-1", name="w", status="Attached",
        s3_location="s3://b/p", created_by="arn", token=f"token-of-{editor_id}",
        created_at=0.0, last_modified_at=0.0,
    )  # fmt: skip


async def call(
    url: str, secret: str | None, method: str = "GET", body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"token {secret}"} if secret else {}
    request = httpclient.HTTPRequest(
        url, method=method, headers=headers, body=None if body is None else json.dumps(body)
    )
    response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    text = response.body.decode() if response.body else ""
    return response.code, json.loads(text) if text else None


def secrets_of(handed: dict[str, str]) -> tuple[str, str]:
    return handed[EDITOR], handed[OTHER]


async def test_the_workspace_gets_in_with_its_secret_only(route: Any) -> None:
    base, _, fake, handed = route
    own, other_secret = secrets_of(handed)
    assert (await call(f"{base}/engine/{EDITOR}/api/kernelspecs", own))[0] == 200
    assert fake.seen_auth == [f"token {JEG_TOKEN}"]  # the gateway put the cluster's token in
    for secret in (None, "wrong", other_secret, JEG_TOKEN):
        code, answer = await call(f"{base}/engine/{EDITOR}/api/kernelspecs", secret)
        assert code == 403, secret
        assert JEG_TOKEN not in json.dumps(answer)
    # Anything but kernels and their specs is not the route's.
    assert (await call(f"{base}/engine/{EDITOR}/api/contents", own))[0] == 404


async def test_kernels_run_as_the_attaching_user_and_stay_the_workspaces_own(route: Any) -> None:
    base, _, fake, handed = route
    own, other_secret = secrets_of(handed)
    kernels = f"{base}/engine/{EDITOR}/api/kernels"
    code, model = await call(
        kernels, own, "POST",
        {"name": "pysparkkernel", "env": {"KERNEL_USERNAME": "root", "KERNEL_WORKING_DIR": "/h"}},
    )  # fmt: skip
    assert code == 201
    assert fake.kernels[model["id"]]["env"] == {"KERNEL_USERNAME": "alice"}
    # Another Workspace's kernel on the same cluster: not listed, not reachable.
    code, theirs = await call(f"{base}/engine/{OTHER}/api/kernels", other_secret, "POST", {})
    assert code == 201
    assert [k["id"] for k in (await call(kernels, own))[1]] == [model["id"]]
    assert (await call(f"{kernels}/{theirs['id']}", own))[0] == 404
    assert (await call(f"{kernels}/{model['id']}", own))[0] == 200

    # The kernel's WebSocket goes through, with the cluster's token added by the gateway.
    ws_url = f"{base.replace('http', 'ws')}/engine/{EDITOR}/api/kernels/{model['id']}/channels"
    conn = await websocket.websocket_connect(
        httpclient.HTTPRequest(ws_url, headers={"Authorization": f"token {own}"})
    )
    await conn.write_message("execute_request")
    assert await conn.read_message() == "execute_request"
    conn.close()


async def test_a_detach_ends_the_workspaces_kernels_and_closes_its_route(route: Any) -> None:
    base, routes, fake, handed = route
    own, other_secret = secrets_of(handed)
    kernels = f"{base}/engine/{EDITOR}/api/kernels"
    mine = (await call(kernels, own, "POST", {"name": "python3"}))[1]["id"]
    theirs = (await call(f"{base}/engine/{OTHER}/api/kernels", other_secret, "POST", {}))[1]["id"]

    await routes.detach(None, EDITOR)
    assert set(fake.kernels) == {theirs}  # only the other Workspace's kernel is left
    assert mine not in fake.kernels
    code, answer = await call(kernels, own)
    assert code == 409
    assert "not attached" in answer["message"]

    # Attached again: a new secret; the old one, which a kernel might have kept, opens nothing.
    other = routes.attached(OTHER)
    assert other is not None
    endpoint = f"{other.host}:{other.port}"
    again = await routes.attach(editor(EDITOR), "j-" + "C" * 13, endpoint, JEG_TOKEN, "alice")
    assert again != own
    assert (await call(kernels, own))[0] == 403
    assert (await call(kernels, again))[0] == 200
    await asyncio.sleep(0)


async def test_a_restarted_gateway_reopens_the_route_from_the_store(route: Any) -> None:
    """What a new gateway process finds: the store's attachment (the secret's hash only), and
    with it the Workspace's own secret and kernels work again; a detach forgets it."""
    base, routes, fake, handed = route
    own, _ = secrets_of(handed)
    kernel = (await call(f"{base}/engine/{EDITOR}/api/kernels", own, "POST", {}))[1]["id"]
    rows = {r.editor_id: r for r in await routes.stored()}
    assert set(rows) == {EDITOR, OTHER}
    assert rows[EDITOR].kernels == [kernel] and rows[EDITOR].kernel_username == "alice"
    assert own not in json.dumps([r.model_dump() for r in rows.values()])  # its hash only

    restarted = KernelRoutes(routes.store)
    proxy = EngineProxy(KernelRouteGate(restarted))
    sockets = bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application(proxy.rules()))
    server.add_sockets(sockets)
    again = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/engine/{EDITOR}/api/kernels"
    try:
        assert (await call(again, own))[0] == 409  # not re-opened yet: refused
        up = routes.attached(EDITOR)
        assert up is not None
        restarted.reopen(rows[EDITOR], f"{up.host}:{up.port}", JEG_TOKEN)
        code, listed = await call(again, own)
        assert code == 200 and [k["id"] for k in listed] == [kernel]
        assert (await call(f"{again}/{kernel}", own))[0] == 200
        assert (await call(again, "wrong"))[0] == 403
        await restarted.detach(None, EDITOR)
        assert kernel not in fake.kernels
        assert [r.editor_id for r in await restarted.stored()] == [OTHER]
    finally:
        server.stop()
        proxy.close()
