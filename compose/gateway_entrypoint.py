"""Entry point of the gateway container (compose/Dockerfile.gateway).

``gateway_entrypoint.py [ARGS...]``
    Waits (up to a minute) until the S3 server the gateway is pointed at
    (``EMUSTUDIO_S3_ENDPOINT_URL``, the compose ``s3`` service) answers, since the gateway makes
    its default bucket at start, then replaces itself with ``emustudio up ARGS...``. Without an
    S3 endpoint (the gateway's embedded S3 server) it goes straight to ``emustudio up``.
``gateway_entrypoint.py healthcheck``
    The container's health check: exit 0 when the gateway answers ``/_emustudio/health``.

Standard library only.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

S3_WAIT_SECONDS = 60.0


def healthcheck() -> int:
    port = os.environ.get("EMUSTUDIO_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emustudio/health", timeout=2) as r:
            return 0 if r.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def wait_for_s3(endpoint: str, timeout: float = S3_WAIT_SECONDS) -> bool:
    """True once ``endpoint`` answers HTTP at all (an anonymous request is refused: an answer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(endpoint, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def main(argv: list[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck()
    endpoint = os.environ.get("EMUSTUDIO_S3_ENDPOINT_URL")
    if endpoint and not wait_for_s3(endpoint):
        print(f"gateway: S3 at {endpoint} does not answer; starting anyway", flush=True)
    os.execvp("emustudio", ["emustudio", "up", *argv])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
