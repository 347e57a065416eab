"""Tables of the S3 backup (``emustudio/backup/``): the pending-upload journal and what S3 holds.

:class:`BackupPending` is the journal: a row is written, in the same transaction that moves the
change feed's cursor, before a change is processed, and removed only once S3 has it, so a
gateway killed at any point replays it.  :class:`BackupObject` remembers, per Workspace file,
the content last written to S3 (its hash), so the sweep uploads only what changed.
:class:`BackupCursor` is how far each Workspace's change feed has been journalled.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class BackupPending(SQLModel, table=True):
    """A file of a Workspace whose S3 copy is behind: latest wins, one row per path.

    ``op`` is ``sync`` (make S3 hold what the Workspace holds at ``path`` now: a file is
    uploaded, a directory's files are, an absent path is deleted) or ``delete`` (the object at
    ``path`` and everything under ``path/``). For ``sync``, ``needs_read`` says the Workspace
    must be read again (a change since the content was last captured) and ``content_hash`` names
    content already captured in the local spool (read while S3 was down), uploaded when the
    Workspace cannot be read any more. ``location`` is the ``s3://bucket/prefix`` the row goes
    to, kept here so that a deleted Workspace's last changes still arrive. ``version`` grows
    with each change, so a row is only removed by the processing that saw its last change.
    """

    __tablename__ = "backup_pending"

    editor_id: str = Field(primary_key=True)
    path: str = Field(primary_key=True)
    op: str
    location: str
    needs_read: bool = True
    content_hash: str | None = None
    version: int = 1
    queued_at: float
    attempts: int = 0
    last_error: str | None = None


class BackupObject(SQLModel, table=True):
    """A Workspace file as last written to (or restored from) S3."""

    __tablename__ = "backup_object"

    editor_id: str = Field(primary_key=True)
    path: str = Field(primary_key=True)
    location: str
    sha256: str
    size: int
    # ``last_modified`` as the Workspace's contents API reported it; the sweep's quick check.
    last_modified: str | None = None
    uploaded_at: float


class BackupCursor(SQLModel, table=True):
    """The last change of a Workspace's feed (server run ``epoch``, number ``seq``) journalled."""

    __tablename__ = "backup_cursor"

    editor_id: str = Field(primary_key=True)
    epoch: str
    seq: int
