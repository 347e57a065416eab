"""The engine: one transaction per call, run on a dedicated thread.

A service hands :meth:`Store.tx` a function of a ``Session``; it runs inside ``session.begin()``
on the store's executor, so it commits when the function returns and rolls back everything when it
raises. That is what keeps a rejected request from leaving half-written state. SQLite allows
one writer, so the executor has one thread; a server database would take more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

# Importing the table modules registers them with SQLModel's metadata.
from emustudio.store import audit_tables as _audit_tables  # noqa: F401
from emustudio.store import backup_tables as _backup_tables  # noqa: F401
from emustudio.store import cluster_tables as _cluster_tables  # noqa: F401
from emustudio.store import iam_tables as _iam_tables  # noqa: F401
from emustudio.store import identity_tables as _identity_tables  # noqa: F401
from emustudio.store import s3_tables as _s3_tables  # noqa: F401
from emustudio.store import tables as _tables  # noqa: F401
from emustudio.store import web_tables as _web_tables  # noqa: F401

T = TypeVar("T")


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(
            url, connect_args={"check_same_thread": False} if is_sqlite else {}
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._executor = ThreadPoolExecutor(
            max_workers=1 if is_sqlite else 4, thread_name_prefix="store"
        )

    def create_all(self) -> None:
        SQLModel.metadata.create_all(self.engine)

    async def tx(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn)

    def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction in the calling thread: only for code already
        off the event loop (pysaml2's verification runs in a worker thread)."""
        return self._run(fn)

    def _run(self, fn: Callable[[Session], T]) -> T:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return fn(session)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
