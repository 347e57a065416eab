"""What one small S3 call costs the gateway, counted rather than timed: Python function calls,
event-loop turns and CPU time per 1 KB ``GetObject`` and per 1 KB ``PutObject``.

Counts do not depend on the machine's load, unlike ``bench/s3.py``'s timings, so they compare
two versions of the code on a shared machine. The gateway runs with cProfile switched on and off
by signals (``SIGUSR1``/``SIGUSR2``) around N calls of one kind after a warm-up; the stats are
the event loop's thread only (the store's own thread and ``rclone`` are outside them). CPU is the
gateway process's (every thread), from ``/proc``, over N other calls made without the profiler.

    .venv/bin/python bench/s3_profile.py [--calls 300] [--big 3] [--as-user] [--top 25]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from bench.s3 import BUCKET, client
from emustudio.testing.gateway import GatewayProcess

# Run in the gateway's process: cProfile on at SIGUSR1, off and dumped at SIGUSR2.
_PROFILED = """
import cProfile, signal, sys
from emustudio.cli import main
profiler = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
def dump(*_):
    profiler.disable()
    profiler.dump_stats(sys.argv[1])
    profiler.clear()
signal.signal(signal.SIGUSR2, dump)
sys.exit(main(["up"]))
"""


class ProfiledGateway(GatewayProcess):
    def __init__(self, stats: Path) -> None:
        super().__init__()
        self.stats = stats

    def start(self, timeout: float = 60.0) -> ProfiledGateway:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _PROFILED, str(self.stats)],
                env=self.environ(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/_emustudio/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(self.log())


def measure(
    gateway: ProfiledGateway, calls: int, call: Any, warm: int = 20
) -> tuple[pstats.Stats, float]:
    """The profile of ``calls`` calls, and the CPU seconds of as many others, unprofiled."""
    assert gateway.proc is not None
    process = psutil.Process(gateway.proc.pid)
    for _ in range(warm):
        call()  # warm: connections, caches, imports on first use
    cpu = process.cpu_times()
    for _ in range(calls):
        call()
    after = process.cpu_times()
    used = (after.user + after.system) - (cpu.user + cpu.system)
    gateway.stats.unlink(missing_ok=True)
    gateway.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    for _ in range(calls):
        call()
    gateway.proc.send_signal(signal.SIGUSR2)
    while not gateway.stats.exists():
        time.sleep(0.05)
    time.sleep(0.2)
    return pstats.Stats(str(gateway.stats)), used


def loop_turns(stats: pstats.Stats) -> int:
    turns = 0
    for (path, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if name == "_run_once" and path.endswith("base_events.py"):
            turns += row[1]
    return turns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--as-user", action="store_true")
    parser.add_argument("--top", type=int, default=0, help="print the top N by own time")
    parser.add_argument("--keep", type=Path, help="a directory to keep the stats files in")
    parser.add_argument("--big", type=int, default=0, help="also N calls of 64 MB each way")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        gateway = ProfiledGateway(Path(tmp) / "stats")
        gateway.start()
        try:
            key, secret = "test", "test"
            if args.as_user:
                iam = gateway.client("iam")
                iam.create_user(UserName="bench")
                allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
                iam.put_user_policy(
                    UserName="bench",
                    PolicyName="s3",
                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
                )
                made = iam.create_access_key(UserName="bench")["AccessKey"]
                key, secret = made["AccessKeyId"], made["SecretAccessKey"]
            s3 = client(gateway.endpoint_url, key, secret)
            s3.create_bucket(Bucket=BUCKET)
            small = os.urandom(1024)
            s3.put_object(Bucket=BUCKET, Key="small", Body=small)
            kinds = {
                "1 KB GetObject": lambda: s3.get_object(Bucket=BUCKET, Key="small")["Body"].read(),
                "1 KB PutObject": lambda: s3.put_object(Bucket=BUCKET, Key="put", Body=small),
            }
            counts = dict.fromkeys(kinds, args.calls)
            if args.big:
                big = os.urandom(64 * 1024 * 1024)
                s3.put_object(Bucket=BUCKET, Key="big", Body=big)
                kinds["64 MB GetObject"] = lambda: s3.get_object(Bucket=BUCKET, Key="big")[
                    "Body"
                ].read()
                kinds["64 MB PutObject"] = lambda: s3.put_object(Bucket=BUCKET, Key="bp", Body=big)
                counts["64 MB GetObject"] = counts["64 MB PutObject"] = args.big
            print(f"load average {load:.2f}; calls: {counts}")
            print("| call | Python calls | event-loop turns | gateway CPU |")
            print("|---|---|---|---|")
            for name, call in kinds.items():
                n = counts[name]
                stats, cpu = measure(gateway, n, call, warm=min(n, 20))
                total = stats.total_calls  # type: ignore[attr-defined]
                print(
                    f"| {name} | {total / n:.0f} | "
                    f"{loop_turns(stats) / n:.1f} | {cpu / n * 1000:.2f} ms |"
                )
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    stats.dump_stats(str(args.keep / (name.replace(" ", "-") + ".prof")))
                if args.top:
                    stats.sort_stats("tottime").print_stats(args.top)
        finally:
            gateway.close()


if __name__ == "__main__":
    main()
