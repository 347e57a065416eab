"""A warm Workspace server: JupyterLab imported, waiting to be claimed (``emustudio-warm``).

The gateway keeps a few of these per Studio subnet (its warm pool).  Importing jupyter_server,
JupyterLab and their extensions is most of a server's start (about 2 s of CPU of 2.3 s); done
ahead, the server is up about 0.25 s after its claim.  Until then the process holds nothing of
anyone: no token, no user, no files (the home directory is the image's, empty), no credentials.

It listens on the server's port for exactly one claim, ``POST /emustudio/claim`` with JSON
``{"key", "token_sha256", "base_url", "allow_origin", "env"}``:

* ``key`` must equal the one-time claim key the gateway gave the container at creation
  (``EMUSTUDIO_CLAIM_KEY``, removed from the environment at once).  Anything else on the
  subnet network cannot claim it; after the claim the key opens nothing, so it does not matter
  that the container's first environment still shows it.
* ``token_sha256`` is the SHA-256 of the server's token, what a cold start passes in
  EMUSTUDIO_JUPYTER_TOKEN_SHA256 (:mod:`.identity`: the server never holds the token itself).
  It stays in this process's memory (jupyter_server_config.py reads :data:`claimed`), which
  the config makes non-dumpable before JupyterLab starts.
* ``env`` is the Workspace's identity (``EMUSTUDIO_WORKSPACE_ID``, ``EMUSTUDIO_STUDIO_ID``...):
  put in the environment, so kernels see it, as they would in a container made for it.

Then the listener closes and JupyterLab starts in this process on the same port; the gateway
waits for ``GET /emustudio/ready`` as for any start.  Before the claim, ``GET /emustudio/warm``
answers 200 (the pool's readiness) and every other request 404.
"""

from __future__ import annotations

import hmac
import http.server
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from emustudio_jupyter_ext.identity import protect_process

CLAIM_KEY_ENV = "EMUSTUDIO_CLAIM_KEY"
PORT = 8888
_MAX_BODY = 65536
# Only these may be set by a claim; PATH, PYTHONPATH, LD_* and the like never.
_ENV_PREFIX = "EMUSTUDIO_"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Claim:
    token_sha256: str
    base_url: str = "/"
    allow_origin: str = ""
    env: dict[str, str] = field(default_factory=dict)


# Set once, by main(), before JupyterLab reads its config in this process.
claimed: Claim | None = None


def parse_claim(body: bytes, key: str) -> Claim | None:
    """The claim in ``body`` if it carries ``key`` and a usable token; None otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    given, digest = data.get("key"), data.get("token_sha256")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), key.encode()):
        return None
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return None
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and k.startswith(_ENV_PREFIX) and isinstance(v, str)
        for k, v in env.items()
    ):
        return None
    base_url = data.get("base_url") or "/"
    origin = data.get("allow_origin") or ""
    if not isinstance(base_url, str) or not isinstance(origin, str):
        return None
    return Claim(digest, base_url, origin, dict(env))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ClaimServer
    # A connection that sends nothing is dropped after this: it cannot hold off the claim.
    timeout = 2.0

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/emustudio/warm" else 404, {"warm": True})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/emustudio/claim" or not 0 < length <= _MAX_BODY:
            self._answer(404, {"claimed": False})
            return
        claim = parse_claim(self.rfile.read(length), self.server.key)
        if claim is None:
            self._answer(403, {"claimed": False})
            return
        self.server.claim = claim
        self._answer(200, {"claimed": True})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every 50 ms would fill the container's log


class _ClaimServer(http.server.HTTPServer):
    def __init__(self, key: str) -> None:
        super().__init__(("0.0.0.0", PORT), _Handler)
        self.key = key
        self.claim: Claim | None = None


def wait_for_claim(key: str) -> Claim:
    """Serve the port until one request carries ``key``; then close it and return the claim."""
    with _ClaimServer(key) as server:
        while server.claim is None:
            server.handle_request()
        return server.claim


def main() -> None:
    global claimed
    key = os.environ.pop(CLAIM_KEY_ENV, "")
    if len(key) < 16:
        raise SystemExit(f"{CLAIM_KEY_ENV} is not set: a warm Workspace needs its claim key")
    protect_process()  # its memory holds the claim key, then the token's hash
    # What a server's start spends its time on, done before anyone waits for it.
    import jupyter_server.serverapp
    import jupyter_server.services.contents.largefilemanager
    import jupyter_server.services.kernels.kernelmanager  # noqa: F401
    import jupyterlab_server  # noqa: F401
    from jupyterlab.labapp import LabApp

    claim = wait_for_claim(key)
    os.environ.update(claim.env)
    claimed = claim
    sys.argv = ["jupyter-lab"]
    LabApp.launch_instance()


if __name__ == "__main__":
    main()
