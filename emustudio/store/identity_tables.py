"""The Identity Store: users, groups and group memberships of the one identity store.

``name_key`` is the lower-cased ``UserName`` (users) or ``DisplayName`` (groups): names are
unique case-insensitively within a store, as in IAM Identity Center. ``attributes`` holds the
user's or group's other attributes whole, in their wire shape (``Name``, ``Emails``...).
``revision`` counts the changes of a user or group (the model's ``Revision``). Timestamps are
epoch seconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class IdentityUser(SQLModel, table=True):
    __tablename__ = "identity_user"
    __table_args__ = (UniqueConstraint("store_id", "name_key"),)

    id: str = Field(primary_key=True)
    store_id: str = Field(index=True)
    user_name: str
    name_key: str = Field(index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    revision: int = 1
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str


class IdentityGroup(SQLModel, table=True):
    __tablename__ = "identity_group"
    __table_args__ = (UniqueConstraint("store_id", "name_key"),)

    id: str = Field(primary_key=True)
    store_id: str = Field(index=True)
    display_name: str
    name_key: str = Field(index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    revision: int = 1
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str


class IdentityMembership(SQLModel, table=True):
    __tablename__ = "identity_membership"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: str = Field(primary_key=True)
    store_id: str = Field(index=True)
    group_id: str = Field(foreign_key="identity_group.id", index=True)
    user_id: str = Field(foreign_key="identity_user.id", index=True)
    created_at: float
    created_by: str
