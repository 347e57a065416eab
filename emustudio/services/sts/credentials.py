"""Temporary credentials (``ASIA…`` + session token) as a credential source, served from memory.

STS writes every session to the store and adds it here; at start-up the gateway loads the ones
still worth knowing. An expired session stays known for a day after it expires, so its key is
answered with ``ExpiredToken`` (SigV4 compares the expiration) rather than as an unknown key;
after that it is forgotten.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal
from emustudio.credentials import CredentialSource

EXPIRED_KEPT_SECONDS = 24 * 3600


def principal_to_json(principal: Principal) -> dict[str, Any]:
    """A principal as the store keeps it (the access key id is the row's key)."""
    out = dataclasses.asdict(principal)
    out.pop("access_key_id")
    out["session_policies"] = list(principal.session_policies)
    out["session_tags"] = dict(principal.session_tags)
    out["transitive_tag_keys"] = list(principal.transitive_tag_keys)
    expires = principal.session_expires
    out["session_expires"] = expires.timestamp() if expires is not None else None
    return out


def principal_from_json(access_key_id: str, data: dict[str, Any]) -> Principal:
    fields = {f.name for f in dataclasses.fields(Principal)}
    values = {k: v for k, v in data.items() if k in fields}
    values["access_key_id"] = access_key_id
    values["session_policies"] = tuple(data.get("session_policies") or ())
    values["session_tags"] = dict(data.get("session_tags") or {})
    values["transitive_tag_keys"] = tuple(data.get("transitive_tag_keys") or ())
    expires = data.get("session_expires")
    values["session_expires"] = (
        datetime.fromtimestamp(expires, tz=UTC) if expires is not None else None
    )
    return Principal(**values)


class StsCredentials(CredentialSource):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._sessions: dict[str, tuple[Credential, Principal]] = {}

    def lookup(self, access_key_id: str) -> tuple[Credential, Principal] | None:
        found = self._sessions.get(access_key_id)
        if found is None:
            return None
        expiration = found[0].expiration
        if expiration is not None and self.clock() > expiration.timestamp() + EXPIRED_KEPT_SECONDS:
            del self._sessions[access_key_id]
            return None
        return found

    def add(self, credential: Credential, principal: Principal) -> None:
        self._sessions[credential.access_key_id] = (credential, principal)

    def load(self, sessions: Iterable[tuple[Credential, Principal]]) -> None:
        self._sessions = {c.access_key_id: (c, p) for c, p in sessions}

    def forget_expired(self) -> list[str]:
        """Drop sessions expired for longer than a day; return their key ids."""
        cutoff = self.clock() - EXPIRED_KEPT_SECONDS
        gone = [
            key
            for key, (credential, _) in self._sessions.items()
            if credential.expiration is not None and credential.expiration.timestamp() < cutoff
        ]
        for key in gone:
            del self._sessions[key]
        return gone
