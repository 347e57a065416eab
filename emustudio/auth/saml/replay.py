"""One-time use of SAML assertion IDs and request IDs.

A verified assertion can be posted again by whoever saw it (browser history, a proxy log); the
SP must accept each ``Assertion/@ID`` once, until the assertion expires. pysaml2 keeps no such
cache, so :func:`~emustudio.auth.saml.verify.verify_saml_response` asks a :class:`ReplayCache`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


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
