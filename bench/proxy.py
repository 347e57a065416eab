"""The Workspace proxy against direct access to the same jupyter_server, on loopback.

    python bench/proxy.py [--rounds 5] [--requests 600] [--ws-rounds 160] [--gate real|static]
    python bench/proxy.py --profile 2000 [--gate real|static] [--loop asyncio|uvloop]
    python bench/proxy.py --compare-with DIR | --compare-loops [--rounds 6] [--requests 1000]

Starts two jupyter_servers (one stock, one with TCP_NODELAY on its WebSocket streams, as the
Workspace image's jupyter_ext sets it) and, in a process of its own, the proxy behind:

- ``--gate real`` (the default): the gateway itself (`EmuStudio`: its store, IAM, sessions,
  the Studio gate, its access log at INFO as ``emustudio up`` logs), without Docker: the two
  Workspaces are rows whose endpoints are the two servers. An IAM user made through the API
  is allowed ``OpenEditorInConsole``; its signed-in session's cookie and the Studio's host go
  with every request, so each request pays what a browser's does;
- ``--gate static``: a gate that admits everything at no cost (the proxy alone);
- ``--gate relay``: no proxy at all, the floor under any proxy on asyncio's loop: each
  connection is relayed byte for byte to the Workspace's server (the client sends its token),
  HTTP only;

then measures:

- HTTP: ``GET /api/status`` over keep-alive connections, sequentially and with 10 concurrent
  connections: latency p50/p99, requests/s, and the proxy process's CPU per request;
- WebSocket: kernel ``execute_request("1+1")`` round trips on one channels socket: time to
  ``execute_reply`` and to iopub ``status: idle`` (a fifth as many against the stock server,
  whose every round trip waits ~40 ms), and the proxy's CPU per round trip.

Rounds alternate direct and proxied (the order flips every round); every figure is a median of
per-round figures, and each ratio is proxied / direct from the same run. It also reports how
much of the machine other processes used meanwhile: the figures are only as good as the machine
was quiet. Loops are bounded; traffic stays on 127.0.0.1; about 80 s.

``--profile N`` measures instead what does not depend on the machine's load: the proxy process
runs ``N`` sequential proxied requests (then ``N`` answered 409 for a Starting Workspace, with
the real gate) under cProfile, and the bench prints Python function calls per request, event
loop turns per request (``_run_once``; not countable under uvloop, whose loop is not Python),
socket calls per request, and the functions that cost most. ``--compare-with DIR`` runs the
HTTP rounds through two proxy processes, alternating: one of this checkout and one importing
``emustudio`` from ``DIR`` (another commit's tree), for CPU ratios taken on the same machine at
the same time; ``--compare-loops`` does the same for asyncio's loop and uvloop's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import tornado
from tornado import httpclient, httpserver, httputil, web, websocket
from tornado.netutil import bind_sockets

from emustudio.proxy import Upstream, WorkspaceProxy

EDITOR = "e-" + "B" * 25
EDITOR_STOCK = "e-" + "C" * 25
EDITOR_STARTING = "e-" + "D" * 25  # real gate only: a Workspace still starting (409)
PROFILE_ENV = "EMUSTUDIO_BENCH_PROFILE"  # where the proxy process writes its profile
NODELAY_LAUNCHER = """
import sys
from tornado import websocket
_detach = websocket.WebSocketHandler._detach_stream
def _detach_nodelay(self):
    stream = _detach(self)
    stream.set_nodelay(True)
    return stream
