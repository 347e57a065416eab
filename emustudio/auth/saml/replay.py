"""One-time use of SAML assertion IDs and request IDs.

A verified assertion can be posted again by whoever saw it (browser history, a proxy log); the
SP must accept each ``Assertion/@ID`` once, until the assertion expires. pysaml2 keeps no such
cache, so :func:`~emustudio.auth.saml.verify.verify_saml_response` asks a :class:`ReplayCache`.
The gateway's is :class:`StoreReplayCache`: the IDs are in the store, so a restart within an
assertion's lifetime does not make it usable again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete

from emustudio.store import Store
from emustudio.store.web_tables import SamlReplay


class ReplayCache(Protocol):
    def claim(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); False if it is already held."""
        ...


class InMemoryReplayCache:
    """A process-local :class:`ReplayCache`; expired entries are dropped as claims come in."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            held = self._entries.get(key)
            if held is not None and held > now:
                return False
            if len(self._entries) >= self._max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v > now}
                if len(self._entries) >= self._max_entries:
                    # Full of live entries: refusing is safer than forgetting one.
                    return False
            self._entries[key] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._entries)


class StoreReplayCache:
    """A :class:`ReplayCache` in the store. ``claim`` runs a transaction in the calling thread
    (verification already runs off the event loop); expired IDs go as claims come in."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def claim(self, key: str, expires_at: float) -> bool:
        now = self._clock()

        def claim(session: Session) -> bool:
            session.exec(delete(SamlReplay).where(col(SamlReplay.expires_at) <= now))
            if session.get(SamlReplay, key) is not None:
                return False
            session.add(SamlReplay(key=key, expires_at=expires_at))
            return True

        try:
            return self.store.run(claim)
        except IntegrityError:  # claimed by another thread between the read and the write
            return False
