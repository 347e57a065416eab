"""What the EMR operations share: the error type, Marker pages and the Studio lookup."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlmodel import Session

from emustudio.aws.errors import AwsError
from emustudio.services.base import Service
from emustudio.store import Store
from emustudio.store.tables import Studio

T = TypeVar("T")


class InvalidRequest(AwsError):
    """EMR's client error: ``InvalidRequestException`` with an optional ``ErrorCode``."""

    code = "InvalidRequestException"

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        if error_code:
            self.extra["ErrorCode"] = error_code


class InternalServerException(AwsError):
    code = "InternalServerException"
    status = 500
    sender_fault = False


STUDIO_NOT_FOUND = "Studio does not exist"


class EmrBase(Service):
    name = "emr"

    def __init__(
        self,
        store: Store,
        *,
        region: str,
        account_id: str,
        studio_url: str,
        page_size: int = 50,
        max_studios: int = 100,
    ) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.studio_url_template = studio_url
        self.page_size = page_size
        self.max_studios = max_studios

    @staticmethod
    def now() -> float:
        return time.time()

    def studio_url(self, studio_id: str) -> str:
        return self.studio_url_template.format(studio_id=studio_id)

    def get_studio_or_raise(self, session: Session, studio_id: str) -> Studio:
        studio = session.get(Studio, studio_id)
        if studio is None or studio.region != self.region:
            raise InvalidRequest(STUDIO_NOT_FOUND)
        return studio

    def page(self, items: Sequence[T], marker: str | None) -> tuple[list[T], str | None]:
        """One page and the ``Marker`` of the next; a Marker is opaque to clients."""
        start = 0
        if marker:
            try:
                start = int(base64.urlsafe_b64decode(marker.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise InvalidRequest("Invalid marker.") from None
        end = start + self.page_size
        next_marker = base64.urlsafe_b64encode(str(end).encode()).decode()
        return list(items[start:end]), next_marker if end < len(items) else None


def with_marker(result: dict[str, Any], marker: str | None) -> dict[str, Any]:
    if marker:
        result["Marker"] = marker
    return result


class ValidationException(AwsError):
    """What EMR answers a ``RunJobFlow`` it cannot accept (a bad role, subnet, application)."""

    code = "ValidationException"


def cluster_not_valid(cluster_id: str) -> InvalidRequest:
    return InvalidRequest(f"Cluster id '{cluster_id}' is not valid.")