websocket.WebSocketHandler._detach_stream = _detach_nodelay
from jupyter_server.serverapp import main
sys.exit(main())
"""


# --- the proxy process ------------------------------------------------------------------------


class StaticGate:
    def __init__(self, upstreams: dict[str, Upstream]) -> None:
        self.upstreams = upstreams

    async def open(
        self, handler: web.RequestHandler, studio_id: str | None, editor_id: str
    ) -> Upstream:
        return self.upstreams[editor_id]

    def remembered(
        self, request: httputil.HTTPServerRequest, studio_id: str | None, editor_id: str
    ) -> Upstream | None:
        # The proxy's fast path, as behind the real gate once it has decided.
        return self.upstreams[editor_id]

    def touch(self, editor_id: str) -> None:
        pass


def run_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """The proxy process's loop: asyncio's, as the gateway's, or uvloop's to compare."""
    factory = asyncio.new_event_loop
    if event_loop == "uvloop":
        import uvloop  # not a dependency: pip install uvloop to compare

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def profile_on_signals(path: str) -> None:
    """In the proxy process: SIGUSR1 starts cProfile, SIGUSR2 stops it and writes ``path``."""
    import cProfile
    import signal

    loop = asyncio.get_running_loop()
    profiler = cProfile.Profile()
    loop.add_signal_handler(signal.SIGUSR1, profiler.enable)

    def stop() -> None:
        profiler.disable()
        profiler.dump_stats(path)
        profiler.clear()  # the next window starts at 0

    loop.add_signal_handler(signal.SIGUSR2, stop)


def serve_gateway(upstreams_json: str, event_loop: str) -> None:
    """The real gateway's app and gate, with a signed-in session; prints how to reach it."""
    import boto3
    from sqlmodel import Session, select
    from tornado.web import create_signed_value

    from emustudio import ids
    from emustudio.auth import SESSION_COOKIE
    from emustudio.config import Settings
    from emustudio.server import EmuStudio
    from emustudio.store.iam_tables import IamUser
    from emustudio.store.tables import Editor

    # As `emustudio up` logs (cli.py).
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    upstreams = {k: Upstream(**v) for k, v in json.loads(upstreams_json).items()}

    async def serve() -> None:
        port = free_port()
        settings = Settings(
            data_dir=Path(tempfile.mkdtemp(prefix="emustudio-bench-")),
            port=port,
            cookie_secret=secrets.token_urlsafe(32),
        )
        app = EmuStudio(settings)
        for step in (app.open_store, app.load_iam, app.load_sts, app.listen):
            await step()

        def make_user() -> None:
            iam = boto3.client(
                "iam",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name=settings.region,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
            )
            iam.create_user(UserName="bench")
            statement = {
                "Effect": "Allow",
                "Action": "elasticmapreduce:OpenEditorInConsole",
                "Resource": "*",
            }
            document = {"Version": "2012-10-17", "Statement": [statement]}
            iam.put_user_policy(
                UserName="bench", PolicyName="open", PolicyDocument=json.dumps(document)
            )

        await asyncio.to_thread(make_user)
        studio = ids.studio_id()

        def rows(session: Session) -> IamUser:
            now = time.time()
            for editor, upstream in upstreams.items():
                session.add(
                    Editor(
                        id=editor,
                        region=settings.region,
                        studio_id=studio,
                        name=editor,
                        status="Ready",
                        s3_location="s3://bench/ws",
                        created_by="bench",
                        token=upstream.token,
                        endpoint=upstream.netloc,
                        created_at=now,
                        last_modified_at=now,
                    )
                )
            session.add(
                Editor(
                    id=EDITOR_STARTING,
                    region=settings.region,
                    studio_id=studio,
                    name="starting",
                    status="Starting",
                    s3_location="s3://bench/ws",
                    created_by="bench",
                    token=secrets.token_hex(24),
                    created_at=now,
                    last_modified_at=now,
                )
            )
            return session.exec(select(IamUser).where(IamUser.name == "bench")).one()

        user = await app.store.tx(rows)
        signed_in = await app.sessions.create(
            app.iam.user_principal(user, ""), studio, form="host", source_ip="127.0.0.1"
        )
        cookie = create_signed_value(
            settings.resolved_cookie_secret(), SESSION_COOKIE, signed_in.id, version=2
        ).decode()
        host = f"{studio.lower()}.{settings.studio_domain}"
        if profile := os.environ.get(PROFILE_ENV):
            profile_on_signals(profile)
        print(json.dumps({"port": port, "host": host, "cookie": cookie}), flush=True)
        await asyncio.Event().wait()

    run_loop(serve(), event_loop)


def serve_proxy(upstreams_json: str, event_loop: str) -> None:
    upstreams = {k: Upstream(**v) for k, v in json.loads(upstreams_json).items()}

    async def serve() -> None:
        proxy = WorkspaceProxy(StaticGate(upstreams), studio_domain="emrstudio.localhost")
        server = httpserver.HTTPServer(web.Application(proxy.rules()))
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        if profile := os.environ.get(PROFILE_ENV):
            profile_on_signals(profile)
        print(json.dumps({"port": sockets[0].getsockname()[1]}), flush=True)
        await asyncio.Event().wait()

    run_loop(serve(), event_loop)


