"""S3 on the gateway's endpoint: buckets and objects in the store behind, authorized and
recorded like every other call (bucket policies are resource policies of the authorizer).

The store (the embedded ``rclone serve s3``, MinIO, AWS) holds the bytes; this service forwards
each operation to it (``forward.py``), keeps what the store may lack (bucket policies and tags,
``common.py``; directory-marker keys, ``markers.py``), and answers in S3's own errors
(``errors.py``).
"""

from __future__ import annotations

from emustudio.services.s3.buckets import Buckets
from emustudio.services.s3.common import Access
from emustudio.services.s3.forward import Forwarder
from emustudio.services.s3.objects import Objects


class S3Service(Buckets, Objects):
    """Every S3 operation the gateway answers."""

    # Objects are no policy, user, tag or owner: writing them leaves the authorizer's reads.
    unwatched_writes = frozenset(
        {
            "PutObject",
            "DeleteObject",
            "DeleteObjects",
            "CopyObject",
            "CreateMultipartUpload",
            "UploadPart",
            "UploadPartCopy",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
        }
    )


__all__ = ["Access", "Forwarder", "S3Service"]
