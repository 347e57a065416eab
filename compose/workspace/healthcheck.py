"""Docker HEALTHCHECK of a Workspace: GET <base_url>emustudio/ready on the local server.

Run as `python3 -I -S healthcheck.py`: no site-packages, only the socket module, so a probe
costs a few milliseconds. Docker runs the first probe one interval after the container starts
(dockerd before 25 has no start_interval). Until the server has answered once, a probe keeps
trying for up to WAIT seconds, so the "healthy" event follows the server's start within about
POLL seconds instead of a whole interval later. Afterwards each probe is a single request.
"""

import os
import socket
import sys
import time

PORT = 8888
WAIT = 8.0
POLL = 0.05
MARK = "/tmp/.emustudio-healthy"


def probe(path: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{PORT}\r\n\r\n".encode())
            status = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status.split(b" ")[1:2] == [b"200"]


def main() -> int:
    base = "/" + os.environ.get("EMUSTUDIO_BASE_URL", "/").strip("/") + "/"
    path = base.replace("//", "/") + "emustudio/ready"
    started = os.path.exists(MARK)
    deadline = time.monotonic() + (0 if started else WAIT)
    while True:
        if probe(path):
            if not started:
                with open(MARK, "w"):
                    pass
            return 0
        if time.monotonic() >= deadline:
            return 1
        time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main())
