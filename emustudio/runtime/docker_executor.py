"""A small bridge between the asyncio gateway and the blocking docker SDK.

The docker SDK speaks HTTP over the daemon's unix socket with ``requests``, so
every call blocks.  The gateway runs on Tornado's asyncio loop, which must never
block, so every docker call goes through :class:`DockerExecutor`: it runs the
call on a small, bounded thread pool.  The bound matters because dockerd
serialises much of its work anyway, and an unbounded fan-out (e.g. a reconcile
touching hundreds of networks) would only queue inside the daemon while holding
sockets open.

The executor is shared by everything in the runtime room (subnet networks now,
Workspace and cluster containers later): create one per gateway and pass it in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import docker

__all__ = ["DockerExecutor", "ExecutorClosed"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ExecutorClosed(RuntimeError):
    """Raised by :meth:`DockerExecutor.run` after :meth:`DockerExecutor.close`."""


class DockerExecutor:
    """Runs blocking docker SDK calls off the event loop on a bounded thread pool.

    The pool has ``max_workers`` threads (default 4).

    The :class:`docker.DockerClient` is created lazily, on first use and inside
    the pool: ``docker.from_env()`` already talks to the daemon (it negotiates
    the API version), so creating it in ``__init__`` would block the loop and
    would fail gateway start-up outright when dockerd is briefly unavailable.
    A failed creation is not cached; the next call tries again.
    """

    def __init__(self, base_url: str | None = None, max_workers: int = 4) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._base_url = base_url
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="emustudio-docker"
        )
        # Guards lazy client creation: several pool threads may race for it.
        self._client_lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._closed = False

    @property
    def base_url(self) -> str | None:
        return self._base_url

    def _get_client(self) -> docker.DockerClient:
        # Runs in a pool thread (see _call), never on the loop.
        with self._client_lock:
            if self._client is None:
                if self._base_url is None:
                    self._client = docker.from_env()
                else:
                    self._client = docker.DockerClient(base_url=self._base_url)
            return self._client

    def _call(self, fn: Callable[[docker.DockerClient], T]) -> T:
        return fn(self._get_client())

    async def run(self, fn: Callable[[docker.DockerClient], T]) -> T:
        """Run ``fn(client)`` in the pool and return its result (exceptions propagate)."""
        if self._closed:
            raise ExecutorClosed("DockerExecutor is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    async def ping(self) -> bool:
        """True if the daemon answers; no socket, refused or timed out is False."""
        try:
            return bool(await self.run(lambda client: client.ping()))
        except ExecutorClosed:
            raise
        except Exception as exc:  # the SDK raises DockerException, requests and OS errors alike
            log.debug("docker ping failed: %s", exc)
            return False

    def close(self) -> None:
        """Stop the pool (queued calls are cancelled, running ones finish) and close the client.

        Idempotent.  Blocks until in-flight docker calls return, because closing
        the client under a running call would fail that call half-way.
        """
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None
