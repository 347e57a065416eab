"""S3 through the gateway against the same store directly, in one run on this machine.

* **Throughput.** 64 MB objects, ``PutObject`` and ``GetObject`` with boto3, through the
  gateway's endpoint (SigV4 checked, IAM authorized, the body streamed to the store behind and
  re-signed) and directly to the store (the embedded ``rclone serve s3``), rounds alternating
  and flipping order; MB/s from the median round.
* **Small objects.** 1 KB ``GetObject`` and ``PutObject`` latency, p50 over N calls each way,
  alternating through and direct.

    .venv/bin/python bench/s3.py [--rounds 5] [--small 300] [--as-user]

``--as-user`` sends the gateway's side as an IAM user whose policy allows ``s3:*`` instead of
root, so each call is also authorized (identity policies, the bucket's policy and owner), as a
cluster's role is.

Prints a Markdown table and the load average at start and end (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from botocore.config import Config

from emustudio.testing.gateway import GatewayProcess

BUCKET = "bench-s3"
MB = 1024 * 1024


def client(endpoint: str, key: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )


def timed_put(s3: Any, key: str, body: bytes) -> float:
    start = time.perf_counter()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return time.perf_counter() - start


def timed_get(s3: Any, key: str) -> float:
    start = time.perf_counter()
    s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--as-user", action="store_true", help="an IAM user, not root")
    args = parser.parse_args()
    load_before = os.getloadavg()
    gateway = GatewayProcess().start()
    try:
        state = json.loads((gateway.data_dir / "s3.json").read_text())
        through = client(gateway.endpoint_url, "test", "test")
        if args.as_user:
            iam = gateway.client("iam")
            iam.create_user(UserName="bench")
            allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
            iam.put_user_policy(
                UserName="bench",
                PolicyName="s3",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
            )
            key = iam.create_access_key(UserName="bench")["AccessKey"]
            through = client(gateway.endpoint_url, key["AccessKeyId"], key["SecretAccessKey"])
        direct = client(
            f"http://127.0.0.1:{state['port']}", state["access_key_id"], state["secret_access_key"]
        )
        through.create_bucket(Bucket=BUCKET)
        sides = {"through": through, "direct": direct}
        big = os.urandom(64 * MB)
        put: dict[str, list[float]] = {"through": [], "direct": []}
        get: dict[str, list[float]] = {"through": [], "direct": []}
        for round_ in range(args.rounds):
            order = ["through", "direct"] if round_ % 2 == 0 else ["direct", "through"]
            for side in order:
                s3 = sides[side]
                key = f"big-{side}"
                put[side].append(timed_put(s3, key, big))
                get[side].append(timed_get(s3, key))
        small = os.urandom(1024)
        for s3 in sides.values():
            s3.put_object(Bucket=BUCKET, Key="small", Body=small)
        small_get: dict[str, list[float]] = {"through": [], "direct": []}
        small_put: dict[str, list[float]] = {"through": [], "direct": []}
        for i in range(args.small):
            for side in ["through", "direct"] if i % 2 == 0 else ["direct", "through"]:
                s3 = sides[side]
                small_get[side].append(timed_get(s3, "small"))
                small_put[side].append(timed_put(s3, f"s{i % 10}", small))
    finally:
        gateway.close()
    load_after = os.getloadavg()

    def mbps(values: list[float]) -> float:
        return 64 / statistics.median(values)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    who = "an IAM user" if args.as_user else "root"
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; through as {who}")
    print("| measure | through the gateway | direct to the store | ratio |")
    print("|---|---|---|---|")
    for name, data in (("64 MB PutObject", put), ("64 MB GetObject", get)):
        t, d = mbps(data["through"]), mbps(data["direct"])
        print(f"| {name} | {t:.0f} MB/s | {d:.0f} MB/s | **{t / d:.2f}x** |")
    for name, data in (("1 KB GetObject p50", small_get), ("1 KB PutObject p50", small_put)):
        t, d = ms(data["through"]), ms(data["direct"])
        print(f"| {name} | {t:.2f} ms | {d:.2f} ms | **+{t - d:.2f} ms** |")


if __name__ == "__main__":
    main()
