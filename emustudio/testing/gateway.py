"""A gateway in a child process, started the way a user starts it (``emustudio up``).

A child process keeps the gateway's event loop, threads and signal handling its own, and lets a
test kill and restart it as a user would.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker

from emustudio.testing.clients import boto3_client

ROOT_KEY = "test"
ROOT_SECRET = "test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    """One ``emustudio up`` on a free port with its own data directory and instance id."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        instance_id: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="emustudio-")
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.instance_id = instance_id or "pytest" + secrets.token_hex(4)
        self.port = port or free_port()
        self.region = "us-east-1"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "gateway.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://localhost:{self.port}"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMUSTUDIO_")}
        env.update(
            EMUSTUDIO_DATA_DIR=str(self.data_dir),
            EMUSTUDIO_PORT=str(self.port),
            EMUSTUDIO_INSTANCE_ID=self.instance_id,
            EMUSTUDIO_REGION=self.region,
            EMUSTUDIO_ACCESS_KEY_ID=ROOT_KEY,
            EMUSTUDIO_SECRET_ACCESS_KEY=ROOT_SECRET,
            # Test sessions share the Docker host with each other and with a running
            # `emustudio up`: a subnet whose CIDR is taken goes elsewhere instead of failing.
            EMUSTUDIO_NETWORK_REMAP="true",
            # `emustudio up` sets the demo up by default; a test gateway starts empty, as a
            # new account does (env={"EMUSTUDIO_DEMO": "true"} gives it the demo).
            EMUSTUDIO_DEMO="false",
            # No warm pool unless a test asks for one: its containers would load shared machines.
            EMUSTUDIO_WORKSPACE_POOL_SIZE="0",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emustudio.cli", "up"],
            env=self.environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emustudio exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/_emustudio/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"emustudio did not answer within {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> GatewayProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client of this gateway, signed as root unless keys are given in ``kwargs``;
        ``"emr-studio"`` (the Workspace operations, emustudio's supplemental model) works too."""
        return boto3_client(
            service,
            self.endpoint_url,
            region_name=kwargs.pop("region_name", self.region),
            aws_access_key_id=kwargs.pop("aws_access_key_id", ROOT_KEY),
            aws_secret_access_key=kwargs.pop("aws_secret_access_key", ROOT_SECRET),
            **kwargs,
        )

    def cli_env(self) -> dict[str, str]:
        """Environment for the AWS CLI as root against this gateway."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ROOT_KEY,
            AWS_SECRET_ACCESS_KEY=ROOT_SECRET,
            AWS_DEFAULT_REGION=self.region,
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_PAGER="",
        )
        return env

    def purge_docker(self) -> None:
        """Remove every Docker container and network labelled with this instance id, and the
        gateway's firewall chain (left behind when it was killed)."""
        _purge_firewall(self.instance_id)
        client = docker.from_env()
        label = {"label": [f"emustudio.instance={self.instance_id}"]}
        try:
            # Containers first: a network with Workspaces attached cannot go.
            for container in client.containers.list(all=True, filters=label):
                container.remove(force=True)
            for network in client.networks.list(filters=label):
                network.remove()
        finally:
            client.close()

    def close(self) -> None:
        self.stop()
        self.purge_docker()
        if self._tmp is not None:
            self._tmp.cleanup()


def _purge_firewall(instance_id: str) -> None:
    # The chain and jump of runtime/firewall.py (its name: a hash of the instance id).
    chain = "EMUSTUDIO-" + hashlib.sha256(instance_id.encode()).hexdigest()[:12]
    jump = ["DOCKER-USER", "-m", "comment", "--comment", f"emustudio:{instance_id}", "-j", chain]
    try:
        while subprocess.run(["iptables", "-w", "-D", *jump], capture_output=True).returncode == 0:
            pass
        subprocess.run(["iptables", "-w", "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-X", chain], capture_output=True)
    except OSError:  # no iptables here: nothing was installed either
        pass


def aws_cli(
    gateway: GatewayProcess, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the AWS CLI (from PyPI, in this venv) against the gateway as root, JSON output
    (``env``: more of its environment, such as its checksum settings)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            *args,
            "--output",
            "json",
            "--endpoint-url",
            gateway.endpoint_url,
        ],
        env={**gateway.cli_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def az_cli(gateway: GatewayProcess, *args: str) -> str:
    """``emustudio az ARGS`` (fail or restore an Availability Zone) against the gateway; its
    output."""
    env = {
        **os.environ,
        "EMUSTUDIO_PORT": str(gateway.port),
        "EMUSTUDIO_DATA_DIR": str(gateway.data_dir),
    }
    out = subprocess.run(
        [sys.executable, "-m", "emustudio.cli", "az", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout
