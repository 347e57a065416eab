"""Idle cost of running Workspaces: CPU of N idle JupyterLab containers over a window, with the
image's Docker HEALTHCHECK (an exec every 2 s, as Workspaces ran before) against the way the
gateway runs them now (health check off: readiness probed once, liveness from Docker's events).

    .venv/bin/python bench/idle.py [--containers 4] [--seconds 30]

Both sets run the same image (``emustudio/workspace:<version>``), with no network
(``network_mode=none``; the health check asks 127.0.0.1 inside the container), one after the
other in the same run. Reported: the containers' own CPU (their cgroups' ``cpuacct.usage``) and
the CPU of dockerd, containerd and the shims meanwhile (the machine is shared: Docker also
serves other containers, so that figure is an upper bound). Containers are labelled
``emustudio.instance=bench<hex>`` and removed at the end.
"""

from __future__ import annotations

import argparse
import secrets
import time

import docker
import psutil
from _measure import container_cpu, docker_daemons, load

from emustudio import __version__


def cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(client: docker.DockerClient, label: str, n: int, health: bool, seconds: float) -> str:
    image = f"emustudio/workspace:{__version__}"
    ids = []
    for _ in range(n):
        c = client.containers.run(
            image,
            detach=True,
            labels={"emustudio.instance": label},
            environment={"EMUSTUDIO_JUPYTER_TOKEN": secrets.token_hex(24)},
            network_mode="none",
            mem_limit="512m",
            nano_cpus=500_000_000,
            healthcheck=None if health else {"test": ["NONE"]},
        )
        ids.append(c.id)
    # Idle means after start: wait until every server has started (health or log line).
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        logs = [client.api.logs(cid, tail=50) for cid in ids]
        if all(b"is running at" in log for log in logs):
            break
        time.sleep(1)
    time.sleep(5)
    daemons = docker_daemons()
    c0, d0, t0 = container_cpu(ids), cpu(daemons), time.monotonic()
    time.sleep(seconds)
    c1, d1, t1 = container_cpu(ids), cpu(daemons), time.monotonic()
    for cid in ids:
        client.api.remove_container(cid, force=True)
    span = t1 - t0
    return (
        f"| {'image HEALTHCHECK every 2 s' if health else 'no health check (the gateway now)'}"
        f" | {n} | {100 * (c1 - c0) / span:.2f} % | {100 * (c1 - c0) / span / n:.2f} %"
        f" | {100 * (d1 - d0) / span:.2f} % |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    client = docker.from_env()
    label = "bench" + secrets.token_hex(4)
    print(f"load average at start {load()}; {args.seconds:.0f} s windows; % of one core")
    print("| containers run with | n | containers' CPU | per container | Docker's daemons |")
    print("|---|---|---|---|---|")
    try:
        for health in (True, False):
            print(measure(client, label, args.containers, health, args.seconds), flush=True)
    finally:
        for c in client.containers.list(all=True, filters={"label": f"emustudio.instance={label}"}):
            c.remove(force=True)
    print(f"load average at end {load()}")


if __name__ == "__main__":
    main()
