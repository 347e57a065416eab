"""Bucket operations: the store makes and lists buckets; the gateway keeps policies and tags."""

from __future__ import annotations

from typing import Any

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.iam import PolicyError, parse_policy
from emustudio.services.base import Params, Result, operation
from emustudio.services.s3.common import S3Base, valid_bucket_name
from emustudio.services.s3.errors import s3_error

MAX_BUCKET_POLICY = 20 * 1024


class Buckets(S3Base):
    @operation("CreateBucket")
    async def create_bucket(self, ctx: RequestContext, params: Params) -> Result:
        bucket = params["Bucket"]
        if not valid_bucket_name(bucket):
            raise s3_error("InvalidBucketName", BucketName=bucket)
        wanted = (params.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        if (wanted or "us-east-1") != self.region:
            raise s3_error(
                "IllegalLocationConstraintException",
                f"The {wanted or 'unspecified'} location constraint is incompatible for the"
                f" region specific endpoint this request was sent to.",
            )
        account = self.caller_account(ctx)
        try:
            await self.store_s3.call("CreateBucket", {"Bucket": bucket})
        except AwsError as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                owner = (await self.owners()).get(bucket, self.account_id)
                if owner != account:
                    raise s3_error("BucketAlreadyExists", BucketName=bucket) from exc
            # S3 in us-east-1 answers 200 to its owner's second CreateBucket (legacy rule);
            # every other region says BucketAlreadyOwnedByYou.
            if exc.code != "BucketAlreadyOwnedByYou" or self.region != "us-east-1":
                raise
            return {"Location": f"/{bucket}"}
        await self.set_owner(bucket, account)
        return {"Location": f"/{bucket}"}

    @operation("DeleteBucket")
    async def delete_bucket(self, ctx: RequestContext, params: Params) -> Result:
        await self.store_s3.call("DeleteBucket", {"Bucket": params["Bucket"]})
        await self.forget(params["Bucket"])
        return {}

    @operation("ListBuckets")
    async def list_buckets(self, ctx: RequestContext, params: Params) -> Result:
        result = await self.store_s3.call("ListBuckets", {})
        account, owners = self.caller_account(ctx), await self.owners()
        buckets = [
            b
            for b in result.get("Buckets", [])
            if owners.get(b["Name"], self.account_id) == account
        ]
        prefix = params.get("Prefix")
        if prefix:
            buckets = [b for b in buckets if b["Name"].startswith(prefix)]
        return {
            "Buckets": [{**b, "BucketRegion": self.region} for b in buckets],
            "Owner": {"ID": account, "DisplayName": "emustudio"},
            **({"Prefix": prefix} if prefix else {}),
        }

    @operation("HeadBucket")
    async def head_bucket(self, ctx: RequestContext, params: Params) -> Result:
        await self.require_bucket(params["Bucket"])
        return {"BucketRegion": self.region}

    @operation("GetBucketLocation")
    async def get_bucket_location(self, ctx: RequestContext, params: Params) -> Result:
        await self.require_bucket(params["Bucket"])
        # us-east-1 is the empty constraint, as S3 answers it.
        return {"LocationConstraint": None if self.region == "us-east-1" else self.region}

    @operation("GetBucketVersioning")
    async def get_bucket_versioning(self, ctx: RequestContext, params: Params) -> Result:
        await self.require_bucket(params["Bucket"])
        return {}  # never enabled: S3 then answers an empty VersioningConfiguration

    # --- policy -------------------------------------------------------------------------------

    async def require_owner(self, ctx: RequestContext, bucket: str) -> None:
        """A bucket's policy is its owner account's alone: another account that a bucket
        policy lets through is refused with 405, as S3 does."""
        await self.require_bucket(bucket)
        owner = (await self.owners()).get(bucket, self.account_id)
        if owner != self.caller_account(ctx):
            raise s3_error("MethodNotAllowed", Method=ctx.http.method, ResourceType="BUCKETPOLICY")

    @operation("PutBucketPolicy")
    async def put_bucket_policy(self, ctx: RequestContext, params: Params) -> Result:
        bucket = params["Bucket"]
        await self.require_owner(ctx, bucket)
        document = params["Policy"]
        try:
            parse_policy(document, "resource", max_size=MAX_BUCKET_POLICY)
        except PolicyError as exc:
            raise s3_error("MalformedPolicy", str(exc)) from exc
        await self.update_config(bucket, policy=document)
        return {"ResponseMetadata": {"HTTPStatusCode": 204}}

    @operation("GetBucketPolicy")
    async def get_bucket_policy(self, ctx: RequestContext, params: Params) -> Result:
        bucket = params["Bucket"]
        await self.require_owner(ctx, bucket)
        row = await self.config(bucket)
        if row is None or row.policy is None:
            raise s3_error("NoSuchBucketPolicy", BucketName=bucket)
        return {"Policy": row.policy}

    @operation("DeleteBucketPolicy")
    async def delete_bucket_policy(self, ctx: RequestContext, params: Params) -> Result:
        await self.require_owner(ctx, params["Bucket"])
        await self.update_config(params["Bucket"], policy=None)
        return {}

    # --- tags ---------------------------------------------------------------------------------

    @operation("PutBucketTagging")
    async def put_bucket_tagging(self, ctx: RequestContext, params: Params) -> Result:
        bucket = params["Bucket"]
        await self.require_bucket(bucket)
        tags: list[dict[str, Any]] = params["Tagging"].get("TagSet", [])
        keys = [t["Key"] for t in tags]
        if len(keys) != len(set(keys)):
            raise s3_error("InvalidTag", "Cannot provide multiple Tags with the same key")
        if len(tags) > 50:
            raise s3_error("InvalidTag", "Bucket tag count cannot be greater than 50")
        for tag in tags:
            if not 1 <= len(tag["Key"]) <= 128 or len(tag.get("Value", "")) > 256:
                raise s3_error("InvalidTag", "The TagKey you have provided is invalid")
        await self.update_config(
            bucket, tags=[{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]
        )
        return {"ResponseMetadata": {"HTTPStatusCode": 204}}

    @operation("GetBucketTagging")
    async def get_bucket_tagging(self, ctx: RequestContext, params: Params) -> Result:
        bucket = params["Bucket"]
        await self.require_bucket(bucket)
        row = await self.config(bucket)
        if row is None or not row.tags:
            raise s3_error("NoSuchTagSet", BucketName=bucket)
        return {"TagSet": row.tags}

    @operation("DeleteBucketTagging")
    async def delete_bucket_tagging(self, ctx: RequestContext, params: Params) -> Result:
        await self.require_bucket(params["Bucket"])
        await self.update_config(params["Bucket"], tags=None)
        return {}
