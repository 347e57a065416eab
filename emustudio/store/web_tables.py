"""Tables of the Studio web side: browser sign-in sessions, and the SAML IDs already used.

A session row is keyed by the SHA-256 of the session id the browser's signed cookie carries, so
the store alone never yields a usable cookie. ``principal`` is the signed-in identity as the
policy engine needs it (the fields of :class:`emustudio.context.Principal`); ``studio_id`` the
one Studio the session opens, and ``form`` the URL form it was signed in through (``host`` or
``path``), which decides the cookie's Path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class WebSession(SQLModel, table=True):
    id_hash: str = Field(primary_key=True)
    studio_id: str = Field(index=True)
    user_id: str = Field(index=True)
    principal: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    form: str
    source_ip: str
    created_at: float
    expires_at: float = Field(index=True)


class SamlReplay(SQLModel, table=True):
    """A SAML assertion or request ID accepted once, held until the assertion expires."""

    key: str = Field(primary_key=True)
    expires_at: float = Field(index=True)
