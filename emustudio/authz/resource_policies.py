"""Resource-based policies the authorizer evaluates beside identity policies: S3 bucket policies.

A bucket's policy (``PutBucketPolicy``, kept in ``store/s3_tables.py``) bears on the bucket's
ARN and on every object ARN in it, as on AWS.
"""

from __future__ import annotations

from functools import lru_cache

from sqlmodel import Session

from emustudio.iam import Policy, parse_policy
from emustudio.store import Store
from emustudio.store.s3_tables import BucketConfig

_S3_ARN = "arn:aws:s3:::"


@lru_cache(maxsize=256)
def _parsed(bucket: str, document: str) -> Policy:
    return parse_policy(document, "resource", name=f"bucket policy of {bucket}")


class BucketPolicies:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def policies_for(self, resource: str) -> list[Policy]:
        if not resource.startswith(_S3_ARN):
            return []
        bucket = resource[len(_S3_ARN) :].split("/", 1)[0]
        if not bucket or "*" in bucket:
            return []

        def read(session: Session) -> str | None:
            row = session.get(BucketConfig, bucket)
            return row.policy if row is not None else None

        document = await self.store.tx(read)
        return [_parsed(bucket, document)] if document else []
