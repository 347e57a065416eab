"""What the EMR operations share: the error type, Marker pages and the Studio lookup."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlmodel import Session

from emustudio.aws.errors import AwsError
from emustudio.services import pages
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
        return pages.page(items, marker, self.page_size, InvalidRequest("Invalid marker."))


def with_marker(result: dict[str, Any], marker: str | None) -> dict[str, Any]:
    return pages.with_token(result, marker, "Marker")


class ValidationException(AwsError):
    """What EMR answers a ``RunJobFlow`` it cannot accept (a bad role, subnet, application)."""

    code = "ValidationException"


def cluster_not_valid(cluster_id: str) -> InvalidRequest:
    return InvalidRequest(f"Cluster id '{cluster_id}' is not valid.")
