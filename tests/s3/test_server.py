"""The embedded S3 server (rclone) and the S3 client the backup uses, without Docker: keys
generated once and kept private, the port kept, a dead server started again, a server left by a
killed gateway stopped, and S3's answers sorted into "later" and "no"."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emustudio.backup.blocking import Blocking
from emustudio.backup.s3client import (
    Location,
    S3Client,
    S3Endpoint,
    S3Refused,
    S3Unavailable,
)
from emustudio.s3 import EmbeddedS3, find_rclone


def endpoint(server: EmbeddedS3) -> S3Endpoint:
    return S3Endpoint(server.url, server.access_key_id, server.secret_access_key)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedS3]:
    s3 = EmbeddedS3(tmp_path)
    await s3.start()
    try:
        yield s3
    finally:
        await s3.stop()


@pytest.fixture
async def client(server: EmbeddedS3) -> AsyncIterator[S3Client]:
    blocking = Blocking(2)
    c = S3Client(endpoint(server), blocking, create_buckets=True)
    try:
        yield c
    finally:
        c.close()
        blocking.close()


def test_rclone_comes_from_the_wheel() -> None:
    found = find_rclone()
    assert found is not None
    version = subprocess.run([str(found), "version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("rclone v")


async def test_keys_are_made_once_kept_private_and_the_port_is_kept(tmp_path: Path) -> None:
    first = EmbeddedS3(tmp_path)
    await first.start()
    await first.stop()
    state_file = tmp_path / "s3.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    state = json.loads(state_file.read_text())
    assert state["access_key_id"] == first.access_key_id and len(first.access_key_id) == 20
    assert len(first.secret_access_key) == 40
    assert state["pid"] is None  # stopped

    again = EmbeddedS3(tmp_path)
    assert (again.access_key_id, again.secret_access_key, again.port) == (
        first.access_key_id,
        first.secret_access_key,
        first.port,
    )
    await again.start()
    try:
        # The secret is in rclone's environment, not on its command line (ps shows that).
        assert again.process is not None
        cmdline = Path(f"/proc/{again.process.pid}/cmdline").read_bytes()
        assert again.secret_access_key.encode() not in cmdline
        blocking = Blocking(1)
        c = S3Client(endpoint(again), blocking)
        await c.ping()
        wrong = S3Client(
            S3Endpoint(again.url, again.access_key_id, "x" * 40), blocking, create_buckets=True
        )
        with pytest.raises(S3Refused):
            await wrong.ensure_bucket("denied")
        c.close()
        wrong.close()
        blocking.close()
    finally:
        await again.stop()


async def test_a_dead_server_is_started_again(server: EmbeddedS3, client: S3Client) -> None:
    await client.ensure_bucket("alive")
    await client.put("alive", "a/b.txt", b"kept")
    assert server.process is not None
    first = server.process.pid
    os.kill(first, signal.SIGKILL)
    for _ in range(200):
        await asyncio.sleep(0.05)
        if server.process.pid != first and server.process.returncode is None:
            try:
                await client.ping()
                break
            except S3Unavailable:
                continue
    assert server.process.pid != first
    assert server.restarts == 1
    assert await client.get("alive", "a/b.txt") == b"kept"


async def test_a_server_left_by_a_killed_gateway_is_stopped(tmp_path: Path) -> None:
    orphan = EmbeddedS3(tmp_path)
    await orphan.start()
    assert orphan.process is not None
    pid, port = orphan.process.pid, orphan.port
    orphan.stopping = True  # as if its gateway had died: nothing stops it
    assert orphan.watcher is not None
    orphan.watcher.cancel()

    successor = EmbeddedS3(tmp_path)  # finds it by its pid, stops it, takes its port
    await asyncio.wait_for(orphan.process.wait(), 5)
    assert successor.port == port
    await successor.start()
    try:
        assert successor.process is not None and successor.process.pid != pid
    finally:
        await successor.stop()


async def test_answers_are_sorted_into_later_and_no(server: EmbeddedS3, client: S3Client) -> None:
    # A bucket that does not exist: made on the first write, when allowed.
    await client.put("made-on-write", "x/e-1/n.ipynb", b"{}")
    assert await client.get("made-on-write", "x/e-1/n.ipynb") == b"{}"
    blocking = Blocking(1)
    strict = S3Client(endpoint(server), blocking, create_buckets=False)
    with pytest.raises(S3Refused) as refused:
        await strict.put("never-made", "k", b"v")
    assert refused.value.code == "NoSuchBucket"
    assert await strict.list_objects("never-made", "") == []
    strict.close()
    blocking.close()

    # A tree: the object and everything under "<key>/" (a file system holds a file "d" or a
    # folder "d", as a Workspace does; rclone's local backend the same).
    for key in ("p/e-1/d/a", "p/e-1/d/b/c", "p/e-1/dd", "p/e-1/f"):
        await client.put("made-on-write", key, b"1")
    await client.delete_tree("made-on-write", "p/e-1/d")
    await client.delete_tree("made-on-write", "p/e-1/f")
    await client.delete_tree("made-on-write", "p/e-1/nothing")
    assert [o.key for o in await client.list_objects("made-on-write", "p/")] == ["p/e-1/dd"]

    # Nobody there: later.
    await server.stop()
    with pytest.raises(S3Unavailable):
        await client.ping()
    with pytest.raises(S3Unavailable):
        await client.put("made-on-write", "k", b"v")


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://b", "b", "e-1/a/n.ipynb"),
        ("s3://b/", "b", "e-1/a/n.ipynb"),
        ("s3://b/p/q/", "b", "p/q/e-1/a/n.ipynb"),
        ("s3://b/p", "b", "p/e-1/a/n.ipynb"),
    ],
)
def test_locations(uri: str, bucket: str, key: str) -> None:
    location = Location.parse(uri)
    assert location.bucket == bucket
    assert location.key("e-1", "a/n.ipynb") == key
    assert Location.parse(str(location)) == location


def test_a_location_must_be_s3() -> None:
    for bad in ("b/p", "s3://", "http://b/p"):
        with pytest.raises(ValueError):
            Location.parse(bad)
