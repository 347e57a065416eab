"""CloudTrail: ``LookupEvents`` over the event history the gateway records (``audit.py``).

As AWS's event history: management events of the last 90 days, newest first, at most 50 a page
(``MaxResults``, default 50), filtered by one lookup attribute and a time range. The model's
constraints (``MaxResults`` 1..50, the ``AttributeKey`` enum, ``AttributeValue`` 1..2000
characters) are checked by the gateway's validation before this service runs; what the model
cannot say is checked here:

* only the first lookup attribute counts, the rest are ignored (as a live account does);
* ``AttributeValue`` counts ``_``, space, ``,`` and newline as two characters towards 2000;
* ``StartTime`` after ``EndTime`` is ``InvalidTimeRangeException``;
* a ``NextToken`` is opaque and bound to the parameters of the call that returned it; another
  call's token, or garbage, is ``InvalidNextTokenException``;
* ``EventCategory=insight`` finds nothing: emustudio records no Insights events.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from emustudio.aws.errors import AwsError
from emustudio.aws.protocol.base import epoch_seconds
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import Service, operation
from emustudio.store import Store
from emustudio.store.audit_tables import RESOURCE_SEPARATOR, AuditEvent

RETENTION_SECONDS = 90 * 24 * 3600
DEFAULT_MAX_RESULTS = 50
MAX_ATTRIBUTE_LENGTH = 2000


class InvalidLookupAttributes(AwsError):
    code = "InvalidLookupAttributesException"


class InvalidTimeRange(AwsError):
    code = "InvalidTimeRangeException"


class InvalidMaxResults(AwsError):
    code = "InvalidMaxResultsException"


class InvalidNextToken(AwsError):
    code = "InvalidNextTokenException"


def _weighted_length(value: str) -> int:
    return len(value) + sum(value.count(c) for c in ("_", " ", ",", "\n"))


def _contains(column: Any, value: str) -> ColumnElement[bool]:
    token = f"{RESOURCE_SEPARATOR}{value}{RESOURCE_SEPARATOR}"
    clause: ColumnElement[bool] = col(column).contains(token, autoescape=True)
    return clause


def _attribute_filter(key: str, value: str) -> ColumnElement[bool] | None:
    """The WHERE clause of one lookup attribute; None when nothing can match."""
    if key == "EventId":
        return col(AuditEvent.event_id) == value
    if key == "EventName":
        return col(AuditEvent.event_name) == value
    if key == "EventSource":
        return col(AuditEvent.event_source) == value
    if key == "Username":
        return col(AuditEvent.username) == value
    if key == "AccessKeyId":
        return col(AuditEvent.access_key_id) == value
    if key == "ReadOnly":
        if value not in ("true", "false"):
            return None
        return col(AuditEvent.read_only) == (value == "true")
    if key == "ResourceType":
        return _contains(AuditEvent.resource_types, value)
    if key == "ResourceName":
        return _contains(AuditEvent.resource_names, value)
    raise InvalidLookupAttributes(f"Lookup attribute key '{key}' is not valid.")


def _fingerprint(params: dict[str, Any]) -> str:
    attributes = params.get("LookupAttributes") or []
    return pages.fingerprint(
        {
            "attribute": attributes[0] if attributes else None,
            "start": epoch_seconds(params["StartTime"]) if params.get("StartTime") else None,
            "end": epoch_seconds(params["EndTime"]) if params.get("EndTime") else None,
            "category": params.get("EventCategory"),
        }
    )


def _event_shape(row: AuditEvent) -> dict[str, Any]:
    types = [t for t in row.resource_types.split(RESOURCE_SEPARATOR) if t]
    names = [n for n in row.resource_names.split(RESOURCE_SEPARATOR) if n]
    event: dict[str, Any] = {
        "EventId": row.event_id,
        "EventName": row.event_name,
        "ReadOnly": "true" if row.read_only else "false",
        "AccessKeyId": row.access_key_id,
        "EventTime": datetime.fromtimestamp(row.event_time, UTC),
        "EventSource": row.event_source,
        "Username": row.username,
        "Resources": [
            {"ResourceType": t, "ResourceName": n} for t, n in zip(types, names, strict=False)
        ],
        "CloudTrailEvent": row.record,
    }
    return {k: v for k, v in event.items() if v is not None}


class CloudTrailService(Service):
    name = "cloudtrail"

    def __init__(self, store: Store, *, region: str, account_id: str) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id

    @operation("LookupEvents")
    async def lookup_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        max_results = params.get("MaxResults", DEFAULT_MAX_RESULTS)
        if not 1 <= max_results <= DEFAULT_MAX_RESULTS:
            raise InvalidMaxResults(
                f"Value {max_results} for MaxResults is invalid; it must be between 1 and 50."
            )
        start, end = params.get("StartTime"), params.get("EndTime")
        if start is not None and end is not None and start > end:
            raise InvalidTimeRange("Start time must be before or equal to end time.")

        clauses: list[ColumnElement[bool]] = [col(AuditEvent.region) == self.region]
        attributes = params.get("LookupAttributes") or []
        if attributes:
            first = attributes[0]
            value = first["AttributeValue"]
            if _weighted_length(value) > MAX_ATTRIBUTE_LENGTH:
                raise InvalidLookupAttributes(
                    "The attribute value must be at most 2000 characters, counting '_', ' ',"
                    " ',' and '\\n' as two."
                )
            clause = _attribute_filter(first["AttributeKey"], value)
            if clause is None:
                return {"Events": []}
            clauses.append(clause)
        if params.get("EventCategory") == "insight":
            return {"Events": []}

        oldest = int(time.time()) - RETENTION_SECONDS
        clauses.append(col(AuditEvent.event_time) >= oldest)
        if start is not None:
            clauses.append(col(AuditEvent.event_time) >= int(start.timestamp()))
        if end is not None:
            clauses.append(col(AuditEvent.event_time) <= end.timestamp())

        fingerprint = _fingerprint(params)
        if params.get("NextToken"):
            invalid = InvalidNextToken("Invalid NextToken.")
            after_time, after_seq = pages.decode_token(params["NextToken"], 2, fingerprint, invalid)
            clauses.append(
                or_(
                    col(AuditEvent.event_time) < after_time,
                    and_(col(AuditEvent.event_time) == after_time, col(AuditEvent.seq) < after_seq),
                )
            )

        def lookup(session: Session) -> dict[str, Any]:
            rows = list(
                session.exec(
                    select(AuditEvent)
                    .where(*clauses)
                    .order_by(col(AuditEvent.event_time).desc(), col(AuditEvent.seq).desc())
                    .limit(max_results + 1)
                )
            )
            result: dict[str, Any] = {"Events": [_event_shape(r) for r in rows[:max_results]]}
            if len(rows) > max_results:
                last = rows[max_results - 1]
                assert last.seq is not None
                result["NextToken"] = pages.encode_token([last.event_time, last.seq], fingerprint)
            return result

        return await self.store.tx(lookup)


__all__ = ["CloudTrailService"]
