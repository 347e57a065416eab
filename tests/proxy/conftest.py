"""Fixtures for the proxy: a real jupyter_server, an echo upstream, and the proxy itself
running on its own event loop thread behind a fake gate."""

from __future__ import annotations

import asyncio
import collections
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tornado import httpserver, web
from tornado.httputil import HTTPServerRequest
from tornado.netutil import bind_sockets

from emustudio.proxy import Upstream, WorkspaceProxy

T = TypeVar("T")

DOMAIN = "emrstudio.localhost"
STUDIO = "es-" + "S" * 25
LAB = "e-" + "A" * 25  # the real jupyter_server
ECHO = "e-" + "E" * 25  # the echo upstream
REFUSED = "e-" + "R" * 25  # the gate says 403
REDIRECTED = "e-" + "D" * 25  # the gate redirects to sign-in
DOWN = "e-" + "X" * 25  # nothing listens at its upstream
ROOT = "e-" + "B" * 25  # the echo upstream with base_url "/"
RAW = "e-" + "W" * 25  # a scripted socket server: answers that Tornado would never write

SCRIPTS = {
    "/raw/close-delimited": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
    "/raw/http10": b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!",
    "/raw/interim": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
    ),
    "/raw/chunked-extras": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
    ),
    "/raw/garbage": b"SSH-2.0-OpenSSH\r\n\r\n",
    "/raw/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    "/raw/hangup": b"",
}


class FakeGate:
    """Admits what it has an upstream for; refuses and redirects what it is told to."""

    def __init__(self) -> None:
        self.upstreams: dict[str, Upstream] = {}
        self.refused: dict[str, Upstream] = {}
        self.redirected: set[str] = set()
        self.opened: list[tuple[str | None, str]] = []
        self.touches: collections.Counter[str] = collections.Counter()
        self.handlers: list[web.RequestHandler] = []

    async def open(
        self, handler: web.RequestHandler, studio_id: str | None, editor_id: str
    ) -> Upstream:
        self.opened.append((studio_id, editor_id))
        self.handlers.append(handler)
        if editor_id in self.refused:
            raise web.HTTPError(403)
        if editor_id in self.redirected:
            handler.redirect("/signin")
            raise web.Finish()
        if editor_id not in self.upstreams:
            raise web.HTTPError(404)
        return self.upstreams[editor_id]

    def touch(self, editor_id: str) -> None:
        self.touches[editor_id] += 1


class RememberingGate(FakeGate):
    """Also remembers (`emustudio.proxy.RememberingGate`): a Workspace it admitted once takes
    the proxy's fast path after, and `fast` counts those requests per Workspace."""

    def __init__(self) -> None:
        super().__init__()
        self.admitted: set[str] = set()
        self.fast: collections.Counter[str] = collections.Counter()

    async def open(
        self, handler: web.RequestHandler, studio_id: str | None, editor_id: str
    ) -> Upstream:
        upstream = await super().open(handler, studio_id, editor_id)
        self.admitted.add(editor_id)
        return upstream

    def remembered(
        self, request: HTTPServerRequest, studio_id: str | None, editor_id: str
    ) -> Upstream | None:
        if editor_id not in self.admitted:
            return None
        self.opened.append((studio_id, editor_id))
        self.fast[editor_id] += 1
        return self.upstreams[editor_id]


class ProxyServer:
    """The proxy's Tornado app on a thread of its own, as in the gateway."""

    def __init__(self, gate: FakeGate) -> None:
        self.gate = gate
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=30)

    async def _start(self) -> int:
        self.proxy = WorkspaceProxy(self.gate, studio_domain=DOMAIN, activity=self.gate.touch)
        self.server = httpserver.HTTPServer(web.Application(self.proxy.rules()))
        sockets = bind_sockets(0, "127.0.0.1")
        self.server.add_sockets(sockets)
        port: int = sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()
        self.proxy.close()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    @property
    def studio_host(self) -> str:
        return f"{STUDIO.lower()}.{DOMAIN}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host or self.studio_host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(port: int, path: str, token: str, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"upstream exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path, headers={"Authorization": f"token {token}"})
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("upstream did not become ready")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A real jupyter_server (with JupyterLab and ipykernel) on loopback."""
    base = tmp_path_factory.mktemp("jupyter")
    (base / "root").mkdir()
    token = secrets.token_hex(24)
    port = free_port()
    upstream = Upstream("127.0.0.1", port, token, f"/workspaces/{LAB}/")
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    log = (base / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.base_url={upstream.base_url}",
            f"--ServerApp.root_dir={base / 'root'}",
            "--ServerApp.open_browser=False",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(port, upstream.base_url + "api/status", token, proc)
        yield upstream
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="session")
def echo() -> Iterator[Upstream]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("echo_upstream.py")), "1.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Upstream("127.0.0.1", port, secrets.token_hex(16), f"/workspaces/{ECHO}/")
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def scripted() -> Iterator[Upstream]:
    """Answers each connection's first request from `SCRIPTS`, then closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        break
                    data += piece
                path = data.split(b" ", 2)[1].decode() if data.count(b" ") >= 2 else ""
                conn.sendall(SCRIPTS.get(path, b"HTTP/1.1 404 Not Found\r\n\r\n"))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield Upstream("127.0.0.1", server.getsockname()[1], "t", "/raw/")
    server.close()


@pytest.fixture(scope="session")
def recorder() -> Iterator[socket.socket]:
    """A listening socket nobody should ever connect to."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        yield s


def echo_state(echo: Upstream) -> dict[str, Any]:
    conn = http.client.HTTPConnection(echo.host, echo.port, timeout=10)
    conn.request("GET", "/state")
    state: dict[str, Any] = json.loads(conn.getresponse().read())
    conn.close()
    return state


@pytest.fixture(scope="module", params=["handler", "fast"])
def gate(
    request: pytest.FixtureRequest,
    jupyter: Upstream,
    echo: Upstream,
    scripted: Upstream,
    recorder: socket.socket,
) -> FakeGate:
    """Every proxy test runs twice: behind a gate that decides every request (the handler's
    path), and behind one that remembers (after a first request, the fast path)."""
    gate = RememberingGate() if request.param == "fast" else FakeGate()
    gate.upstreams[LAB] = jupyter
    gate.upstreams[ECHO] = echo
    gate.upstreams[ROOT] = Upstream(echo.host, echo.port, echo.token, "/")
    gate.upstreams[RAW] = scripted
    gate.upstreams[DOWN] = Upstream("127.0.0.1", free_port(), "t", f"/workspaces/{DOWN}/")
    trap = Upstream("127.0.0.1", recorder.getsockname()[1], "t", "/")
    gate.refused[REFUSED] = trap
    gate.redirected.add(REDIRECTED)
    gate.upstreams[REDIRECTED] = trap
    return gate


@pytest.fixture(scope="module")
def proxy(gate: FakeGate) -> Iterator[ProxyServer]:
    server = ProxyServer(gate)
    try:
        yield server
    finally:
        server.close()
