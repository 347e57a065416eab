"""IAM users' access keys as a credential source, served from memory.

The IAM service loads every active key at start-up and replaces a user's entries after each
change that touches them (a key created, deleted, activated or deactivated, the user renamed or
moved), so SigV4 never waits for the store. Inactive keys are absent: they sign nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal
from emustudio.credentials import CredentialSource


@dataclass(frozen=True)
class KeyEntry:
    user_id: str
    credential: Credential
    principal: Principal


@dataclass
class KeyUse:
    """When and where a key last signed a request (``GetAccessKeyLastUsed``)."""

    at: float
    service: str | None = None
    region: str | None = None


class IamCredentials(CredentialSource):
    def __init__(self) -> None:
        self._keys: dict[str, KeyEntry] = {}
        self._uses: dict[str, KeyUse] = {}

    def lookup(self, access_key_id: str) -> tuple[Credential, Principal] | None:
        entry = self._keys.get(access_key_id)
        if entry is None:
            return None
        return entry.credential, entry.principal

    def load(self, entries: Iterable[KeyEntry]) -> None:
        self._keys = {e.credential.access_key_id: e for e in entries}

    def replace_user(self, user_id: str, entries: Iterable[KeyEntry]) -> None:
        """Make ``entries`` the user's only keys here (empty: the user has no active key)."""
        for key_id in [k for k, e in self._keys.items() if e.user_id == user_id]:
            del self._keys[key_id]
        for entry in entries:
            self._keys[entry.credential.access_key_id] = entry

    def record_use(
        self, access_key_id: str, service: str | None = None, region: str | None = None
    ) -> None:
        """Note that a key signed a request; the gateway calls it after SigV4 accepted one."""
        if access_key_id in self._keys:
            self._uses[access_key_id] = KeyUse(float(int(time.time())), service, region)

    def last_use(self, access_key_id: str) -> KeyUse | None:
        return self._uses.get(access_key_id)

    def forget(self, access_key_id: str) -> None:
        self._uses.pop(access_key_id, None)
