"""S3's presigned URLs in the older query form (``AWSAccessKeyId``, ``Expires``, ``Signature``).

boto3's ``generate_presigned_url`` and ``aws s3 presign`` still make this form for S3 unless
told ``signature_version='s3v4'``, so the gateway takes it for S3, and only for S3, checked as S3
checks it (HMAC-SHA1 over the verb, ``Content-MD5``, ``Content-Type``, the expiry, the
``x-amz-*`` headers and the resource with its sub-resources, as botocore's ``HmacV1QueryAuth``
builds it). Refusals are SigV4's :class:`~emustudio.aws.sigv4.AuthFailure` kinds, so they read
as S3's errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote

from emustudio.aws.http import HttpRequest
from emustudio.aws.sigv4 import AuthFailure, AuthKind, Credential, SignedRequest

# The query keys that are part of the signed resource (botocore's HmacV1Auth.QSAOfInterest).
_SUB_RESOURCES = frozenset(
    {
        "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber",
        "policy", "requestPayment", "torrent", "versioning", "versionId", "versions", "website",
        "uploads", "uploadId", "response-content-type", "response-content-language",
        "response-expires", "response-cache-control", "response-content-disposition",
        "response-content-encoding", "delete", "lifecycle", "tagging", "restore",
        "storageClass", "notification", "replication", "analytics", "metrics", "inventory",
        "select", "select-type", "object-lock",
    }
)  # fmt: skip
_MARKERS = ("AWSAccessKeyId", "Signature", "Expires")


def is_presigned_v2(req: HttpRequest) -> bool:
    return all(name in req.query for name in _MARKERS) and "X-Amz-Credential" not in req.query


def _resource(req: HttpRequest) -> str:
    subs = []
    for part in req.raw_query.split("&") if req.raw_query else []:
        key, eq, value = part.partition("=")
        key = unquote(key)
        if key in _SUB_RESOURCES:
            subs.append(f"{key}={unquote(value)}" if eq and value else key)
    return req.path_style + ("?" + "&".join(sorted(subs)) if subs else "")


def string_to_sign(req: HttpRequest, expires: str) -> str:
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in req.headers.items()
        if name.startswith("x-amz-") and name != "x-amz-security-token"
    )
    lines = [
        req.method.upper(),
        req.headers.get("content-md5", ""),
        req.headers.get("content-type", ""),
        expires,
        *[f"{name}:{value}" for name, value in amz],
    ]
    return "\n".join(lines) + "\n" + _resource(req)


def verify_presigned_v2(
    req: HttpRequest,
    lookup: Callable[[str], Credential | None],
    *,
    region: str,
    now: datetime | None = None,
) -> SignedRequest:
    moment = now or datetime.now(UTC)
    key_id = req.query["AWSAccessKeyId"][0]
    expires = req.query["Expires"][0]
    if not expires.isdigit():
        raise AuthFailure(AuthKind.INCOMPLETE, "Invalid date (should be seconds since epoch)")
    credential = lookup(key_id)
    if credential is None:
        raise AuthFailure(AuthKind.UNKNOWN_KEY)
    token = req.query.get("x-amz-security-token", [None])[0]
    if (credential.session_token or None) != token:
        raise AuthFailure(AuthKind.BAD_TOKEN)
    if credential.expiration is not None and moment >= credential.expiration.replace(
        tzinfo=credential.expiration.tzinfo or UTC
    ):
        raise AuthFailure(AuthKind.EXPIRED_TOKEN)
    if moment.timestamp() > int(expires):
        raise AuthFailure(AuthKind.EXPIRED_PRESIGN)
    text = string_to_sign(req, expires)
    expected = base64.b64encode(
        hmac.new(credential.secret_access_key.encode(), text.encode(), hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected, req.query["Signature"][0]):
        raise AuthFailure(AuthKind.BAD_SIGNATURE, string_to_sign=text)
    return SignedRequest(
        access_key_id=key_id,
        region=region,
        service="s3",
        signed_at=moment,
        presigned=True,
        session_token=token,
    )
