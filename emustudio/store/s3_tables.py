"""What the gateway's S3 keeps beside the store's objects: each bucket's policy and tags, and
multipart uploads' checksums and parts, and the checksums that arrive after an object's bytes
went to the store (a single PUT's checksum goes with the object, as its metadata, when known
before its body).

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
    # COMPOSITE | FULL_OBJECT, or DEFAULT: none asked for, so S3's own (a full-object
    # CRC64NVME, computed of each part whatever checksum the part came with).
    kind: str


class PartChecksum(SQLModel, table=True):
    """The checksum a part was checked against, and its size (a full-object CRC needs it)."""

    __tablename__ = "s3_part_checksum"

    upload_id: str = Field(primary_key=True)
    part_number: int = Field(primary_key=True)
    value: str
    size: int


class ObjectChecksum(SQLModel, table=True):
    """An object's checksum kept by the gateway (a multipart object's; a streamed PUT's whose
    checksum came after its body), valid while the object's ETag is ``etag`` (a later write of
    the key makes another ETag, so a stale row is never answered). ``algorithm`` and ``value``
    are empty for a multipart object without one (a part went up without a checksum)."""

    __tablename__ = "s3_object_checksum"

    bucket: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    etag: str
    algorithm: str
    kind: str
    value: str


class ObjectPart(SQLModel, table=True):
    """A completed multipart object's parts (``GetObjectAttributes``), valid with its
    ``ObjectChecksum`` row; ``value`` is the part's checksum of the object's algorithm."""

    __tablename__ = "s3_object_part"

    bucket: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    part_number: int = Field(primary_key=True)
    size: int
    value: str
