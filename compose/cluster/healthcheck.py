"""Docker HEALTHCHECK of an EMR node (python3 -I -S: the socket module only).

master: the Spark master (8080), the history server (18080) and the gateway (18888) accept
connections. core/task: the worker has registered with the master (node.py leaves a mark).
"""

import os
import socket
import sys


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    if os.environ.get("EMR_NODE_ROLE", "master") == "master":
        return 0 if all(listening(p) for p in (8080, 18080, 18888)) else 1
    return 0 if os.path.exists("/tmp/.emr-worker-registered") else 1


if __name__ == "__main__":
    sys.exit(main())
