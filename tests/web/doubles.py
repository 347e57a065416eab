"""Stand-ins on the web side: a loopback listener in place of a Workspace's JupyterLab that counts
every connection it gets, and Workspace rows written straight into the gateway's store (a
Workspace that is 'running' at that listener, without Docker)."""

from __future__ import annotations

import secrets
import socket
import threading
import time

from sqlmodel import Session, create_engine

from emustudio.store.tables import Editor
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT


class Upstream:
    """A loopback HTTP server standing in for a Workspace's JupyterLab; counts connections.

    It closes each connection after one answer, unless ``keep_alive``: then the gateway keeps
    its connections and answers remembered requests on its fast path (`emustudio.proxy.fast`).
    """

    def __init__(self, *, keep_alive: bool = False) -> None:
        self.keep_alive = keep_alive
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while True:
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        data += chunk
                except OSError:
                    return
                self.requests.append(data.decode("latin-1"))
                body = b"upstream-ok"
                close = b"" if self.keep_alive else b"Connection: close\r\n"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    + close
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                if not self.keep_alive:
                    return

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class Rows:
    """Writes Workspace rows into the gateway's store directly: a Workspace that is 'running'
    at a loopback address, without Docker (the gate reads the row on each admission)."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.engine = create_engine(f"sqlite:///{gateway.data_dir / 'emustudio.db'}")

    def add(
        self, studio_id: str, *, endpoint: str | None, status: str = "Ready", name: str = "ws"
    ) -> str:
        editor_id = "e-" + "".join(
            secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(25)
        )
        now = time.time()
        with Session(self.engine) as session:
            session.add(
                Editor(
                    id=editor_id,
                    region="us-east-1",
                    studio_id=studio_id,
                    name=name,
                    status=status,
                    s3_location="s3://bucket/ws",
                    subnet_id="subnet-test",
                    availability_zone="us-east-1a",
                    created_by=f"arn:aws:iam::{ACCOUNT}:root",
                    token="upstream-token",
                    endpoint=endpoint,
                    created_at=now,
                    last_modified_at=now,
                )
            )
            session.commit()
        return editor_id

    def close(self) -> None:
        self.engine.dispose()
