"""Workspace backup as the project's own tests and benchmarks drive it: the embedded S3
server's keys (``s3.json`` in the data directory) and a ``minio`` client on them, a running
Workspace's JupyterLab reached as the gateway reaches it (its contents API at the container's
address, with the token read from the gateway's store, as only a test may), notebooks to save,
and polling until S3 shows a change.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import docker
from minio import Minio

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status

BUCKET = "studio-bucket"
PREFIX = "workspaces"


def s3_state(gateway: GatewayProcess) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((gateway.data_dir / "s3.json").read_text())
    return state


def minio_of(gateway: GatewayProcess) -> Minio:
    state = s3_state(gateway)
    return Minio(
        state["endpoint_url"].removeprefix("http://"),
        access_key=state["access_key_id"],
        secret_key=state["secret_access_key"],
        secure=False,
        region="us-east-1",
    )


@dataclass
class StudioSetup:
    studio_id: str
    subnet_ids: list[str]
    location: str


def key_of(editor_id: str, path: str) -> str:
    return f"{PREFIX}/{editor_id}/{path}"


def object_bytes(s3: Minio, key: str, bucket: str = BUCKET) -> bytes | None:
    try:
        response = s3.get_object(bucket, key)
    except Exception as exc:
        if getattr(exc, "code", None) in ("NoSuchKey", "NoSuchBucket") or "404" in str(exc):
            return None
        raise
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def keys_under(s3: Minio, prefix: str, bucket: str = BUCKET) -> list[str]:
    try:
        return sorted(
            o.object_name
            for o in s3.list_objects(bucket, prefix=prefix, recursive=True)
            if o.object_name is not None
        )
    except Exception as exc:
        if "NoSuchBucket" in str(exc):
            return []
        raise


def wait_until(check: Any, timeout: float, interval: float = 0.01, what: str = "") -> float:
    """Poll ``check()`` until truthy; the seconds it took."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)


def notebook(text: str, size: int = 0) -> dict[str, Any]:
    """A notebook whose one cell holds ``text`` (padded to about ``size`` bytes)."""
    source = text + ("\n# " + "x" * 78) * (size // 82)
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c1",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class Workspace:
    """One running Workspace's JupyterLab, reached as the gateway reaches it."""

    def __init__(self, gateway: GatewayProcess, editor_id: str) -> None:
        self.gateway = gateway
        self.editor_id = editor_id
        self.refresh()

    def refresh(self) -> None:
        # The store's own file, read as plain SQLite: `testing` stays out of the store's room.
        db = sqlite3.connect(self.gateway.data_dir / "emustudio.db")
        try:
            row = db.execute(
                "SELECT token, endpoint FROM editor WHERE id = ?", (self.editor_id,)
            ).fetchone()
        finally:
            db.close()
        assert row is not None and row[1], (self.editor_id, row)
        self.token, self.endpoint = str(row[0]), str(row[1])

    def url(self, path: str) -> str:
        return f"http://{self.endpoint}/workspaces/{self.editor_id}/{path}"

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url(path),
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def save_notebook(self, path: str, nb: dict[str, Any]) -> Any:
        """What JupyterLab sends when a notebook is saved."""
        return self.request(
            "PUT",
            f"api/contents/{quote(path)}",
            {"type": "notebook", "format": "json", "content": nb},
        )

    def save_file(self, path: str, data: bytes) -> Any:
        return self.request(
            "PUT",
            f"api/contents/{quote(path)}",
            {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()},
        )

    def mkdir(self, path: str) -> Any:
        return self.request("PUT", f"api/contents/{quote(path)}", {"type": "directory"})

    def rename(self, old: str, new: str) -> Any:
        return self.request("PATCH", f"api/contents/{quote(old)}", {"path": new})

    def delete(self, path: str) -> None:
        self.request("DELETE", f"api/contents/{quote(path)}")

    def raw(self, path: str) -> bytes | None:
        """The file's bytes as stored in the container."""
        request = urllib.request.Request(
            self.url(f"files/{quote(path)}"), headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise


def start_workspace(
    gateway: GatewayProcess, studio: StudioSetup, name: str, **kwargs: Any
) -> tuple[Any, str, Workspace]:
    editors = gateway.client("emr-studio")
    editor_id = editors.create_editor(StudioId=studio.studio_id, Name=name, **kwargs)["EditorId"]
    wait_for_status(editors, editor_id, "Ready")
    return editors, editor_id, Workspace(gateway, editor_id)


def restart_workspace(editors: Any, workspace: Workspace) -> dict[str, Any]:
    editors.stop_editor(EditorId=workspace.editor_id)
    wait_for_status(editors, workspace.editor_id, "Idle")
    editors.start_editor(EditorId=workspace.editor_id)
    ready = wait_for_status(editors, workspace.editor_id, "Ready")
    workspace.refresh()
    return ready


def container_of(client: docker.DockerClient, editor_id: str) -> Any:
    """The Workspace's container, by its name (one claimed from the warm pool has the pool's
    labels, not the Workspace's)."""
    found = client.containers.list(filters={"name": f"-{editor_id}$"})
    return found[0] if found else None
