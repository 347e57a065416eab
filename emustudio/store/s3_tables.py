"""What the gateway's S3 keeps beside the store's objects: each bucket's policy and tags, and
multipart uploads' checksums (a single PUT's checksum goes with the object, as its metadata).

The store behind (the embedded server, MinIO, AWS) holds buckets and objects; a bucket's policy
is a resource policy the gateway's authorizer evaluates, and its tags are the gateway's too, so
neither depends on what the store supports. A row goes with its bucket.

Each bucket's owner is an account: a bucket made by a principal of another account (setting
``other_accounts``) has a ``BucketOwner`` row; one without a row is the gateway's own account's
(every bucket made before other accounts existed, the backups' too).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class BucketConfig(SQLModel, table=True):
    __tablename__ = "s3_bucket_config"

    bucket: str = Field(primary_key=True)
    policy: str | None = None
    tags: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class BucketOwner(SQLModel, table=True):
    __tablename__ = "s3_bucket_owner"

    bucket: str = Field(primary_key=True)
    account_id: str


class UploadChecksum(SQLModel, table=True):
    """A multipart upload's checksum algorithm and type (``CreateMultipartUpload``)."""

    __tablename__ = "s3_upload_checksum"

    upload_id: str = Field(primary_key=True)
    algorithm: str
    kind: str  # COMPOSITE | FULL_OBJECT


class PartChecksum(SQLModel, table=True):
    """The checksum a part was checked against, and its size (a full-object CRC needs it)."""

    __tablename__ = "s3_part_checksum"

    upload_id: str = Field(primary_key=True)
    part_number: int = Field(primary_key=True)
    value: str
    size: int


class ObjectChecksum(SQLModel, table=True):
    """A multipart object's checksum, valid while the object's ETag is ``etag`` (a later
    write of the key makes another ETag, so a stale row is never answered)."""

    __tablename__ = "s3_object_checksum"

    bucket: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    etag: str
    algorithm: str
    kind: str
    value: str
