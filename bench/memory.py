"""The gateway's memory: its RSS idle after start-up and after a round of API calls.

One gateway (``emustudio up`` in a child process, its own data dir, no warm pool) per mode:

* ``embedded``: the default, the gateway with its ``rclone serve s3`` child;
* ``demo``: the same with the demo set up (the built-in IdP, federation, the Demo Studio), as a
  plain ``emustudio up`` runs.

For each, the RSS of the gateway alone and of its S3 child (psutil), read ``--settle``
seconds after the gateway answers, then again after one round of calls to every service it
serves (EMR, Workspaces, EC2, IAM, STS, CloudTrail, Identity Store, IAM Identity Center, S3 with
a PUT and GET of 1 MB) and ``--settle`` seconds of quiet. The gateway's RSS is also split into
its own pages (USS) and the file pages it shares (its shared libraries), and the child's into
its heap and the pages of rclone's binary it touched.

``--env NAME=VALUE`` (repeatable) runs the gateways with more environment, to try a knob
(``GOMEMLIMIT=16MiB`` for the S3 child, say) against a run without it.

    .venv/bin/python bench/memory.py [--settle 5] [--modes embedded,demo] [--env NAME=VALUE]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import psutil

from emustudio.testing.gateway import GatewayProcess

AIM_MB = 120.0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mb(proc: psutil.Process) -> tuple[float, float]:
    """The process's RSS and that of its children, in MB."""
    own = proc.memory_info().rss / 1e6
    children = sum(c.memory_info().rss for c in proc.children(recursive=True)) / 1e6
    return own, children


def split_mb(proc: psutil.Process) -> dict[str, float]:
    """Where the RSS is: the gateway's own pages (USS) and the child's heap (``RssAnon``) and
    mapped binary (``RssFile``), from /proc, in MB."""

    def status(pid: int) -> dict[str, float]:
        fields = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    fields[key] = int(value.split()[0]) * 1024 / 1e6
        return fields

    found = {"uss": proc.memory_full_info().uss / 1e6}
    for child in proc.children(recursive=True):
        for key, value in status(child.pid).items():
            found[f"child {key}"] = found.get(f"child {key}", 0.0) + value
    return found


def api_round(gateway: GatewayProcess) -> None:
    c = gateway.client
    c("emr").list_clusters()
    c("emr").list_studios()
    c("emr-studio").list_editors()
    ec2 = c("ec2")
    ec2.describe_vpcs()
    ec2.describe_subnets()
    ec2.describe_security_groups()
    c("iam").list_users()
    c("iam").list_roles()
    c("sts").get_caller_identity()
    c("cloudtrail").lookup_events(MaxResults=5)
    instances = c("sso-admin").list_instances()["Instances"]
    if instances:
        c("identitystore").list_users(IdentityStoreId=instances[0]["IdentityStoreId"])
    s3 = c("s3")
    s3.create_bucket(Bucket="bench-memory")
    s3.put_object(Bucket="bench-memory", Key="one-mb", Body=b"x" * 1_000_000)
    s3.get_object(Bucket="bench-memory", Key="one-mb")["Body"].read()
    s3.list_objects_v2(Bucket="bench-memory")


def measure(mode: str, settle: float, extra_env: dict[str, str]) -> dict[str, Any]:
    env = {"EMUSTUDIO_DEMO": "true"} if mode == "demo" else {}
    env.update(extra_env)
    gateway = GatewayProcess(env=env).start()
    try:
        assert gateway.proc is not None
        proc = psutil.Process(gateway.proc.pid)
        time.sleep(settle)
        idle, idle_split = rss_mb(proc), split_mb(proc)
        api_round(gateway)
        time.sleep(settle)
        busy, busy_split = rss_mb(proc), split_mb(proc)
        return {
            "mode": mode,
            "idle": idle,
            "busy": busy,
            "idle split": idle_split,
            "busy split": busy_split,
        }
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--modes", default="embedded,demo")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    print(f"load average at start {load()}" + (f"; with {extra_env}" if extra_env else ""))
    print(f"{'mode':10} {'when':22} {'gateway':>9} {'S3 child':>9} {'in all':>9}  aim")
    for mode in args.modes.split(","):
        result = measure(mode, args.settle, extra_env)
        for when, key in (("idle after start", "idle"), ("after a round of calls", "busy")):
            own, child = result[key]
            alone = "met" if own <= AIM_MB else "not met"
            in_all = "met" if own + child <= AIM_MB else "not met"
            split = "  ".join(f"{k} {v:.1f}M" for k, v in result[f"{key} split"].items())
            print(
                f"{mode:10} {when:22} {own:8.1f}M {child:8.1f}M {own + child:8.1f}M"
                f"  <= {AIM_MB:.0f} MB: gateway {alone}, in all {in_all}"
            )
            print(f"{'':33} ({split})")
    print(f"load average at end {load()}")


if __name__ == "__main__":
    main()
