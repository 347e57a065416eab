"""Workspace backup: save-to-S3 latency and restore time, each against a baseline measured in
the same run on this machine.

* **Save to S3.** A notebook saved through the Workspace's contents API (as JupyterLab saves
  it), until S3 holds exactly those bytes (polled every 5 ms with the ``minio`` SDK), over N
  saves, p50 and p99; once with the default debounce (0.5 s: a path saved again within it is
  uploaded once) and once with none, which leaves the pipeline's own cost (change feed,
  journal, read back, upload). Baseline: a direct ``minio`` put of the same bytes from the
  host, which is what the upload itself costs.
* **Restore.** 100 notebooks of about 1 MB (100 MB) put back into a new container before the
  Workspace is Ready, once with cold starts (no warm pool) and once with warm claims (a pool
  of 1): the restore step as the gateway logs it (median of three starts), and StartEditor
  until Ready against the same for an empty Workspace. Baselines, same run, same objects:
  a ``minio`` get of the 100 objects one after the other from the host; the same gets eight at
  a time, tarred and put into the running container with Docker's ``put_archive`` (a bare
  ``docker cp``: the least any honest restore path can cost); and the same bytes written into
  the container with one contents-API PUT each, eight at a time (the restore's old way).

    .venv/bin/python bench/backup.py [--saves 50] [--notebooks 100] [--restore-only]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import statistics
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import Any

import docker
from minio import Minio

from emustudio.testing.backup import (
    StudioSetup,
    container_of,
    key_of,
    keys_under,
    minio_of,
    notebook,
    start_workspace,
    wait_until,
)
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import wait_for_status
from emustudio.testing.vpc import make_studio_network, studio_args

BUCKET = "studio-bucket"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def etag_of(s3: Minio, key: str) -> str | None:
    try:
        return str(s3.stat_object(BUCKET, key).etag).strip('"')
    except Exception:
        return None


def studio(gateway: GatewayProcess) -> StudioSetup:
    net = make_studio_network(gateway.client("ec2"), subnets=2)
    location = f"s3://{BUCKET}/workspaces"
    studio_id = gateway.client("emr").create_studio(**studio_args(net, DefaultS3Location=location))[
        "StudioId"
    ]
    return StudioSetup(studio_id, net.subnet_ids, location)


def save_latencies(debounce: float, saves: int) -> tuple[list[float], list[float]]:
    """(save-to-S3 seconds, direct put seconds) for ``saves`` saves of a ~20 KB notebook."""
    gateway = GatewayProcess(env={"EMUSTUDIO_BACKUP_DEBOUNCE_SECONDS": str(debounce)}).start()
    try:
        _, editor_id, ws = start_workspace(gateway, studio(gateway), "latency")
        s3 = minio_of(gateway)
        key = key_of(editor_id, "latency.ipynb")
        through, direct = [], []
        for i in range(saves + 2):
            ws.save_notebook("latency.ipynb", notebook(f"print({i})", size=20_000))
            started = time.monotonic()
            data = ws.raw("latency.ipynb")
            assert data is not None
            md5 = hashlib.md5(data).hexdigest()
            wait_until(lambda m=md5: etag_of(s3, key) == m, 10, interval=0.005)  # type: ignore[misc]
            if i >= 2:  # the first saves warm the connections up
                through.append(time.monotonic() - started)
            t = time.monotonic()
            s3.put_object(BUCKET, f"baseline/{i}.ipynb", BytesIO(data), len(data))
            if i >= 2:
                direct.append(time.monotonic() - t)
            # More than the debounce apart: each is a save of a quiet path, which the adaptive
            # debounce sends at once (a path saved again sooner waits out the window).
            time.sleep(0.6)
        return through, direct
    finally:
        gateway.close()


def _get_all(s3: Minio, keys: list[str]) -> list[bytes]:
    def get(key: str) -> bytes:
        response = s3.get_object(BUCKET, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(get, keys))


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.uid, info.gid, info.mode = len(data), 1000, 1000, 0o644
            tar.addfile(info, BytesIO(data))
    return buffer.getvalue()


def restore_times(count: int, pool: int) -> dict[str, Any]:
    gateway = GatewayProcess(env={"EMUSTUDIO_WORKSPACE_POOL_SIZE": str(pool)}).start()
    try:
        setup = studio(gateway)
        s3 = minio_of(gateway)
        editors, empty_id, _ = start_workspace(gateway, setup, "empty")
        _, editor_id, ws = start_workspace(gateway, setup, "full")
        for i in range(count):
            ws.save_notebook(f"nb-{i:03}.ipynb", notebook(f"notebook {i}", size=1_000_000))
        total = sum(len(ws.raw(f"nb-{i:03}.ipynb") or b"") for i in range(count))
        keys = [key_of(editor_id, f"nb-{i:03}.ipynb") for i in range(count)]
        wait_until(lambda: len(keys_under(s3, key_of(editor_id, ""))) == count, 120, interval=0.2)

        def cycle(eid: str) -> float:
            editors.stop_editor(EditorId=eid)
            wait_for_status(editors, eid, "Idle")
            time.sleep(3 if pool else 0)  # the pool refills after a claim
            started = time.monotonic()
            editors.start_editor(EditorId=eid)
            wait_for_status(editors, eid, "Ready")
            return time.monotonic() - started

        empty = statistics.median(cycle(empty_id) for _ in range(3))
        full = statistics.median(cycle(editor_id) for _ in range(3))
        log = gateway.log()
        logged = re.findall(
            rf"restored {count} files \((\d+) bytes\) of {editor_id} from \S+ in ([\d.]+) s", log
        )
        restore = statistics.median(float(t) for _, t in logged[-3:])
        warm = len(re.findall(rf"workspace {editor_id}: claimed warm container", log))
        cold = len(re.findall(rf"workspace {editor_id}: created container", log))
        ws.refresh()

        started = time.monotonic()
        for key in keys:
            response = s3.get_object(BUCKET, key)
            response.read()
            response.close()
            response.release_conn()
        direct = time.monotonic() - started

        container = container_of(docker.from_env(), editor_id)
        started = time.monotonic()
        archive = _tar({f"nb-{i:03}.ipynb": d for i, d in enumerate(_get_all(s3, keys))})
        container.exec_run(["mkdir", "-p", "/tmp/bench-put-archive"])
        assert container.put_archive("/tmp/bench-put-archive", archive)
        put_archive = time.monotonic() - started

        datas = _get_all(s3, keys)
        ws.mkdir("bench-contents")
        started = time.monotonic()
        with ThreadPoolExecutor(8) as threads:
            list(
                threads.map(
                    lambda i: ws.save_file(f"bench-contents/nb-{i:03}.ipynb", datas[i]),
                    range(count),
                )
            )
        contents = time.monotonic() - started
        return {
            "bytes": total,
            "restore": restore,
            "start_full": full,
            "start_empty": empty,
            "direct_get": direct,
            "put_archive": put_archive,
            "contents": contents,
            "paths": f"{warm} warm claims, {cold} cold starts",
        }
    finally:
        gateway.close()


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}, load average {load}"
    )


def save_table(saves: int) -> None:
    rows: list[tuple[str, list[float]]] = []
    baseline: list[float] = []
    for debounce in (0.5, 0.0):
        through, direct = save_latencies(debounce, saves)
        rows.append((f"save -> in S3, debounce {debounce} s", through))
        baseline += direct
    rows.append(("direct minio put, same bytes", baseline))
    print(f"{'':36}{'p50 ms':>9}{'p99 ms':>9}{'n':>5}")
    for label, values in rows:
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"{label:36}{p50:9.1f}{p99:9.1f}{len(values):5}")
    undebounced = percentile(rows[1][1], 0.5)
    print(f"ratio p50 (no debounce) / direct put: {undebounced / percentile(baseline, 0.5):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--notebooks", type=int, default=100)
    parser.add_argument("--restore-only", action="store_true", help="skip the save latencies")
    args = parser.parse_args()
    print(machine())
    if not args.restore_only:
        save_table(args.saves)
    for pool in (0, 1):
        r: dict[str, Any] = restore_times(args.notebooks, pool)
        mb = r["bytes"] / 1e6
        kind = "warm claims (pool 1)" if pool else "cold starts (pool 0)"
        print(f"restore of {args.notebooks} notebooks, {mb:.0f} MB, {kind}: {r['paths']}")
        rows2 = [
            ("restore step (gateway log, median of 3)", r["restore"]),
            ("StartEditor -> Ready, restored (median)", r["start_full"]),
            ("StartEditor -> Ready, empty (median)", r["start_empty"]),
            ("baseline: minio get, one by one", r["direct_get"]),
            ("baseline: get 8 at once + put_archive", r["put_archive"]),
            ("baseline: contents API PUT each (old)", r["contents"]),
        ]
        for label, seconds in rows2:
            print(f"  {label:42}{seconds:6.2f} s  ({mb / seconds:4.0f} MB/s)")
        print(
            f"  ratio restore step / put_archive: {r['restore'] / r['put_archive']:.2f};"
            f" / contents API: {r['restore'] / r['contents']:.2f};"
            f" restored start - empty start: {r['start_full'] - r['start_empty']:.2f} s"
        )
    print(machine())


if __name__ == "__main__":
    main()
