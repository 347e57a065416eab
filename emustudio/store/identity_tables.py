"""The Identity Store: users, groups and group memberships of the one identity store.

Users and groups are both :class:`IdentityEntity` rows. ``name`` is the ``UserName`` (column
``user_name``) or the group's ``DisplayName`` (column ``display_name``); ``name_key`` is it
lower-cased: names are unique case-insensitively within a store, as in IAM Identity Center.
``attributes`` holds the user's or group's other attributes whole, in their wire shape
(``Name``, ``Emails``...). ``revision`` counts the changes of a user or group (the model's
``Revision``). Timestamps are epoch seconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel


class IdentityEntity(SQLModel):
    """The columns users and groups share (not a table itself)."""

    id: str = Field(primary_key=True)
    store_id: str = Field(index=True)
    name: str
    name_key: str = Field(index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=True)
    revision: int = 1
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str


class IdentityUser(IdentityEntity, table=True):
    __tablename__ = "identity_user"
    __table_args__ = (UniqueConstraint("store_id", "name_key"),)

    name: str = Field(sa_column_kwargs={"name": "user_name"})


class IdentityGroup(IdentityEntity, table=True):
    __tablename__ = "identity_group"
    __table_args__ = (UniqueConstraint("store_id", "name_key"),)

    name: str = Field(sa_column_kwargs={"name": "display_name"})


class IdentityMembership(SQLModel, table=True):
    __tablename__ = "identity_membership"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: str = Field(primary_key=True)
    store_id: str = Field(index=True)
    group_id: str = Field(foreign_key="identity_group.id", index=True)
    user_id: str = Field(foreign_key="identity_user.id", index=True)
    created_at: float
    created_by: str
