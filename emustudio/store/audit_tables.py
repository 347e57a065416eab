"""The CloudTrail event history: one row per recorded event.

The columns are what ``LookupEvents`` filters on (its lookup attributes, the time, the region
that recorded it); ``record`` is the CloudTrail record itself, as the JSON text ``LookupEvents``
returns in ``CloudTrailEvent``. An event may name several resources, so ``resource_types`` and
``resource_names`` hold each value between ``\\x1f`` separators (``\\x1fes-…\\x1fvpc-…\\x1f``) and a
lookup matches ``\\x1f<value>\\x1f`` inside them. ``event_time`` is whole epoch seconds, the
precision of ``eventTime``; ``seq`` orders events of the same second.
"""

from __future__ import annotations

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

RESOURCE_SEPARATOR = "\x1f"


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(index=True, unique=True)
    region: str = Field(index=True)
    event_time: int = Field(index=True)
    event_name: str = Field(index=True)
    event_source: str = Field(index=True)
    read_only: bool = Field(index=True)
    username: str | None = Field(default=None, index=True)
    access_key_id: str | None = Field(default=None, index=True)
    resource_types: str = ""
    resource_names: str = ""
    record: str = Field(sa_column=Column(Text, nullable=False))
