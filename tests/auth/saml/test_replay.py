"""One-time use of SAML IDs in the store (`StoreReplayCache`), on a real SQLite file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from emustudio.auth.saml import StoreReplayCache
from emustudio.store import Store


def store_at(path: Path) -> Store:
    store = Store(f"sqlite:///{path}")
    store.create_all()
    return store


def test_an_id_is_good_once_until_it_expires(tmp_path: Path) -> None:
    now = [1000.0]
    cache = StoreReplayCache(store_at(tmp_path / "s.db"), clock=lambda: now[0])
    assert cache.claim("assertion:idp:_a1", 1300.0)
    assert not cache.claim("assertion:idp:_a1", 1300.0)
    assert cache.claim("assertion:idp:_a2", 1300.0)  # another ID is another ID
    now[0] = 1301.0  # expired: the entry is gone, and the assertion itself no longer verifies
    assert cache.claim("assertion:idp:_a1", 1600.0)


def test_a_claim_survives_a_restart(tmp_path: Path) -> None:
    first = store_at(tmp_path / "s.db")
    assert StoreReplayCache(first, clock=lambda: 0.0).claim("request:id-1", 60.0)
    first.close()
    again = StoreReplayCache(store_at(tmp_path / "s.db"), clock=lambda: 1.0)
    assert not again.claim("request:id-1", 60.0)


def test_concurrent_claims_of_one_id_admit_exactly_one(tmp_path: Path) -> None:
    cache = StoreReplayCache(store_at(tmp_path / "s.db"), clock=lambda: 0.0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: cache.claim("assertion:idp:_race", 60.0), range(16)))
    assert results.count(True) == 1