class _Relay(asyncio.Protocol):
    """One side of a byte relay: what it receives, its peer's transport writes."""

    def __init__(self) -> None:
        self.peer: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.pending.append(data)
        else:
            self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()


def serve_relay(upstreams_json: str, event_loop: str) -> None:
    """The floor under any proxy on this loop: bytes relayed, nothing parsed or decided."""
    upstream = Upstream(**json.loads(upstreams_json)[EDITOR])

    async def serve() -> None:
        loop = asyncio.get_running_loop()

        def accepted() -> _Relay:
            browser = _Relay()

            async def connect() -> None:
                _, up = await loop.create_connection(_Relay, upstream.host, upstream.port)
                assert browser.transport is not None and up.transport is not None
                up.peer, browser.peer = browser.transport, up.transport
                for data in browser.pending:
                    up.transport.write(data)

            tasks.add(loop.create_task(connect()))
            return browser

        tasks: set[asyncio.Task[None]] = set()
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        if profile := os.environ.get(PROFILE_ENV):
            profile_on_signals(profile)
        print(json.dumps({"port": port, "relay": True}), flush=True)
        await asyncio.Event().wait()

    run_loop(serve(), event_loop)


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def process(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(args, text=True, **kwargs)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def jupyter(editor: str, nodelay: bool, workdir: Path) -> Iterator[Upstream]:
    port, token = free_port(), secrets.token_hex(24)
    upstream = Upstream("127.0.0.1", port, token, f"/workspaces/{editor}/")
    root = workdir / editor
    root.mkdir()
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(root / ".config"),
        JUPYTER_DATA_DIR=str(root / ".data"),
        JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    launch = ["-c", NODELAY_LAUNCHER] if nodelay else ["-m", "jupyter_server"]
    args = [
        sys.executable,
        *launch,
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.base_url={upstream.base_url}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.log_level=WARN",
    ]
    with process(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        asyncio.run(wait_ready(upstream, proc))
        yield upstream


async def wait_ready(upstream: Upstream, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("jupyter_server exited")
        try:
            client = await HttpClient.open(upstream.port)
            status = await client.get(f"{upstream.base_url}api/status", auth(upstream))
            client.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("jupyter_server did not start")


def auth(upstream: Upstream) -> dict[str, str]:
    return {"Authorization": f"token {upstream.token}"}


# --- HTTP -------------------------------------------------------------------------------------


class HttpClient:
    """A minimal keep-alive HTTP/1.1 client, so that the client costs little."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader, self.writer, self.port = reader, writer, port

    @classmethod
    async def open(cls, port: int) -> HttpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, port)

    async def get(self, path: str, headers: dict[str, str]) -> int:
        lines = [f"GET {path} HTTP/1.1"]
        if "Host" not in headers:
            lines.append(f"Host: 127.0.0.1:{self.port}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin1")
        status = int(head.split(" ", 2)[1])
        length = None
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("expected a Content-Length")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass
class HttpResult:
    latencies: list[float]
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


async def http_load(
    port: int,
    path: str,
    headers: dict[str, str],
    total: int,
    concurrency: int,
    cpu_of: psutil.Process,
    expect: int = 200,
) -> HttpResult:
    clients = [await HttpClient.open(port) for _ in range(concurrency)]
    for client in clients:  # warm-up: connections, caches, the proxy's upstream pool
        for _ in range(20):
            await client.get(path, headers)
    latencies: list[float] = []

    async def worker(client: HttpClient, count: int) -> None:
        for _ in range(count):
            start = time.perf_counter()
            status = await client.get(path, headers)
            latencies.append(time.perf_counter() - start)
            if status != expect:
                raise RuntimeError(f"status {status}")

    cpu_before = sum(cpu_of.cpu_times()[:2])
    start = time.perf_counter()
    await asyncio.gather(*(worker(c, total // concurrency) for c in clients))
    seconds = time.perf_counter() - start
    cpu = sum(cpu_of.cpu_times()[:2]) - cpu_before
    for client in clients:
        client.close()
    return HttpResult(latencies, seconds, cpu)


# --- WebSocket --------------------------------------------------------------------------------


@dataclass
class WsResult:
    reply: list[float]
    idle: list[float]


async def start_kernel(upstream: Upstream) -> str:
    client = httpclient.AsyncHTTPClient()
    response = await client.fetch(
        f"http://{upstream.netloc}{upstream.base_url}api/kernels",
        method="POST",
        body='{"name": "python3"}',
        headers=auth(upstream),
    )
    kernel_id: str = json.loads(response.body)["id"]
    return kernel_id


async def ws_round_trips(url: str, headers: dict[str, str], count: int) -> WsResult:
    request = httpclient.HTTPRequest(url, headers=headers, connect_timeout=60, request_timeout=60)
    ws = await websocket.websocket_connect(request)
    session = uuid.uuid4().hex
    result = WsResult([], [])
    for i in range(20 + count):
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "bench",
                "session": session,
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": "1+1", "silent": False, "store_history": False},
            "channel": "shell",
            "buffers": [],
        }
        start = time.perf_counter()
        await ws.write_message(json.dumps(message))
        reply = idle = 0.0
        while not (reply and idle):
            raw = await ws.read_message()
            if raw is None:
                raise RuntimeError("kernel socket closed")
            got = json.loads(raw)
            if got["parent_header"].get("msg_id") != msg_id:
                continue
            if got["msg_type"] == "execute_reply":
                reply = time.perf_counter() - start
            elif got["msg_type"] == "status" and got["content"]["execution_state"] == "idle":
                idle = time.perf_counter() - start
        if i >= 20:
            result.reply.append(reply)
            result.idle.append(idle)
    ws.close()
    return result


# --- report -----------------------------------------------------------------------------------


class OtherLoad:
    """How much of the machine's CPU went to processes outside this bench while it ran: the
    machine may be shared, and the figures are only as good as it was quiet."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.start = self._sample()

    def _ours(self) -> float:
        total = 0.0
        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def _sample(self) -> tuple[float, float, float]:
        cpu = psutil.cpu_times()
        busy = sum(cpu) - cpu.idle - getattr(cpu, "iowait", 0.0)
        return time.monotonic(), busy, self._ours()

    def fraction(self) -> float:
        """Share of all CPUs used by others since the last call."""
        now = self._sample()
        (t0, busy0, ours0), (t1, busy1, ours1) = self.start, now
        self.start = now
        others = (busy1 - busy0) - (ours1 - ours0)
        return max(0.0, others) / ((t1 - t0) * (os.cpu_count() or 1))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def med(values: list[float]) -> float:
    return statistics.median(values)


def pair(proxied: float, direct: float, unit: str = "ms", digits: int = 2) -> str:
    return (
        f"{proxied:.{digits}f} / {direct:.{digits}f} {unit}"
        f" ({proxied / direct:.2f}x, {proxied - direct:+.{digits}f})"
    )


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import jupyter_server

    memory = psutil.virtual_memory().total / (1 << 30)
    return (
        f"{os.cpu_count()} CPU ({model}), {memory:.1f} GiB, {platform.platform()},"
        f" Python {platform.python_version()}, tornado {tornado.version},"
        f" jupyter_server {jupyter_server.__version__}"
    )


async def bench(
    args: argparse.Namespace,
    upstreams: dict[str, Upstream],
    proxy: dict[str, Any],
    proxy_proc: psutil.Process,
) -> None:
    lab = upstreams[EDITOR]
    path = f"{lab.base_url}api/status"
    proxy_port = proxy["port"]
    # What a signed-in browser sends on the Studio's host (the real gate); nothing for static.
    signed_in = (
        {"Host": f"{proxy['host']}:{proxy_port}", "Cookie": f"emustudio-session={proxy['cookie']}"}
        if "cookie" in proxy
        else auth(lab)
        if "relay" in proxy
        else {}
    )
    print(
        f"machine: {machine()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())},"
        f" proxy event loop {args.loop}"
    )
    if "cookie" in proxy:
        print("gate: the gateway's own (session, Workspace row, OpenEditorInConsole), signed in\n")
    elif "relay" in proxy:
        print("no proxy: a byte relay, the floor under any proxy on this event loop\n")
    else:
        print("gate: admits everything at no cost (the real gate adds its own work)\n")
    load = OtherLoad()
    rss_before = proxy_proc.memory_info().rss / 2**20

    print(
        f"HTTP GET {path.replace(EDITOR, '<e-id>')}, keep-alive, "
        f"{args.rounds} rounds x {args.requests} requests, medians of rounds"
    )
    print(
        "| concurrency | p50 proxy / direct | p99 proxy / direct | req/s proxy / direct"
        " | proxy CPU per request |"
    )
    print("|---|---|---|---|---|")
    rounds_cpu: list[str] = []
    for concurrency in (1, 10):
        rows: dict[str, list[HttpResult]] = {"proxy": [], "direct": []}
        for r in range(args.rounds):
            order = ("direct", "proxy") if r % 2 == 0 else ("proxy", "direct")
            for target in order:
                if target == "direct":
                    res = await http_load(
                        lab.port, path, auth(lab), args.requests, concurrency, proxy_proc
                    )
                else:
                    res = await http_load(
                        proxy_port, path, signed_in, args.requests, concurrency, proxy_proc
                    )
                rows[target].append(res)
        p, d = rows["proxy"], rows["direct"]
        p50 = med([pct(x.latencies, 0.5) for x in p]), med([pct(x.latencies, 0.5) for x in d])
        p99 = med([pct(x.latencies, 0.99) for x in p]), med([pct(x.latencies, 0.99) for x in d])
        rate = med([x.rate for x in p]), med([x.rate for x in d])
        per_round = [x.cpu / len(x.latencies) * 1000 for x in p]
        cpu = med(per_round)
        print(
            f"| {concurrency} | {pair(*p50)} | {pair(*p99)} | {rate[0]:.0f} / {rate[1]:.0f}"
            f" ({rate[0] / rate[1]:.2f}x) | {cpu:.3f} ms |"
        )
        rounds_cpu.append(f"c={concurrency}: " + ", ".join(f"{x:.3f}" for x in per_round))

    print("proxy CPU per request, round by round (ms): " + "; ".join(rounds_cpu))
    if "relay" in proxy:
        print(f"(other processes used {load.fraction():.0%} of the machine's CPU meanwhile)")
        return
    if "cookie" in proxy:
        # A client polling a Workspace that is still starting: each request is a 409.
        starting = path.replace(EDITOR, EDITOR_STARTING)
        res = await http_load(
            proxy_port, starting, signed_in, args.requests, 10, proxy_proc, expect=409
        )
        print(
            f"409 for a Starting Workspace, 10 connections: p50 {pct(res.latencies, 0.5):.2f} ms,"
            f" p99 {pct(res.latencies, 0.99):.2f} ms, {res.rate:.0f} req/s,"
            f" gateway CPU {res.cpu / len(res.latencies) * 1000:.3f} ms per request"
        )
    print(f"(other processes used {load.fraction():.0%} of the machine's CPU meanwhile)")
    print(
        f'\nWebSocket execute_request("1+1") on one kernel channels socket, '
        f"{args.rounds} rounds, medians of per-round percentiles"
    )
    print(
        "| jupyter_server | round trips | reply p50 proxy / direct | reply p99 proxy / direct"
        " | idle p50 proxy / direct | proxy CPU per round trip |"
    )
    print("|---|---|---|---|---|---|")
    for editor, label, count in (
        (EDITOR, "TCP_NODELAY on its WebSocket (as jupyter_ext sets it)", args.ws_rounds),
        (EDITOR_STOCK, "stock (no TCP_NODELAY)", max(20, args.ws_rounds // 5)),
    ):
        upstream = upstreams[editor]
        kernel = await start_kernel(upstream)
        channels = f"{upstream.base_url}api/kernels/{kernel}/channels"
        direct_url = f"ws://{upstream.netloc}{channels}"
        proxy_url = f"ws://127.0.0.1:{proxy_port}{channels}"
        ws_headers = {"Host": signed_in["Host"], "Cookie": signed_in["Cookie"]} if signed_in else {}
        ws: dict[str, list[WsResult]] = {"proxy": [], "direct": []}
        ws_cpu: list[float] = []
        for r in range(args.rounds):
            order = ("direct", "proxy") if r % 2 == 0 else ("proxy", "direct")
            for target in order:
                if target == "direct":
                    ws[target].append(await ws_round_trips(direct_url, auth(upstream), count))
                else:
                    cpu_before = sum(proxy_proc.cpu_times()[:2])
                    ws[target].append(await ws_round_trips(proxy_url, ws_headers, count))
                    spent = sum(proxy_proc.cpu_times()[:2]) - cpu_before
                    ws_cpu.append(spent / (count + 20) * 1000)
        p_ws, d_ws = ws["proxy"], ws["direct"]
        reply50 = med([pct(x.reply, 0.5) for x in p_ws]), med([pct(x.reply, 0.5) for x in d_ws])
        reply99 = med([pct(x.reply, 0.99) for x in p_ws]), med([pct(x.reply, 0.99) for x in d_ws])
        idle50 = med([pct(x.idle, 0.5) for x in p_ws]), med([pct(x.idle, 0.5) for x in d_ws])
        print(
            f"| {label} | {args.rounds} x {count} | {pair(*reply50)} | {pair(*reply99)}"
            f" | {pair(*idle50)} | {med(ws_cpu):.3f} ms |"
        )
    print(f"(other processes used {load.fraction():.0%} of the machine's CPU meanwhile)")
    rss_after = proxy_proc.memory_info().rss / 2**20
    print(f"proxy process RSS: {rss_before:.0f} MB before the load, {rss_after:.0f} MB after")


async def profile(
    args: argparse.Namespace,
    upstreams: dict[str, Upstream],
    proxy: dict[str, Any],
    proxy_proc: psutil.Process,
    stats_path: Path,
) -> None:
    """Calls, loop turns and socket calls per proxied request, counted by cProfile."""
    import pstats
    import signal

    lab = upstreams[EDITOR]
    path = f"{lab.base_url}api/status"
    signed_in = (
        {
            "Host": f"{proxy['host']}:{proxy['port']}",
            "Cookie": f"emustudio-session={proxy['cookie']}",
        }
        if "cookie" in proxy
        else auth(lab)
        if "relay" in proxy
        else {}
    )
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())},"
        f" gate {args.gate}, proxy event loop {args.loop}"
    )
    windows = [("200 through the proxy", path, 200)]
    if "cookie" in proxy:
        windows.append(("409 for a Starting Workspace", path.replace(EDITOR, EDITOR_STARTING), 409))
    for label, target, expect in windows:
        client = await HttpClient.open(proxy["port"])
        for _ in range(50):  # warm: the gate's decision, the upstream pool
            await client.get(target, signed_in)
        stats_path.unlink(missing_ok=True)
        proxy_proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.2)
        for _ in range(args.profile):
            if (status := await client.get(target, signed_in)) != expect:
                raise RuntimeError(f"expected {expect}, got {status}")
        await asyncio.sleep(0.2)
        proxy_proc.send_signal(signal.SIGUSR2)
        for _ in range(100):
            await asyncio.sleep(0.1)
            if stats_path.exists() and stats_path.stat().st_size:
                break
        await asyncio.sleep(0.2)
        client.close()
        if args.profile_save:
            saved = Path(f"{args.profile_save}-{expect}.prof")
            saved.write_bytes(stats_path.read_bytes())
            print(f"(profile saved as {saved}: python -m pstats {saved})")
        stats = pstats.Stats(str(stats_path))
        table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        n = args.profile
        calls = sum(row[1] for row in table.values())
        turns = sum(row[1] for key, row in table.items() if key[2] == "_run_once")
        sockets = sum(
            row[1]
            for key, row in table.items()
            if key[0] == "~" and any(w in key[2] for w in ("send", "recv", "select", "poll"))
        )
        print(f"\n{label}: {n} sequential requests")
        print(f"Python function calls per request: {calls / n:.0f}")
        print(
            f"event loop turns per request: {turns / n:.1f}" if turns else "event loop turns: n/a"
        )
        print(f"socket and poll calls per request: {sockets / n:.1f}")
        print("| calls/request | own µs/request (profiled) | function |")
        print("|---|---|---|")
        top = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:25]
        for (file, line, name), row in top:
            where = f"{Path(file).name}:{line} {name}" if file != "~" else name
            print(f"| {row[1] / n:.1f} | {row[2] / n * 1e6:.1f} | {where} |")


