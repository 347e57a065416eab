"""The tables of IAM (users, groups, roles, policies, keys, login profiles, SAML providers) and
of STS (temporary credentials).

IAM names are unique without regard to case (``Bob`` and ``bob`` cannot both exist) but keep the
case they were created with: ``name_key`` is the lower-cased name, unique, and every lookup by
name goes through it. Rows reference each other by id (``AIDA…``, ``AGPA…``, ``AROA…``), so a
rename touches one row. Tags the API returns whole are JSON lists of ``{"Key", "Value"}``.
Timestamps are epoch seconds (float), whole seconds as IAM reports them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class IamUser(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    name_key: str = Field(unique=True, index=True)
    path: str = "/"
    created_at: float
    password_last_used: float | None = None
    boundary_arn: str | None = None
    tags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))


class IamGroup(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    name_key: str = Field(unique=True, index=True)
    path: str = "/"
    created_at: float


class IamGroupMember(SQLModel, table=True):
    group_id: str = Field(primary_key=True, foreign_key="iamgroup.id")
    user_id: str = Field(primary_key=True, foreign_key="iamuser.id", index=True)
    added_at: float


class IamRole(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    name_key: str = Field(unique=True, index=True)
    path: str = "/"
    trust_policy: str
    description: str | None = None
    max_session_duration: int = 3600
    created_at: float
    boundary_arn: str | None = None
    tags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    last_used_at: float | None = None
    last_used_region: str | None = None


class IamManagedPolicy(SQLModel, table=True):
    """A customer managed policy (AWS managed ones are built in, see ``aws_managed.py``)."""

    arn: str = Field(primary_key=True)
    id: str = Field(unique=True)
    name: str
    name_key: str = Field(unique=True, index=True)
    path: str = "/"
    description: str | None = None
    default_version: str = "v1"
    next_version: int = 2
    created_at: float
    updated_at: float
    tags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))


class IamPolicyVersion(SQLModel, table=True):
    policy_arn: str = Field(primary_key=True, foreign_key="iammanagedpolicy.arn")
    version_id: str = Field(primary_key=True)
    document: str
    created_at: float


class IamInlinePolicy(SQLModel, table=True):
    """``entity_type`` is ``user``, ``group`` or ``role``; ``entity_id`` its id."""

    entity_type: str = Field(primary_key=True)
    entity_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    document: str


class IamPolicyAttachment(SQLModel, table=True):
    """A managed policy (customer or AWS managed, by ARN) attached to a user, group or role."""

    policy_arn: str = Field(primary_key=True, index=True)
    entity_type: str = Field(primary_key=True)
    entity_id: str = Field(primary_key=True, index=True)
    attached_at: float


class IamAccessKey(SQLModel, table=True):
    # The secret is kept as issued: SigV4 verification needs it to compute the signature.
    id: str = Field(primary_key=True)
    user_id: str = Field(foreign_key="iamuser.id", index=True)
    secret: str
    status: str = "Active"
    created_at: float


class IamLoginProfile(SQLModel, table=True):
    """A console password: never stored, only its scrypt hash and salt."""

    user_id: str = Field(primary_key=True, foreign_key="iamuser.id")
    password_hash: str
    salt: str
    password_reset_required: bool = False
    created_at: float


class IamSamlProvider(SQLModel, table=True):
    arn: str = Field(primary_key=True)
    name: str
    uuid: str
    metadata_document: str
    valid_until: float | None = None
    created_at: float
    tags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))


class StsSession(SQLModel, table=True):
    """Temporary credentials (``ASIA…``) and the principal they stand for.

    ``principal`` holds :class:`emustudio.context.Principal`'s fields except the access key id,
    as JSON, so a restarted gateway serves the same session with the same policies and tags.
    """

    access_key_id: str = Field(primary_key=True)
    secret: str
    session_token: str
    expiration: float = Field(index=True)
    created_at: float
    principal: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class IamInstanceProfile(SQLModel, table=True):
    """An instance profile: the container of (at most) one role that EC2 instances, and so EMR
    cluster nodes, take credentials from."""

    id: str = Field(primary_key=True)
    name: str
    name_key: str = Field(unique=True, index=True)
    path: str = "/"
    role_id: str | None = Field(default=None, index=True)
    created_at: float
    tags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
