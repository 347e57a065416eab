"""The one way the backup runs blocking work: on a bounded thread pool, off the event loop.

The ``minio`` SDK is synchronous, and so are file I/O on the local spool, hashing and base64 of
large files.  All of it goes through :meth:`Blocking.run`, so at most ``workers`` such calls run
at once and the event loop only ever awaits them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Blocking:
    def __init__(self, workers: int = 8, name: str = "backup") -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
