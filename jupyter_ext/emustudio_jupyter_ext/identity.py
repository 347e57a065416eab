"""The Workspace server's token, which code running in the Workspace cannot read.

The gateway knows the token; the server is given only its SHA-256 (``token_sha256``) and checks
a presented token (``Authorization: token …`` or ``?token=``) against it in constant time. So
neither the container's configuration, nor any process's environment (``/proc/1/environ`` of
Docker's init keeps the initial environment for the container's life), nor the server's
``jpserver-*.json`` runtime file, nor the JupyterLab page holds anything that opens the server:
the token is 32 random bytes, a hash of it gives nothing to replay.

The one place the token passes is the server's memory, in each request the gateway forwards.
Kernels run as the same user, so :func:`protect_process` makes the server non-dumpable before
it serves: Linux then refuses a process of the same uid without ``CAP_SYS_PTRACE`` (dropped in
every Workspace) ``ptrace``, ``/proc/<pid>/mem``, ``environ``, ``fd``, and gives the
``/proc/<pid>`` files to root. The login cookie's secret lives only in memory too
(``ServerApp.cookie_secret``), never in the runtime directory kernels can read.

docs/decisions.md ("A token user code cannot read") has the reasoning.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import Unicode

__all__ = ["HashedTokenIdentityProvider", "protect_process", "token_sha256"]

_PR_SET_DUMPABLE = 4


def token_sha256(token: str) -> str:
    """What the gateway hands the server for ``token`` (hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def protect_process() -> None:
    """Make this process non-dumpable: same-uid processes (kernels, terminals) can no longer
    ptrace it or read its memory, environment or file descriptors through /proc."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


class HashedTokenIdentityProvider(IdentityProvider):  # type: ignore[misc]
    """jupyter_server's token identity provider, holding only the token's SHA-256."""

    token_sha256 = Unicode(
        "",
        config=True,
        help="Hex SHA-256 of the token the gateway presents; the token itself is never given.",
    )

    def _matches(self, presented: str) -> bool:
        wanted = self.token_sha256.strip().lower()
        return bool(presented and wanted) and hmac.compare_digest(token_sha256(presented), wanted)

    @property
    def auth_enabled(self) -> bool:
        return True

    async def get_user_token(self, handler: Any) -> User | None:
        if not self._matches(self.get_token(handler)):
            return None
        user = self.get_user_cookie(handler)
        if hasattr(user, "__await__"):
            user = await user
        return user or self.generate_anonymous_user(handler)

    def process_login_form(self, handler: Any) -> User | None:
        typed = handler.get_argument("password", default="")
        return self.generate_anonymous_user(handler) if self._matches(typed) else None
