"""The backup engine in this process, against a real JupyterLab server (jupyter_server with
emustudio's extension, on loopback), the embedded S3 server and a real store: what is hard to
stage through Docker (S3 down while a Workspace stops, latest-wins under collaboration saves,
the change feed's replay)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from emustudio.backup import restore as restore_module
from emustudio.backup.blocking import Blocking
from emustudio.backup.contents import ContentsClient
from emustudio.backup.engine import BackupEngine
from emustudio.backup.journal import Spool
from emustudio.backup.s3client import S3Client, S3Endpoint
from emustudio.s3 import EmbeddedS3
from emustudio.store import Store
from emustudio.store.backup_tables import BackupPending
from emustudio.store.tables import Editor, Endpoint
from emustudio.testing.gateway import free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jupyter_ext"))

from emustudio_jupyter_ext.events import ChangeFeed  # noqa: E402
from emustudio_jupyter_ext.restore import unpack  # noqa: E402

EDITOR = "e-" + "T" * 25
BASE_URL = f"/workspaces/{EDITOR}/"


@dataclass
class Lab:
    port: int
    token: str
    root: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def put_text(self, path: str, text: str) -> None:
        body = json.dumps({"type": "file", "format": "text", "content": text}).encode()
        request = urllib.request.Request(
            f"http://{self.endpoint}{BASE_URL}api/contents/{path}",
            data=body,
            method="PUT",
            headers={"Authorization": f"token {self.token}"},
        )
        urllib.request.urlopen(request, timeout=30).read()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A real jupyter_server with emustudio_jupyter_ext loaded (from the source tree)."""
    root = tmp_path / "root"
    root.mkdir()
    lab = Lab(free_port(), secrets.token_hex(16), root)
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT / "jupyter_ext"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={lab.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={lab.token}",
            f"--ServerApp.base_url={BASE_URL}",
            f"--ServerApp.root_dir={root}",
            '--ServerApp.jpserver_extensions={"emustudio_jupyter_ext": True}',
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://{lab.endpoint}{BASE_URL}emustudio/ready"
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "lab did not start"
                time.sleep(0.05)
        yield lab
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@dataclass
class Rig:
    engine: BackupEngine
    store: Store
    s3_server: EmbeddedS3
    s3: S3Client
    editor: Editor

    async def object(self, path: str) -> bytes | None:
        try:
            return await self.s3.get("bkt", f"p/{EDITOR}/{path}")
        except Exception:
            return None

    async def until(self, check: Any, timeout: float = 10) -> float:
        started = time.monotonic()
        while not await check():
            assert time.monotonic() - started < timeout, "not in time"
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def pending(self) -> list[BackupPending]:
        return await self.store.tx(lambda s: list(s.exec(select(BackupPending))))

    async def nothing_pending(self) -> bool:
        return await self.pending() == []


@pytest.fixture
async def rig(lab: Lab, tmp_path: Path) -> AsyncIterator[Rig]:
    s3_server = EmbeddedS3(tmp_path / "gateway")
    await s3_server.start()
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_all()
    now = time.time()
    editor = Editor(
        id=EDITOR,
        region="us-east-1",
        studio_id="es-" + "S" * 25,
        name="rig",
        status="Ready",
        s3_location="s3://bkt/p",
        created_by="test",
        token=lab.token,
        endpoint=lab.endpoint,
        created_at=now,
        last_modified_at=now,
    )
    await store.tx(lambda s: s.add(editor))
    blocking = Blocking(4)
    endpoint = S3Endpoint(s3_server.url, s3_server.access_key_id, s3_server.secret_access_key)
    s3 = S3Client(endpoint, blocking, create_buckets=True)
    engine = BackupEngine(
        store,
        s3,
        ContentsClient(blocking),
        Spool(tmp_path / "spool", blocking),
        blocking,
        base_url=lambda _: BASE_URL,
        sweep_seconds=3600,
        debounce=0.3,
        restore_timeout=30,
        flush_timeout=10,
    )
    await engine.start()
    await engine.before_ready(editor, Endpoint.parse(lab.endpoint))
    try:
        yield Rig(engine, store, s3_server, s3, editor)
    finally:
        await engine.close()
        await s3_server.stop()
        store.close()


async def test_collaboration_saves_are_uploaded_latest_first_and_not_each(
    rig: Rig, lab: Lab
) -> None:
    saves = 0
    started = time.monotonic()
    # A save every ~50 ms for 2 s; on a loaded machine a save takes longer, so on until 15.
    while time.monotonic() - started < 2.0 or saves < 15:
        await asyncio.to_thread(lab.put_text, "shared.txt", f"version {saves}")
        saves += 1
        await asyncio.sleep(0.05)
    saving = time.monotonic() - started
    last = f"version {saves - 1}".encode()
    await rig.until(lambda: _equals(rig.object("shared.txt"), last))
    # The change feed may report the last saves a little late on a loaded machine: the queue
    # settles (a late row finds the same content) before what it did is counted.
    await rig.until(rig.nothing_pending)
    assert saves >= 15
    # At most one upload per debounce window of the saving, plus the trailing one.
    assert rig.engine.uploads <= saving / 0.3 + 2, (rig.engine.uploads, saves, saving)
    assert await rig.object("shared.txt") == last
    assert await rig.pending() == []


async def _equals(value: Any, expected: bytes) -> bool:
    return bool(await value == expected)


async def test_a_stop_while_s3_is_down_keeps_the_changes_until_it_is_back(
    rig: Rig, lab: Lab, tmp_path: Path
) -> None:
    lab.put_text("kept.txt", "before")
    await rig.until(lambda: _equals(rig.object("kept.txt"), b"before"))

    await rig.s3_server.stop()  # S3 is gone
    lab.put_text("kept.txt", "during the outage")
    lab.put_text("new.txt", "also during")
    await asyncio.sleep(0.1)
    rig.editor.status = "Stopping"
    started = time.monotonic()
    await rig.engine.before_stop(rig.editor)  # the container may go now
    assert time.monotonic() - started < 5  # waits for the reads, not for S3
    spooled = {r.path: r for r in await rig.pending()}
    assert set(spooled) == {"kept.txt", "new.txt"}
    assert all(r.content_hash and not r.needs_read for r in spooled.values())
    # The Workspace's files change after the stop: what was read at the stop is what counts.
    (lab.root / "kept.txt").write_text("after the stop")

    # The Workspace starts again before S3 is back: its start waits, then restores, the
    # outage's changes first.
    restart = asyncio.create_task(rig.engine.before_ready(rig.editor, Endpoint.parse(lab.endpoint)))
    await asyncio.sleep(1)
    assert not restart.done()
    await rig.s3_server.start()
    await asyncio.wait_for(restart, 30)
    assert await rig.object("kept.txt") == b"during the outage"
    assert await rig.object("new.txt") == b"also during"
    assert (lab.root / "kept.txt").read_text() == "during the outage"  # restored
    assert await rig.pending() == []
    assert list((tmp_path / "spool").iterdir()) == []


async def test_a_save_during_an_upload_is_uploaded_after_it(rig: Rig, lab: Lab) -> None:
    big = "x" * 5_000_000
    lab.put_text("big.txt", big + "1")
    await asyncio.sleep(0.35)  # the debounce has passed: its upload is under way
    lab.put_text("big.txt", big + "2")
    await rig.until(lambda: _equals(rig.object("big.txt"), (big + "2").encode()), 20)
    await asyncio.sleep(0.5)
    assert await rig.object("big.txt") == (big + "2").encode()


def test_the_change_feed_replays_or_says_what_it_lost() -> None:
    feed = ChangeFeed(keep=3)
    seen: list[dict[str, Any]] = []
    feed.subscribers.add(seen.append)
    assert feed.record({"action": "get", "path": "a"}) is None  # reads change nothing
    for i in range(5):
        feed.record({"action": "save", "path": f"f{i}"})
    feed.record({"action": "rename", "path": "new", "source_path": "old"})
    assert [c["seq"] for c in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1] == {
        "type": "change",
        "seq": 6,
        "action": "rename",
        "path": "new",
        "source_path": "old",
    }
    assert feed.since(None, None) == []
    assert [c["seq"] for c in feed.since(feed.epoch, 3) or []] == [4, 5, 6]
    assert feed.since(feed.epoch, 6) == []
    assert feed.since(feed.epoch, 2) is None  # change 3 is no longer kept
    assert feed.since("another-run", 5) is None
    assert feed.since(feed.epoch, 7) is None


async def test_a_restore_puts_every_file_back_whole_with_its_time_and_resweeps_nothing(
    rig: Rig, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files as another container left them in S3: folders, a name that needs quoting, binary
    # bytes, one large enough to go through the contents API, a hidden key nobody backs up.
    monkeypatch.setattr(restore_module, "ARCHIVE_FILE_MAX", 200_000)
    monkeypatch.setattr(restore_module, "ARCHIVE_BYTES", 300_000)  # several archives
    files = {f"nb-{i:02}.ipynb": f'{{"cells": [], "i": {i}}}'.encode() * 3000 for i in range(30)}
    files["deep/er/Q1 sales é.ipynb"] = b'{"cells": []}'
    files["deep/data.bin"] = bytes(range(256)) * 100
    files["deep/large.bin"] = bytes(range(256)) * 1000  # 256 KB: over ARCHIVE_FILE_MAX here
    for path, data in files.items():
        await rig.s3.put("bkt", f"p/{EDITOR}/{path}", data)
    await rig.s3.put("bkt", f"p/{EDITOR}/.hidden/secret", b"never restored")
    s3_times = {
        o.key.split(f"{EDITOR}/", 1)[1]: o.last_modified
        for o in await rig.s3.list_objects("bkt", f"p/{EDITOR}/")
    }

    notes: list[str] = []
    await rig.engine.before_ready(rig.editor, Endpoint.parse(lab.endpoint), notes.append)

    for path, data in files.items():
        assert (lab.root / path).read_bytes() == data, path
        if path != "deep/large.bin":  # written through the contents API: the restore's time
            # The file's time is when it was backed up, not when it was restored.
            mtime = (lab.root / path).stat().st_mtime
            assert mtime == pytest.approx(s3_times[path], abs=1e-3), path
    assert not (lab.root / ".hidden").exists()
    assert not [p for p in lab.root.rglob(".~emustudio-restore-*")]  # no temporary left
    assert notes[0].startswith(f"Restoring {len(files)} files")
    assert notes[-1].startswith(f"Restored {len(files)} files from S3 in ")
    # What the journal was told matches the files exactly: a sweep finds nothing to upload.
    session = rig.engine.sessions[EDITOR]
    assert await rig.engine.sweep(session) == 0
    assert rig.engine.uploads == 0


def test_the_workspace_unpacks_only_plain_files_inside_its_root_and_keeps_newer_ones(
    tmp_path: Path,
) -> None:
    root = tmp_path / "home"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "folder").mkdir()
    (root / "old.txt").write_text("older than the restore")
    (root / "new.txt").write_text("written after the restore began")
    os.utime(root / "old.txt", (1000.0, 1000.0))
    since = time.time() - 5

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("old.txt", "new.txt", "a/b.txt", "../escape.txt", "link/escape.txt",
                     ".bashrc", "/etc/passwd", "folder", "old.txt/under"):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size, info.mtime = 4, 1_700_000_000.25  # type: ignore[assignment]
            tar.addfile(info, io.BytesIO(b"back"))
        symlink = tarfile.TarInfo("sym")
        symlink.type, symlink.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(symlink)

    done = unpack(buffer.getvalue(), str(root), since)
    assert sorted(done.written) == ["a/b.txt", "old.txt"]
    assert done.kept == ["new.txt"]
    assert sorted(done.refused) == sorted(
        ["../escape.txt", "link/escape.txt", ".bashrc", "/etc/passwd", "sym"]
    )
    assert [f.split(":")[0] for f in done.failed] == ["folder", "old.txt/under"]
    assert (root / "folder").is_dir()
    assert (root / "old.txt").read_bytes() == b"back"
    assert (root / "new.txt").read_text() == "written after the restore began"
    assert (root / "a" / "b.txt").stat().st_mtime == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape.txt").exists()
    assert not (root / ".bashrc").exists() and not (root / "sym").exists()
    assert not list(root.rglob(".~emustudio-restore-*"))


async def test_a_restore_that_cannot_write_a_file_fails_and_s3_keeps_everything(
    rig: Rig, lab: Lab
) -> None:
    await rig.s3.put("bkt", f"p/{EDITOR}/fine.txt", b"restorable")
    await rig.s3.put("bkt", f"p/{EDITOR}/clash", b"a file")
    (lab.root / "clash").mkdir()  # a folder where the file must go
    with pytest.raises(RuntimeError, match=r"1 backed-up files could not be restored \(clash: "):
        await rig.engine.before_ready(rig.editor, Endpoint.parse(lab.endpoint))
    assert await rig.object("clash") == b"a file"
    assert await rig.object("fine.txt") == b"restorable"
