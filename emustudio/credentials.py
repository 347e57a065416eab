"""Who holds which access key: the root credentials from settings, and later IAM users' keys
and STS sessions, each source answering ``lookup`` from memory (SigV4 calls it per request)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal


class CredentialSource(ABC):
    @abstractmethod
    def lookup(self, access_key_id: str) -> tuple[Credential, Principal] | None:
        """The credential and its principal, or None when this source does not know the key."""

    def record_use(self, access_key_id: str, service: str, region: str) -> None:  # noqa: B027
        """Note that the key signed an accepted request (IAM's GetAccessKeyLastUsed); most
        sources keep no such record, so the default does nothing."""


class RootCredentials(CredentialSource):
    def __init__(self, access_key_id: str, secret_access_key: str, account_id: str) -> None:
        self.credential = Credential(access_key_id, secret_access_key)
        self.principal = Principal(
            kind="Root",
            arn=f"arn:aws:iam::{account_id}:root",
            account_id=account_id,
            access_key_id=access_key_id,
            name="root",
            user_id=account_id,
        )

    def lookup(self, access_key_id: str) -> tuple[Credential, Principal] | None:
        if access_key_id == self.credential.access_key_id:
            return self.credential, self.principal
        return None


class Credentials:
    """Asks each source in turn."""

    def __init__(self, sources: list[CredentialSource]) -> None:
        self.sources = sources

    def lookup(self, access_key_id: str) -> tuple[Credential, Principal] | None:
        for source in self.sources:
            found = source.lookup(access_key_id)
            if found is not None:
                return found
        return None

    def record_use(self, access_key_id: str, service: str, region: str) -> None:
        for source in self.sources:
            source.record_use(access_key_id, service, region)