def signed_in_headers(proxy: dict[str, Any]) -> dict[str, str]:
    """What a signed-in browser sends on the Studio's host (real gate); nothing for static."""
    if "cookie" not in proxy:
        return {}
    return {
        "Host": f"{proxy['host']}:{proxy['port']}",
        "Cookie": f"emustudio-session={proxy['cookie']}",
    }


async def compare(
    args: argparse.Namespace,
    upstreams: dict[str, Upstream],
    proxies: dict[str, tuple[dict[str, Any], psutil.Process]],
) -> None:
    """The same HTTP rounds through two proxy processes (two event loops, or this checkout and
    another), alternating, so that both see the same machine: p50, requests/s and CPU per
    request of each, and the ratio of their CPU (the second / the first)."""
    lab = upstreams[EDITOR]
    path = f"{lab.base_url}api/status"
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, gate {args.gate}")
    load = OtherLoad()
    first, second = proxies
    print("| request | proxy | p50 | req/s | proxy CPU per request (rounds) |")
    print("|---|---|---|---|---|")
    windows = [("200, c=1", path, 1, 200), ("200, c=10", path, 10, 200)]
    if args.gate == "real":
        windows.append(("409, c=10", path.replace(EDITOR, EDITOR_STARTING), 10, 409))
    for label, target, concurrency, expect in windows:
        rows: dict[str, list[HttpResult]] = {name: [] for name in proxies}
        for r in range(args.rounds):
            for name in (first, second) if r % 2 == 0 else (second, first):
                proxy, proc = proxies[name]
                headers = signed_in_headers(proxy)
                rows[name].append(
                    await http_load(
                        proxy["port"], target, headers, args.requests, concurrency, proc, expect
                    )
                )
        cpu = {}
        for name, results in rows.items():
            per_round = [x.cpu / len(x.latencies) * 1000 for x in results]
            cpu[name] = med(per_round)
            print(
                f"| {label} | {name} | {med([pct(x.latencies, 0.5) for x in results]):.2f} ms"
                f" | {med([x.rate for x in results]):.0f} | {cpu[name]:.3f} ms"
                f" ({', '.join(f'{x:.2f}' for x in per_round)}) |"
            )
        print(f"| {label} | CPU {second} / {first} | | | {cpu[second] / cpu[first]:.2f}x |")
    print(f"(other processes used {load.fraction():.0%} of the machine's CPU meanwhile)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--ws-rounds", type=int, default=160)
    parser.add_argument("--gate", choices=("real", "static", "relay"), default="real")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="asyncio",
        help="the proxy process's event loop (the gateway's is asyncio's; uvloop if installed)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="count calls over N requests instead"
    )
    parser.add_argument(
        "--compare-loops",
        action="store_true",
        help="the HTTP rounds through a uvloop and an asyncio proxy process, alternating",
    )
    parser.add_argument(
        "--compare-with",
        metavar="CHECKOUT",
        help="the HTTP rounds through a proxy process of another checkout's emustudio (e.g."
        " `git archive <commit> | tar -x -C DIR`) and one of this, alternating",
    )
    parser.add_argument("--profile-save", metavar="PREFIX", help="keep the profiles there")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve = {"real": serve_gateway, "static": serve_proxy, "relay": serve_relay}[args.gate]
        serve(args.serve, args.loop)
        return
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        upstreams = {
            EDITOR: stack.enter_context(jupyter(EDITOR, True, workdir)),
            EDITOR_STOCK: stack.enter_context(jupyter(EDITOR_STOCK, False, workdir)),
        }
        spec = json.dumps({k: vars(v) for k, v in upstreams.items()})
        stats_path = workdir / "proxy.prof"
        env = {**os.environ, PROFILE_ENV: str(stats_path)} if args.profile else None
        proxies: dict[str, tuple[dict[str, Any], psutil.Process]] = {}
        # name -> (event loop, checkout whose emustudio the proxy process imports)
        runs = {args.loop: (args.loop, None)}
        if args.compare_loops:
            runs = {"uvloop": ("uvloop", None), "asyncio": ("asyncio", None)}
        elif args.compare_with:
            runs = {"other": (args.loop, args.compare_with), "this": (args.loop, None)}
        for name, (loop, checkout) in runs.items():
            command = [sys.executable, __file__, "--gate", args.gate, "--loop", loop]
            proc_env = dict(env or os.environ)
            if checkout is not None:
                proc_env["PYTHONPATH"] = str(Path(checkout).resolve())
            proc = stack.enter_context(
                process(
                    [*command, "--serve", spec],
                    stdout=subprocess.PIPE,
                    stderr=stack.enter_context(open(workdir / f"gateway-{name}.log", "w")),
                    env=proc_env,
                )
            )
            assert proc.stdout is not None
            proxies[name] = json.loads(proc.stdout.readline()), psutil.Process(proc.pid)
        if len(proxies) == 2:
            asyncio.run(compare(args, upstreams, proxies))
        elif args.profile:
            proxy, proxy_proc = proxies[args.loop]
            asyncio.run(profile(args, upstreams, proxy, proxy_proc, stats_path))
        else:
            proxy, proxy_proc = proxies[args.loop]
            asyncio.run(bench(args, upstreams, proxy, proxy_proc))
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
