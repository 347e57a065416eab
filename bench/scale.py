"""Many idle Workspaces on one machine: what they cost the machine and the gateway's API.

One gateway (``emustudio up`` in a child process, its own data dir and instance id, no warm pool)
with one Studio.  Two windows of ``--seconds`` each, in one run:

1. **baseline**: the gateway with no Workspace running;
2. **N idle**: after N Workspaces are Ready (started ``--batch`` at a time) and have settled.

In both windows a client asks the gateway's API (``DescribeEditor`` then ``ListEditors``, one
call every ``--interval`` seconds), and the script reads:

* the CPU of the Workspace containers (their cgroups' ``cpuacct.usage``), of the gateway and its
  S3 server child (psutil), and of Docker's daemons (dockerd, containerd, shims: shared with
  every other container of the machine, so an upper bound);
* the API's p50 and p99 latency;
* memory: each container's cgroup usage less its inactive page cache (as ``docker stats``), and
  the gateway's RSS with and without its S3 child.

Every figure is printed beside its baseline, with the ratio.  N is capped by the memory the
machine has available (``--mb-per-workspace`` each, 150 MB by default: a server and a kernel's
head room); the script says when it capped it.

    .venv/bin/python bench/scale.py [--workspaces 50] [--seconds 60] [--batch 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import psutil
from _measure import container_cpu, docker_daemons, editors_client, load

from emustudio.testing.gateway import GatewayProcess

MEMORY = Path("/sys/fs/cgroup/memory/docker")


def proc_cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def container_mb(cid: str) -> float | None:
    """Memory a container uses, as ``docker stats`` counts it (usage less inactive file cache)."""
    base = MEMORY / cid
    if not (base / "memory.usage_in_bytes").exists():
        return None
    usage = int((base / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
    return (usage - int(stat.get("total_inactive_file", 0))) / 1e6


def rss_mb(proc: psutil.Process) -> float:
    try:
        return float(proc.memory_info().rss) / 1e6
    except psutil.NoSuchProcess:
        return 0.0


@dataclass
class Window:
    seconds: float
    containers: float  # CPU-seconds
    gateway: float  # the gateway process and its children
    daemons: float
    latencies: list[float]  # ms

    def pct(self, cpu: float) -> float:
        return 100 * cpu / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    gateway: psutil.Process, ids: list[str], editors: Any, editor_id: str, args: Any
) -> Window:
    family = [gateway, *gateway.children(recursive=True)]
    daemons = docker_daemons()
    c0, g0, d0 = container_cpu(ids), proc_cpu(family), proc_cpu(daemons)
    started = time.monotonic()
    latencies = []
    while time.monotonic() - started < args.seconds:
        t = time.perf_counter()
        editors.describe_editor(EditorId=editor_id)
        latencies.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        editors.list_editors()
        latencies.append((time.perf_counter() - t) * 1000)
        time.sleep(args.interval)
    span = time.monotonic() - started
    c1, g1, d1 = container_cpu(ids), proc_cpu(family), proc_cpu(daemons)
    return Window(span, c1 - c0, g1 - g0, d1 - d0, latencies)


def make_studio(gateway: GatewayProcess) -> str:
    ec2, emr = gateway.client("ec2"), gateway.client("emr")
    vpc = ec2.create_vpc(CidrBlock="10.182.0.0/16")["Vpc"]["VpcId"]
    # A /22: room for more Workspaces than one machine runs.
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.182.0.0/22", AvailabilityZone="us-east-1a")
    groups = [
        ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
        for n in ("ws", "engine")
    ]
    return str(
        emr.create_studio(
            Name="scale",
            AuthMode="IAM",
            VpcId=vpc,
            SubnetIds=[subnet["Subnet"]["SubnetId"]],
            ServiceRole="r",
            WorkspaceSecurityGroupId=groups[0],
            EngineSecurityGroupId=groups[1],
            DefaultS3Location="s3://scale/ws",
        )["StudioId"]
    )


def wait_ready(editors: Any, ids: list[str], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} Workspaces not Ready after {timeout:.0f} s")
        for eid in list(pending):
            status = editors.describe_editor(EditorId=eid)["Editor"]["Status"]
            if status == "Ready":
                pending.discard(eid)
            elif status == "Idle":
                raise RuntimeError(f"{eid} failed to start")
        time.sleep(0.5)


def row(name: str, base: float, value: float, unit: str) -> str:
    ratio = f"{value / base:.2f}x" if base > 0 else "—"
    return f"| {name} | {base:.2f} {unit} | {value:.2f} {unit} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=5, help="Workspaces started at a time")
    parser.add_argument("--interval", type=float, default=0.25, help="between API calls, s")
    parser.add_argument("--settle", type=float, default=20, help="after all are Ready, s")
    parser.add_argument("--mb-per-workspace", type=float, default=150)
    args = parser.parse_args()

    available = psutil.virtual_memory().available / 1e6
    n = min(args.workspaces, int(available // args.mb_per_workspace))
    capped = (
        f" (capped from {args.workspaces}: {available:.0f} MB available)"
        if n < args.workspaces
        else ""
    )
    print(f"load average at start {load()}; {n} Workspaces{capped}; {args.seconds:.0f} s windows")

    client = docker.from_env()
    gateway = GatewayProcess(env={"EMUSTUDIO_WORKSPACE_POOL_SIZE": "0"}).start()
    try:
        assert gateway.proc is not None
        proc = psutil.Process(gateway.proc.pid)
        editors = editors_client(gateway)
        studio = make_studio(gateway)
        probe = editors.create_editor(StudioId=studio, Name="probe")["EditorId"]
        wait_ready(editors, [probe])  # the first start builds or checks the image
        editors.stop_editor(EditorId=probe)
        while editors.describe_editor(EditorId=probe)["Editor"]["Status"] != "Idle":
            time.sleep(0.2)
        time.sleep(5)
        base_rss = rss_mb(proc)
        base_s3 = sum(rss_mb(c) for c in proc.children(recursive=True))
        baseline = measure(proc, [], editors, probe, args)
        print(f"baseline measured; load {load()}", flush=True)

        ids: list[str] = []
        started = time.monotonic()
        while len(ids) < n:
            batch = [
                editors.create_editor(StudioId=studio, Name=f"w{len(ids) + i}")["EditorId"]
                for i in range(min(args.batch, n - len(ids)))
            ]
            wait_ready(editors, batch)
            ids += batch
        print(f"{n} Ready in {time.monotonic() - started:.0f} s; settling", flush=True)
        time.sleep(args.settle)
        filters = {"label": [f"emustudio.instance={gateway.instance_id}"]}
        containers = [c.id for c in client.containers.list(filters=filters)]
        mems = [m for m in (container_mb(c) for c in containers) if m is not None]
        busy = measure(proc, containers, editors, ids[0], args)
        rss = rss_mb(proc)
        s3 = sum(rss_mb(c) for c in proc.children(recursive=True))

        print(f"load average at end {load()}\n")
        print(f"| {n} idle Workspaces, {args.seconds:.0f} s | baseline (none) | {n} idle | ratio |")
        print("|---|---|---|---|")
        print(row("containers' CPU, % of a core", 0.0, busy.pct(busy.containers), "%"))
        print(row("gateway + S3 child CPU, % of a core", baseline.pct(baseline.gateway),
                  busy.pct(busy.gateway), "%"))  # fmt: skip
        total_base = baseline.pct(baseline.gateway)
        total = busy.pct(busy.containers + busy.gateway)
        print(row("containers + gateway, % of a core (aim < 10 %)", total_base, total, "%"))
        print(row("Docker's daemons, % of a core", baseline.pct(baseline.daemons),
                  busy.pct(busy.daemons), "%"))  # fmt: skip
        print(row("API p50, ms", baseline.quantile(0.5), busy.quantile(0.5), "ms"))
        print(row("API p99, ms (aim < 50 ms)", baseline.quantile(0.99), busy.quantile(0.99), "ms"))
        print(row("gateway RSS without S3 child, MB", base_rss, rss, "MB"))
        print(row("gateway RSS with S3 child, MB", base_rss + base_s3, rss + s3, "MB"))
        if mems:
            print(
                f"\nmemory per container (usage less inactive cache): median"
                f" {statistics.median(mems):.0f} MB, max {max(mems):.0f} MB over {len(mems)}"
            )
    finally:
        gateway.close()  # stops it and removes its containers and networks
        client.close()


if __name__ == "__main__":
    main()
