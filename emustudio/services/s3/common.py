"""What every S3 operation shares: the store, the bucket settings, the marker mapping."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from sqlmodel import Session, select

from emustudio.aws.errors import AwsError
from emustudio.context import Principal, RequestContext
from emustudio.iam import deny_message
from emustudio.iam.evaluate import Decision
from emustudio.services.base import Service
from emustudio.services.s3.checksums import Checksums
from emustudio.services.s3.errors import s3_error
from emustudio.services.s3.forward import Forwarder
from emustudio.services.s3.markers import Markers
from emustudio.store import Store
from emustudio.store.s3_tables import BucketConfig, BucketOwner

# S3's general-purpose bucket names: 3-63 of a-z 0-9 . -, starting and ending alphanumeric.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


class Access(Protocol):
    """The authorizer's per-resource question (bucket policies included), for what one request
    asks on several resources: ``DeleteObjects``' keys, a copy's source."""

    async def allowed(
        self,
        principal: Principal,
        action: str,
        resource: str,
        extra_context: Mapping[str, object] | None = None,
        *,
        source_ip: str = "127.0.0.1",
    ) -> Decision: ...


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def valid_bucket_name(name: str) -> bool:
    return bool(_BUCKET_NAME.fullmatch(name)) and ".." not in name and not _IP_LIKE.fullmatch(name)


class S3Base(Service):
    name = "s3"

    def __init__(
        self,
        store: Store,
        forwarder: Forwarder,
        *,
        region: str,
        account_id: str,
        markers: bool,
        access: Access | None = None,
    ) -> None:
        self.store = store
        self.store_s3 = forwarder
        self.region = region
        self.account_id = account_id
        self.markers = Markers(markers)
        self.access = access
        self.checksums = Checksums(store)

    async def may(self, ctx: RequestContext, action: str, resource: str) -> AwsError | None:
        """None if the caller may ``action`` on ``resource``, else S3's refusal."""
        principal = ctx.principal
        if principal is None or self.access is None:
            return None  # root is decided by the authorizer (unchecked in a single account)
        decision = await self.access.allowed(
            principal, action, resource, source_ip=ctx.http.remote_ip
        )
        if decision.allowed:
            return None
        if principal.is_anonymous:
            return s3_error("AccessDenied", "Access Denied")
        return s3_error("AccessDenied", deny_message(principal.arn, action, resource, decision))

    async def refused(self, ctx: RequestContext, refusal: AwsError) -> AwsError:
        """S3 tells anyone whether a bucket exists (names are global; a bare HEAD answers 404 or
        403), so an anonymous call to a missing bucket is ``NoSuchBucket``, and to another's
        private bucket ``AccessDenied``. ``CreateBucket`` is refused as it is: it makes one."""
        bucket = ctx.params.get("Bucket")
        principal = ctx.principal
        if (
            principal is None
            or not principal.is_anonymous
            or refusal.code != "AccessDenied"
            or not isinstance(bucket, str)
            or ctx.operation_name == "CreateBucket"
        ):
            return refusal
        try:
            await self.require_bucket(bucket)
        except AwsError as missing:
            if missing.code == "NoSuchBucket":
                return missing
        return refusal

    async def config(self, bucket: str) -> BucketConfig | None:
        def read(session: Session) -> BucketConfig | None:
            row = session.get(BucketConfig, bucket)
            if row is not None:
                session.expunge(row)
            return row

        return await self.store.tx(read)

    async def update_config(self, bucket: str, **values: Any) -> None:
        def write(session: Session) -> None:
            row = session.get(BucketConfig, bucket) or BucketConfig(bucket=bucket)
            for name, value in values.items():
                setattr(row, name, value)
            session.add(row)

        await self.store.tx(write)

    async def forget(self, bucket: str) -> None:
        def delete(session: Session) -> None:
            for table in (BucketConfig, BucketOwner):
                row = session.get(table, bucket)
                if row is not None:
                    session.delete(row)

        await self.store.tx(delete)

    def caller_account(self, ctx: RequestContext) -> str:
        """The account a call is made in: its principal's (another account's), else ours."""
        principal = ctx.principal
        return principal.account_id if principal and principal.account_id else self.account_id

    async def owners(self) -> dict[str, str]:
        """The buckets of other accounts, with their owners (every other bucket is ours)."""

        def read(session: Session) -> dict[str, str]:
            return {r.bucket: r.account_id for r in session.exec(select(BucketOwner))}

        return await self.store.tx(read)

    async def set_owner(self, bucket: str, account_id: str) -> None:
        def write(session: Session) -> None:
            if account_id != self.account_id:
                session.merge(BucketOwner(bucket=bucket, account_id=account_id))

        await self.store.tx(write)

    async def require_bucket(self, bucket: str) -> None:
        """NoSuchBucket unless the store has the bucket."""
        await self.store_s3.call("HeadBucket", {"Bucket": bucket})
