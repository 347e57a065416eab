"""Nothing saved is lost: S3 that stops answering and then dies, a gateway killed right after
a save, and a large Workspace (100 notebooks, about 100 MB) restored byte for byte."""

from __future__ import annotations

import os
import time

import docker
import pytest
from minio import Minio
from sqlmodel import Session, create_engine, select

from emustudio.store.backup_tables import BackupPending
from emustudio.testing.backup import (
    StudioSetup,
    container_of,
    key_of,
    keys_under,
    notebook,
    object_bytes,
    start_workspace,
    wait_until,
)
from emustudio.testing.gateway import GatewayProcess, az_cli
from tests.backup.conftest import pause, rclone_process, resume

# How long S3 stays unreachable; EMUSTUDIO_TEST_S3_OUTAGE=60 for a longer rehearsal.
OUTAGE_SECONDS = float(os.environ.get("EMUSTUDIO_TEST_S3_OUTAGE", "20"))


@pytest.mark.parametrize("outage", [OUTAGE_SECONDS])
def test_s3_down_then_dead_every_save_arrives(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio, outage: float
) -> None:
    _, editor_id, ws = start_workspace(gateway, studio, "through-an-outage")
    ws.save_notebook("before.ipynb", notebook("before"))
    wait_until(lambda: object_bytes(s3, key_of(editor_id, "before.ipynb")) is not None, 5)

    server = rclone_process(gateway)
    pause(server)  # S3 stops answering: connections hang
    saved: dict[str, bytes] = {}
    try:
        started, i = time.monotonic(), 0
        while time.monotonic() - started < outage:
            t = time.monotonic()
            ws.save_notebook(f"during-{i % 5}.ipynb", notebook(f"save {i}"))
            ws.save_notebook("often.ipynb", notebook(f"often {i}"))
            # The Workspace keeps working: a save does not wait for S3.
            assert time.monotonic() - t < 2
            i += 1
            time.sleep(1)
        for path in {f"during-{n % 5}.ipynb" for n in range(i)} | {"often.ipynb"}:
            data = ws.raw(path)
            assert data is not None
            saved[path] = data
    finally:
        server.kill()  # ... and then dies; the gateway starts it again
        resume(server)
    took = wait_until(
        lambda: all(object_bytes(s3, key_of(editor_id, p)) == b for p, b in saved.items()),
        40,
        interval=0.2,
        what="every save made during the outage",
    )
    print(f"{len(saved)} files in S3 {took:.1f} s after it came back")
    assert rclone_process(gateway).pid != server.pid
    assert "starting it again" in gateway.log()


def test_a_gateway_killed_right_after_a_save_uploads_it_after_restart(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    editors, editor_id, ws = start_workspace(gateway, studio, "survives-sigkill")

    # Killed once the change is journalled, before the upload: S3 is made to hang first (a
    # quiet path's save goes to S3 at once, so no debounce window would leave time for it).
    pause(rclone_process(gateway))
    ws.save_notebook("journalled.ipynb", notebook("journalled"))
    time.sleep(0.3)
    gateway.kill()
    engine = create_engine(f"sqlite:///{gateway.data_dir / 'emustudio.db'}")
    with Session(engine) as session:
        pending = [
            r.path
            for r in session.exec(select(BackupPending).where(BackupPending.editor_id == editor_id))
        ]
    engine.dispose()
    # Journalled and not uploaded (a row goes only once S3 has the file); the embedded S3
    # died with the gateway.
    assert pending == ["journalled.ipynb"]
    gateway.start()
    wait_until(
        lambda: (
            object_bytes(s3, key_of(editor_id, "journalled.ipynb")) == ws.raw("journalled.ipynb")
        ),
        10,
        what="the journalled save after the restart",
    )

    # Killed the moment the save returns, before the gateway may have heard of it.
    ws.save_notebook("unheard.ipynb", notebook("unheard"))
    gateway.kill()
    gateway.start()
    wait_until(
        lambda: object_bytes(s3, key_of(editor_id, "unheard.ipynb")) == ws.raw("unheard.ipynb"),
        10,
        what="the save made as the gateway died",
    )

    # The restarted gateway follows the Workspace as before.
    editors = gateway.client("emr-studio")
    assert editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] == "Ready"
    ws.save_notebook("after.ipynb", notebook("after"))
    took = wait_until(
        lambda: object_bytes(s3, key_of(editor_id, "after.ipynb")) == ws.raw("after.ipynb"),
        5,
    )
    assert took < 1.0


def test_a_hundred_notebooks_of_100_mb_restore_byte_for_byte(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    editors, editor_id, ws = start_workspace(gateway, studio, "large")
    ws.mkdir("batch")
    originals: dict[str, bytes] = {}
    for i in range(100):
        path = f"batch/nb-{i:03}.ipynb" if i % 2 else f"nb-{i:03}.ipynb"
        ws.save_notebook(path, notebook(f"notebook {i}", size=1_000_000 + i * 37))
        data = ws.raw(path)
        assert data is not None
        originals[path] = data
    total = sum(len(b) for b in originals.values())
    assert total > 100_000_000
    wait_until(lambda: len(keys_under(s3, key_of(editor_id, ""))) == 100, 60, interval=0.2)
    for path, data in originals.items():
        assert object_bytes(s3, key_of(editor_id, path)) == data, path

    editors.stop_editor(EditorId=editor_id)
    wait_until(
        lambda: editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] == "Idle",
        60,
        interval=0.2,
    )
    started = time.monotonic()
    editors.start_editor(EditorId=editor_id)
    wait_until(
        lambda: editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] == "Ready",
        120,
        interval=0.1,
    )
    print(f"start with {total / 1e6:.0f} MB restored: {time.monotonic() - started:.1f} s")
    ws.refresh()
    for path, data in originals.items():
        assert ws.raw(path) == data, path
    # The restored files and folder are the Workspace user's: it can write beside them.
    container = container_of(docker.from_env(), editor_id)
    listing = container.exec_run(
        ["stat", "-c", "%U:%G %a %n", "batch", "batch/nb-001.ipynb", "nb-000.ipynb"],
        workdir="/home/emr-notebook",
    ).output.decode()
    assert listing.split("\n")[:3] == [
        "emr-notebook:emr-notebook 755 batch",
        "emr-notebook:emr-notebook 644 batch/nb-001.ipynb",
        "emr-notebook:emr-notebook 644 nb-000.ipynb",
    ], listing
    ws.save_file("batch/after-the-restore.txt", b"mine")
    assert ws.raw("batch/after-the-restore.txt") == b"mine"


def test_an_az_outage_pauses_the_backup_and_its_end_resumes_it(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    editors, editor_id, ws = start_workspace(gateway, studio, "outage-zone")
    ws.save_notebook("before.ipynb", notebook("before"))
    wait_until(lambda: object_bytes(s3, key_of(editor_id, "before.ipynb")) is not None, 5)
    zone = editors.describe_editor(EditorId=editor_id)["Editor"]["AvailabilityZone"]
    az_cli(gateway, "fail", zone)  # the container is off its network
    time.sleep(1)
    az_cli(gateway, "restore", zone)  # back, maybe at another address
    ws.refresh()
    ws.save_notebook("after.ipynb", notebook("after"))
    wait_until(
        lambda: object_bytes(s3, key_of(editor_id, "after.ipynb")) == ws.raw("after.ipynb"),
        30,
        interval=0.1,
        what="a save after the outage",
    )
