"""Object operations: each forwarded to the store, keys mapped for directory markers, bodies
streamed (the request's checked payload in, the store's body out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.services.base import Params, Result, operation
from emustudio.services.s3.checksums import DEFAULT, DEFAULT_ALGORITHM, upload_kind
from emustudio.services.s3.common import S3Base, object_arn
from emustudio.services.s3.forward import InHand, goes_with_object

# DeleteObjects: keys deleted at once against the store (S3 takes up to 1000 a request).
_DELETE_CONCURRENCY = 8


class Objects(S3Base):
    def mapped(self, params: Params) -> Params:
        out = dict(params)
        if "Key" in out:
            out["Key"] = self.markers.to_store(out["Key"])
        return out

    async def source_readable(self, ctx: RequestContext, source: str) -> str:
        """A copy's source, mapped, once the caller may read it (``s3:GetObject``)."""
        path = unquote(source.partition("?")[0]).lstrip("/")
        bucket, _, key = path.partition("/")
        refusal = await self.may(ctx, "s3:GetObject", object_arn(bucket, key))
        if refusal is not None:
            raise refusal
        return self.markers.copy_source(source)

    @operation("PutObject")
    async def put_object(self, ctx: RequestContext, params: Params) -> Result:
        body = ctx.payload
        data = params.get("Body")
        if body is None and isinstance(data, bytes):  # in process (Gateway.call): bytes in hand
            return await self.store_s3.call(
                "PutObject", self.mapped(params), body=_once(data), length=len(data),
                checked=InHand(data),
            )  # fmt: skip
        result = await self.store_s3.call(
            "PutObject",
            self.mapped(params),
            body=body,
            length=body.length if body is not None else 0,
            checked=body,
        )
        if body is not None and not goes_with_object(body, body.length):
            # Its checksum came after the body (a trailer's, S3's default): kept beside it.
            known = body.object_checksum()
            if known is not None:
                etag = str(result.get("ETag") or "")
                await self.checksums.keep(params["Bucket"], params["Key"], etag, *known)
        return result

    @operation("GetObject")
    async def get_object(self, ctx: RequestContext, params: Params) -> Result:
        result = await self.store_s3.call("GetObject", self.mapped(params), stream_result=True)
        return await self.multipart_checksum(params, result)

    @operation("HeadObject")
    async def head_object(self, ctx: RequestContext, params: Params) -> Result:
        result = await self.store_s3.call("HeadObject", self.mapped(params))
        return await self.multipart_checksum(params, result)

    @operation("GetObjectAttributes")
    async def get_object_attributes(self, ctx: RequestContext, params: Params) -> Result:
        """What the object's head says, the attributes asked for only (S3 writes the ETag
        without its quotes here); a multipart object's parts from what the gateway kept."""
        asked = set(params.get("ObjectAttributes") or [])
        key = {"Bucket": params["Bucket"], "Key": params["Key"]}
        head = await self.head_object(ctx, {**key, "ChecksumMode": "ENABLED"})
        etag = str(head.get("ETag") or "")
        result: Result = {"LastModified": head["LastModified"]}
        if "ETag" in asked:
            result["ETag"] = etag.strip('"')
        if "ObjectSize" in asked:
            result["ObjectSize"] = head.get("ContentLength", 0)
        if "StorageClass" in asked:
            result["StorageClass"] = head.get("StorageClass") or "STANDARD"
        checksum = {k: v for k, v in head.items() if k.startswith("Checksum")}
        if "Checksum" in asked and checksum:
            result["Checksum"] = checksum
        if "ObjectParts" in asked:
            parts = await self.checksums.object_parts(
                params["Bucket"], params["Key"], etag,
                int(params.get("PartNumberMarker") or 0), params.get("MaxParts"),
            )  # fmt: skip
            if parts is not None:
                result["ObjectParts"] = parts
        return result

    async def multipart_checksum(self, params: Params, result: Result) -> Result:
        """A multipart object's checksum, when asked for and the object brought none (a
        single PUT's comes with the object, ``forward.py``)."""
        etag = str(result.get("ETag") or "")
        if (
            params.get("ChecksumMode") == "ENABLED"
            and "ChecksumType" not in result
            and "Range" not in params
            and "PartNumber" not in params
        ):
            result.update(await self.checksums.of_object(params["Bucket"], params["Key"], etag))
        return result

    @operation("DeleteObject")
    async def delete_object(self, ctx: RequestContext, params: Params) -> Result:
        await self.store_s3.call("DeleteObject", self.mapped(params))
        return {}

    @operation("DeleteObjects")
    async def delete_objects(self, ctx: RequestContext, params: Params) -> Result:
        """Each key deleted on its own (and authorized on its own, as S3 does): a store that
        fails batch deletes of marker keys never sees a batch."""
        bucket = params["Bucket"]
        await self.require_bucket(bucket)
        request = params["Delete"]
        gate = asyncio.Semaphore(_DELETE_CONCURRENCY)

        async def delete(item: dict[str, Any]) -> tuple[dict[str, Any], AwsError | None]:
            key = item["Key"]
            refusal = await self.may(ctx, "s3:DeleteObject", object_arn(bucket, key))
            if refusal is not None:
                return item, refusal
            async with gate:
                try:
                    await self.store_s3.call(
                        "DeleteObject", {"Bucket": bucket, "Key": self.markers.to_store(key)}
                    )
                except AwsError as exc:
                    if exc.code != "NoSuchKey":
                        return item, exc
            return item, None

        outcomes = await asyncio.gather(*(delete(i) for i in request.get("Objects", [])))
        deleted = [{"Key": i["Key"]} for i, error in outcomes if error is None]
        errors = [
            {
                "Key": i["Key"],
                "Code": e.code,
                "Message": "Access Denied" if e.code == "AccessDenied" else e.message,
            }
            for i, e in outcomes
            if e is not None
        ]
        result: Result = {}
        if deleted and not request.get("Quiet"):
            result["Deleted"] = deleted
        if errors:
            result["Errors"] = errors
        return result

    @operation("ListObjectsV2")
    async def list_objects_v2(self, ctx: RequestContext, params: Params) -> Result:
        sent = dict(params)
        if "StartAfter" in sent:
            sent["StartAfter"] = self.markers.to_store(sent["StartAfter"])
        return self.markers.listing(await self.store_s3.call("ListObjectsV2", sent))

    @operation("ListObjects")
    async def list_objects(self, ctx: RequestContext, params: Params) -> Result:
        sent = dict(params)
        if "Marker" in sent:
            sent["Marker"] = self.markers.to_store(sent["Marker"])
        return self.markers.listing(await self.store_s3.call("ListObjects", sent))

    @operation("CopyObject")
    async def copy_object(self, ctx: RequestContext, params: Params) -> Result:
        sent = self.mapped(params)
        sent["CopySource"] = await self.source_readable(ctx, params["CopySource"])
        return await self.store_s3.call("CopyObject", sent)

    # --- multipart ----------------------------------------------------------------------------

    @operation("CreateMultipartUpload")
    async def create_multipart_upload(self, ctx: RequestContext, params: Params) -> Result:
        algorithm, kind = upload_kind(params)
        result = await self.store_s3.call("CreateMultipartUpload", self.mapped(params))
        result["Key"] = params["Key"]
        await self.checksums.begin(result["UploadId"], algorithm, kind)
        if kind != DEFAULT:
            result["ChecksumAlgorithm"], result["ChecksumType"] = algorithm.upper(), kind
        return result

    @operation("UploadPart")
    async def upload_part(self, ctx: RequestContext, params: Params) -> Result:
        body = ctx.payload
        if body is not None:
            body.also(DEFAULT_ALGORITHM)  # the part's, should its upload have asked for none
        result = await self.store_s3.call(
            "UploadPart",
            self.mapped(params),
            body=body,
            length=body.length if body is not None else 0,
            checked=body,
        )
        if body is not None:
            await self.checksums.part(
                params["UploadId"], params["PartNumber"], body.expected, body.computed,
                body.length,
            )  # fmt: skip
        return result

    @operation("UploadPartCopy")
    async def upload_part_copy(self, ctx: RequestContext, params: Params) -> Result:
        sent = self.mapped(params)
        sent["CopySource"] = await self.source_readable(ctx, params["CopySource"])
        return await self.store_s3.call("UploadPartCopy", sent)

    @operation("CompleteMultipartUpload")
    async def complete_multipart_upload(self, ctx: RequestContext, params: Params) -> Result:
        upload_id = params["UploadId"]
        parts = (params.get("MultipartUpload") or {}).get("Parts", [])
        await self.checksums.check_parts(upload_id, parts)
        result = await self.store_s3.call("CompleteMultipartUpload", self.mapped(params))
        result["Key"] = params["Key"]
        result["Bucket"] = params["Bucket"]

        async def stored_etag() -> str:
            head = await self.store_s3.call(
                "HeadObject", {"Bucket": params["Bucket"], "Key": self.mapped(params)["Key"]}
            )
            return str(head.get("ETag") or "")

        result.update(
            await self.checksums.complete(
                upload_id, params["Bucket"], params["Key"], parts, stored_etag
            )
        )
        return result

    @operation("AbortMultipartUpload")
    async def abort_multipart_upload(self, ctx: RequestContext, params: Params) -> Result:
        await self.store_s3.call("AbortMultipartUpload", self.mapped(params))
        await self.checksums.abort(params["UploadId"])
        return {}

    @operation("ListParts")
    async def list_parts(self, ctx: RequestContext, params: Params) -> Result:
        result = await self.store_s3.call("ListParts", self.mapped(params))
        result["Key"] = params["Key"]
        return result

    @operation("ListMultipartUploads")
    async def list_multipart_uploads(self, ctx: RequestContext, params: Params) -> Result:
        result = await self.store_s3.call("ListMultipartUploads", params)
        for upload in result.get("Uploads", []):
            upload["Key"] = self.markers.from_store(upload["Key"])
        return result


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
