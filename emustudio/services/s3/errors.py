"""S3's errors: its codes, statuses and messages, and the store's answers read as them."""

from __future__ import annotations

import re

from emustudio.aws.errors import AwsError

# code -> (status, S3's message)
MESSAGES: dict[str, tuple[int, str]] = {
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may"
        " have been aborted or completed.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketAlreadyExists": (
        409,
        "The requested bucket name is not available. The bucket namespace is shared by all"
        " users of the system. Please select a different name and try again.",
    ),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist"),
    "NoSuchTagSet": (404, "The TagSet does not exist"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found.  The part may not have been"
        " uploaded, or the specified entity tag may not match the part's entity tag.",
    ),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed size"),
    "MalformedPolicy": (400, "Policies must be valid JSON and the first byte must be '{'"),
    "AccessDenied": (403, "Access Denied"),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
}

# What a bodiless answer (HEAD) means, by status.
_BY_STATUS = {404: "NoSuchKey", 403: "AccessDenied", 412: "PreconditionFailed", 416: "InvalidRange"}
_CODE = re.compile(rb"<Code>([^<]+)</Code>")


def s3_error(code: str, message: str | None = None, **extra: str | None) -> AwsError:
    status, text = MESSAGES.get(code, (400, code))
    fields = {k: v for k, v in extra.items() if v is not None}
    return AwsError(message or text, code=code, status=status, **fields)


def no_such_bucket(bucket: str) -> AwsError:
    return s3_error("NoSuchBucket", BucketName=bucket)


def from_store(
    status: int, body: bytes, *, bucket: str | None, key: str | None, head_bucket: bool = False
) -> AwsError:
    """The store's error answer, as S3's own error (S3's message, the resource named)."""
    found = _CODE.search(body)
    if found is not None:
        code = found.group(1).decode("utf-8", "replace")
    elif status == 404 and (head_bucket or key is None):
        code = "NoSuchBucket"
    else:
        code = _BY_STATUS.get(status, "InternalError" if status >= 500 else "InvalidRequest")
    if code == "BucketAlreadyExists":
        # The store's buckets are all the gateway's; whose a bucket is, CreateBucket reads in
        # the gateway's own records (store/s3_tables.BucketOwner).
        code = "BucketAlreadyOwnedByYou"
    if code == "NoSuchBucket":
        return no_such_bucket(bucket or "")
    if code == "NoSuchKey":
        return s3_error("NoSuchKey", Key=key)
    if code in MESSAGES:
        return s3_error(code, BucketName=bucket if code.startswith("Bucket") else None)
    error = s3_error(code)
    error.status = status if status >= 400 else 500
    return error
