"""Workspace files in S3, as a data engineer sees them: saved notebooks appear under
``<location>/<e-ID>/<path>`` (how soon is ``bench/backup.py``'s figure), renames and deletes follow, a stop and a start
in another AZ bring back the same bytes, deleting the Workspace keeps them, and the Workspace
never holds an S3 credential."""

from __future__ import annotations

import time
from typing import Any

import docker
from minio import Minio

from emustudio.testing.backup import (
    StudioSetup,
    container_of,
    key_of,
    keys_under,
    notebook,
    object_bytes,
    restart_workspace,
    s3_state,
    start_workspace,
    wait_until,
)
from emustudio.testing.gateway import GatewayProcess
from tests.backup.conftest import SWEEP_SECONDS


def test_a_saved_notebook_reaches_s3_and_comes_back_after_a_restart(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    editors, editor_id, ws = start_workspace(gateway, studio, "notebooks")
    first = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert "LastBackupTime" not in first

    latencies = []
    for i in range(5):
        ws.save_notebook("analysis.ipynb", notebook(f"print({i})"))
        stored = ws.raw("analysis.ipynb")
        latencies.append(
            wait_until(
                lambda s=stored: object_bytes(s3, key_of(editor_id, "analysis.ipynb")) == s,
                timeout=5,
                what="the saved notebook in S3",
            )
        )
    # How soon is measured by bench/backup.py (save -> S3 p50), not asserted here.
    print(f"save to S3: {[round(t, 3) for t in latencies]} s")
    described = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert described["LastBackupTime"].timestamp() > time.time() - 60

    # A file in a folder, a binary file, a name that needs quoting.
    ws.mkdir("reports")
    ws.save_notebook("reports/Q1 sales é.ipynb", notebook("sales"))
    blob = bytes(range(256)) * 300
    ws.save_file("reports/data.bin", blob)
    wait_until(
        lambda: object_bytes(s3, key_of(editor_id, "reports/data.bin")) == blob,
        timeout=5,
        what="the binary file",
    )
    saved = {
        p: ws.raw(p) for p in ("analysis.ipynb", "reports/Q1 sales é.ipynb", "reports/data.bin")
    }
    wait_until(
        lambda: all(object_bytes(s3, key_of(editor_id, p)) == b for p, b in saved.items()),
        timeout=5,
        what="all three files",
    )

    # Stop, start: another AZ, a new container, the same bytes.
    before = editors.describe_editor(EditorId=editor_id)["Editor"]
    after = restart_workspace(editors, ws)
    assert after["AvailabilityZone"] != before["AvailabilityZone"]
    for path, data in saved.items():
        assert ws.raw(path) == data, path
    # Nothing is uploaded again just because it was restored.
    uploaded = after.get("LastBackupTime")
    time.sleep(SWEEP_SECONDS + 1)
    assert editors.describe_editor(EditorId=editor_id)["Editor"].get("LastBackupTime") == uploaded


def test_renames_and_deletes_follow(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    _, editor_id, ws = start_workspace(gateway, studio, "tidy")
    prefix = key_of(editor_id, "")
    ws.save_notebook("draft.ipynb", notebook("draft"))
    ws.mkdir("old")
    ws.save_notebook("old/a.ipynb", notebook("a"))
    ws.save_notebook("old/b.ipynb", notebook("b"))
    wait_until(lambda: len(keys_under(s3, prefix)) == 3, 5, what="three objects")

    ws.rename("draft.ipynb", "final.ipynb")
    final = ws.raw("final.ipynb")
    wait_until(
        lambda: (
            keys_under(s3, prefix)
            == [key_of(editor_id, p) for p in ("final.ipynb", "old/a.ipynb", "old/b.ipynb")]
        ),
        5,
        what="the renamed notebook",
    )
    assert object_bytes(s3, key_of(editor_id, "final.ipynb")) == final

    ws.rename("old", "new")  # a folder: every file under it moves
    wait_until(
        lambda: (
            keys_under(s3, prefix)
            == [key_of(editor_id, p) for p in ("final.ipynb", "new/a.ipynb", "new/b.ipynb")]
        ),
        5,
        what="the renamed folder",
    )

    ws.delete("final.ipynb")
    ws.delete("new/a.ipynb")
    wait_until(
        lambda: keys_under(s3, prefix) == [key_of(editor_id, "new/b.ipynb")],
        5,
        what="the deletes",
    )


def test_files_written_by_code_are_found_by_the_sweep(
    gateway: GatewayProcess,
    studio: StudioSetup,
    s3: Minio,
    docker_client: docker.DockerClient,
) -> None:
    _, editor_id, _ = start_workspace(gateway, studio, "code")
    container = container_of(docker_client, editor_id)
    # No contents event: a kernel or a terminal writes the file.
    container.exec_run(
        ["sh", "-c", "mkdir -p out && printf 'a,b\\n1,2\\n' > out/result.csv"],
        user="emr-notebook",
        workdir="/home/emr-notebook",
    )
    took = wait_until(
        lambda: object_bytes(s3, key_of(editor_id, "out/result.csv")) == b"a,b\n1,2\n",
        SWEEP_SECONDS * 3,
        what="the file written by code",
    )
    assert took < SWEEP_SECONDS * 2
    container.exec_run(["rm", "out/result.csv"], workdir="/home/emr-notebook")
    wait_until(
        lambda: object_bytes(s3, key_of(editor_id, "out/result.csv")) is None,
        SWEEP_SECONDS * 3,
        what="the file removed by code",
    )


def test_changes_just_before_a_stop_are_kept(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio, docker_client: docker.DockerClient
) -> None:
    editors, editor_id, ws = start_workspace(gateway, studio, "last-minute")
    ws.save_notebook("late.ipynb", notebook("late"))
    container_of(docker_client, editor_id).exec_run(
        ["sh", "-c", "echo written by code > code.txt"], workdir="/home/emr-notebook"
    )
    late = ws.raw("late.ipynb")
    editors.stop_editor(EditorId=editor_id)  # right away: the stop flushes
    assert object_bytes(s3, key_of(editor_id, "late.ipynb")) in (None, late)
    wait_until(
        lambda: editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] == "Idle",
        60,
        interval=0.2,
    )
    assert object_bytes(s3, key_of(editor_id, "late.ipynb")) == late
    assert object_bytes(s3, key_of(editor_id, "code.txt")) == b"written by code\n"


def test_deleting_a_workspace_keeps_its_backups(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    editors, editor_id, ws = start_workspace(gateway, studio, "short-lived")
    ws.save_notebook("keep.ipynb", notebook("keep"))
    kept = ws.raw("keep.ipynb")
    wait_until(lambda: object_bytes(s3, key_of(editor_id, "keep.ipynb")) == kept, 5)
    editors.delete_editor(EditorId=editor_id)

    def gone() -> bool:
        return editor_id not in [e["EditorId"] for e in editors.list_editors()["Editors"]]

    wait_until(gone, 60, interval=0.2, what="the Workspace deleted")
    assert object_bytes(s3, key_of(editor_id, "keep.ipynb")) == kept


def test_a_workspace_location_and_a_new_bucket(
    gateway: GatewayProcess, studio: StudioSetup, s3: Minio
) -> None:
    """A Workspace's own S3Location wins over the Studio's; its bucket is made on first write
    (the embedded server does; on AWS it must exist)."""
    editors = gateway.client("emr-studio")
    assert not s3.bucket_exists("team-notebooks")
    _, editor_id, ws = start_workspace(
        gateway, studio, "elsewhere", S3Location="s3://team-notebooks/x/y"
    )
    ws.save_notebook("n.ipynb", notebook("n"))
    stored = ws.raw("n.ipynb")
    wait_until(
        lambda: object_bytes(s3, f"x/y/{editor_id}/n.ipynb", bucket="team-notebooks") == stored,
        5,
        what="the object in the new bucket",
    )
    assert editors.describe_editor(EditorId=editor_id)["Editor"]["S3Location"] == (
        "s3://team-notebooks/x/y"
    )


def test_no_s3_credential_ever_reaches_a_workspace(
    gateway: GatewayProcess, studio: StudioSetup, docker_client: docker.DockerClient
) -> None:
    _, editor_id, ws = start_workspace(gateway, studio, "sealed")
    ws.save_notebook("x.ipynb", notebook("x"))
    state = s3_state(gateway)
    secrets = [state["access_key_id"], state["secret_access_key"]]
    container = container_of(docker_client, editor_id)
    env: list[str] = container.attrs["Config"]["Env"]
    assert not any(s in e for s in secrets for e in env)
    inspected: Any = container.attrs
    assert not any(s in str(inspected) for s in secrets)
    # Its whole filesystem, as Docker exports it (file permissions do not hide anything).
    needles = [x.encode() for x in secrets]
    tail = b""
    exported = 0
    for chunk in container.export(chunk_size=1 << 20):
        window = tail + chunk
        assert not any(n in window for n in needles), "an S3 credential is in the Workspace"
        tail = window[-64:]
        exported += len(chunk)
    assert exported > 50_000_000  # the whole image was searched
    # The Workspace's own environment (a kernel's) has nothing of S3 either.
    printed = container.exec_run(["sh", "-c", "cat /proc/1/environ; env"]).output
    assert not any(s.encode() in printed for s in secrets)
    assert ws.request("GET", "api/contents/x.ipynb?content=0")["type"] == "notebook"
