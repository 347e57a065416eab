"""Resource-based policies the authorizer evaluates beside identity policies: S3 bucket policies.

A bucket's policy (``PutBucketPolicy``, kept in ``store/s3_tables.py``) bears on the bucket's
ARN and on every object ARN in it, as on AWS. S3 ARNs name no account, so the bucket's owner
comes with it (``BucketOwner``; a bucket without a row is the gateway's own account's): a caller
of another account needs the bucket policy and its own identity policy both.
"""

from __future__ import annotations

from functools import lru_cache

from sqlmodel import Session

from emustudio.iam import Policy, parse_policy
from emustudio.store import Store
from emustudio.store.s3_tables import BucketConfig, BucketOwner

_S3_ARN = "arn:aws:s3:::"


@lru_cache(maxsize=256)
def _parsed(bucket: str, document: str) -> Policy:
    return parse_policy(document, "resource", name=f"bucket policy of {bucket}")


class BucketPolicies:
    def __init__(self, store: Store, *, account_id: str) -> None:
        self.store = store
        self.account_id = account_id

    async def bearing_on(self, resource: str) -> tuple[list[Policy], str | None]:
        if not resource.startswith(_S3_ARN):
            return [], None
        bucket = resource[len(_S3_ARN) :].split("/", 1)[0]
        if not bucket or "*" in bucket:
            return [], None

        def read(session: Session) -> tuple[str | None, str]:
            row = session.get(BucketConfig, bucket)
            owner = session.get(BucketOwner, bucket)
            return (
                row.policy if row is not None else None,
                owner.account_id if owner is not None else self.account_id,
            )

        document, owner = await self.store.tx(read)
        return ([_parsed(bucket, document)] if document else []), owner
