"""Workspace start: StartEditor until JupyterLab answers, against a bare `docker run` of the
same image until it answers, measured in one run on this machine; then ten concurrent starts.

Both sides are timed the same way: from the call that starts the container to the first
successful GET of the server's readiness URL from the host (the gateway reaches Workspaces the
same way, on the subnet network). Prints a table of medians and the ratio gateway / bare.

    .venv/bin/python bench/workspace_start.py [--rounds 5] [--concurrent 10] [--pool 1]

With ``--pool N`` the gateway keeps N warm containers per subnet, and each timed StartEditor
first waits (untimed) until the subnet's pool has a warm one: the warm path, against the same
bare ``docker run``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import statistics
import time
import urllib.request
from typing import Any

import docker
from _measure import editors_client

from emustudio.testing.gateway import GatewayProcess


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def poll(url_of: Any, deadline: float = 180.0) -> float:
    """Seconds until ``url_of()`` names a URL that answers (``url_of`` may return None)."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        url = url_of()
        if url and answers(url):
            return time.monotonic() - start
        time.sleep(0.01)
    raise TimeoutError("no answer")


def container_url(client: docker.DockerClient, editor_id: str) -> str | None:
    # By name: a container claimed from the warm pool has the pool's labels.
    found = client.containers.list(filters={"name": f"-{editor_id}$"})
    if not found:
        return None
    networks = found[0].attrs["NetworkSettings"]["Networks"]
    ips = [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]
    return f"http://{ips[0]}:8888/workspaces/{editor_id}/emustudio/ready" if ips else None


def bare_start(client: docker.DockerClient, image: str, network: str) -> float:
    """`docker run` of the Workspace image on the same network, until it answers."""
    editor_id = "e-" + secrets.token_hex(13).upper()[:25]
    started = time.monotonic()
    container = client.containers.run(
        image,
        detach=True,
        network=network,
        environment={
            "EMUSTUDIO_JUPYTER_TOKEN_SHA256": hashlib.sha256(os.urandom(32)).hexdigest(),
            "EMUSTUDIO_BASE_URL": f"/workspaces/{editor_id}/",
            "EMUSTUDIO_WORKSPACE_ID": editor_id,
        },
        mem_limit="2g",
        nano_cpus=1_000_000_000,
        labels={"emustudio.bench": "bare"},
    )
    try:
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        url = f"http://{ip}:8888/workspaces/{editor_id}/emustudio/ready"
        poll(lambda: url)
        return time.monotonic() - started
    finally:
        container.remove(force=True)


def warm_ready(client: docker.DockerClient, instance_id: str, network: str) -> bool:
    """Whether the subnet's warm pool has a container that answers its claim port."""
    labels = [f"emustudio.instance={instance_id}", "emustudio.pool=warm"]
    for container in client.containers.list(filters={"label": labels}):
        ip = container.attrs["NetworkSettings"]["Networks"].get(network, {}).get("IPAddress")
        if "-pool-" in container.name and ip and answers(f"http://{ip}:8888/emustudio/warm"):
            return True
    return False


def gateway_start(
    editors: Any, client: docker.DockerClient, editor_id: str, warm: Any = None
) -> float:
    editors.stop_editor(EditorId=editor_id)
    while editors.describe_editor(EditorId=editor_id)["Editor"]["Status"] != "Idle":
        time.sleep(0.05)
    waited = time.monotonic()
    while warm is not None and not warm():  # untimed: the pool refilling after the last claim
        if time.monotonic() - waited > 300:
            raise TimeoutError("no warm container in the pool")
        time.sleep(0.1)
    started = time.monotonic()
    editors.start_editor(EditorId=editor_id)
    poll(lambda: container_url(client, editor_id))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--pool", type=int, default=0, help="warm containers per subnet")
    args = parser.parse_args()
    client = docker.from_env()
    gateway = GatewayProcess(env={"EMUSTUDIO_WORKSPACE_POOL_SIZE": str(args.pool)}).start()
    try:
        ec2, emr, editors = gateway.client("ec2"), gateway.client("emr"), editors_client(gateway)
        vpc = ec2.create_vpc(CidrBlock="10.181.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.181.{i}.0/24", AvailabilityZone=az)[
                "Subnet"
            ]["SubnetId"]
            for i, az in enumerate(("us-east-1a", "us-east-1b"))
        ]
        sg = [
            ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
            for n in ("ws", "engine")
        ]
        studio = emr.create_studio(
            Name="bench",
            AuthMode="IAM",
            VpcId=vpc,
            SubnetIds=subnets,
            ServiceRole="r",
            WorkspaceSecurityGroupId=sg[0],
            EngineSecurityGroupId=sg[1],
            DefaultS3Location="s3://bench/ws",
        )["StudioId"]
        editor_id = editors.create_editor(StudioId=studio, Name="bench")["EditorId"]
        poll(lambda: container_url(client, editor_id))  # first start builds/checks the image
        image = client.containers.list(filters={"name": f"-{editor_id}$"})[0].image.id
        network = f"emustudio-{gateway.instance_id}-{subnets[0]}"

        bare, through = [], []
        for _ in range(args.rounds):
            bare.append(bare_start(client, image, network))
            warm = (lambda: warm_ready(client, gateway.instance_id, network)) if args.pool else None
            through.append(gateway_start(editors, client, editor_id, warm))

        ids = [
            editors.create_editor(StudioId=studio, Name=f"c{i}")["EditorId"]
            for i in range(args.concurrent)
        ]
        started = time.monotonic()
        times = {}
        pending = set(ids)
        while pending and time.monotonic() - started < 600:
            for eid in list(pending):
                url = container_url(client, eid)
                if url and answers(url):
                    times[eid] = time.monotonic() - started
                    pending.discard(eid)
            time.sleep(0.02)

        bare_med, gw_med = statistics.median(bare), statistics.median(through)
        print(f"image {image}; {args.rounds} rounds each")
        path = f"warm, pool {args.pool}" if args.pool else "cold"
        rows = (
            ("bare docker run -> ready", bare),
            (f"StartEditor -> JupyterLab ready ({path})", through),
        )
        print(f"{'':50}{'median s':>10}{'min s':>8}{'max s':>8}")
        for label, values in rows:
            median = statistics.median(values)
            print(f"{label:50}{median:10.2f}{min(values):8.2f}{max(values):8.2f}")
        print(f"ratio gateway / bare: {gw_med / bare_med:.2f}")
        done = sorted(times.values())
        print(
            f"{args.concurrent} concurrent CreateEditor: first ready {done[0]:.1f} s,"
            f" median {statistics.median(done):.1f} s, last {done[-1]:.1f} s"
            f" ({len(done)}/{args.concurrent} ready)"
        )
    finally:
        gateway.close()
        for c in client.containers.list(all=True, filters={"label": ["emustudio.bench=bare"]}):
            c.remove(force=True)
        client.close()


if __name__ == "__main__":
    main()
