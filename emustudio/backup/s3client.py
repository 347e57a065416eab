"""S3 through the ``minio`` SDK, off the event loop.

The SDK is synchronous: every call goes through :meth:`S3Client.call`, which runs it on the
backup's bounded thread pool (:class:`~emustudio.backup.blocking.Blocking`), so the loop never
waits on S3.  Errors come back as two kinds: :class:`S3Unavailable` (no answer, a timeout, a 5xx,
``SlowDown``: try again later) and :class:`S3Refused` (S3 answered no: access denied, a bad
name; retrying as is will not help, though a missing bucket can be created).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from emustudio.backup.blocking import Blocking

T = TypeVar("T")

# Below this a put is one request; AWS takes up to 5 GB that way.  Parts of larger files are
# uploaded one at a time, in order (rclone's server streams them then, buffering nothing).
PART_SIZE = 64 * 1024 * 1024
_RETRYABLE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed"}
)
_CODE = re.compile(r"<Code>([^<]+)</Code>")


class S3Failure(Exception):
    """An S3 call failed; ``code`` is S3's error code when it answered."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class S3Unavailable(S3Failure):
    """S3 did not answer, or answered that it cannot now: try again later."""


class S3Refused(S3Failure):
    """S3 answered no."""


@dataclass(frozen=True)
class S3Endpoint:
    """Where S3 is and how the gateway signs in (only the gateway has these)."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never print the secret
        return f"S3Endpoint(url={self.url!r}, access_key_id={self.access_key_id!r})"


@dataclass(frozen=True)
class Location:
    """``s3://bucket/prefix``: where a Studio or Workspace keeps its backups."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> Location:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an S3 location: {uri!r}")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in S3 location {uri!r}")
        return cls(bucket, prefix.strip("/"))

    def workspace_prefix(self, editor_id: str) -> str:
        """``<prefix>/<e-ID>/``: the key prefix of every file of one Workspace."""
        return "/".join(p for p in (self.prefix, editor_id) if p) + "/"

    def key(self, editor_id: str, path: str) -> str:
        return self.workspace_prefix(editor_id) + path.strip("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    last_modified: float | None = None  # seconds since the epoch, as S3 lists it


class S3Client:
    """The S3 calls the backup makes, each awaitable, each on the bounded pool."""

    def __init__(
        self,
        endpoint: S3Endpoint,
        blocking: Blocking,
        *,
        workers: int = 8,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        create_buckets: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.create_buckets = create_buckets
        self.known_buckets: set[str] = set()
        self.blocking = blocking
        self.pools: list[urllib3.PoolManager] = []
        self.minio = self._client(endpoint, workers, connect_timeout, read_timeout, retries=2)
        # Probes answer "is S3 there" quickly, and never wait behind uploads.
        self.probe_client = self._client(endpoint, 1, 1.0, 2.0, retries=0)

    def _client(
        self, endpoint: S3Endpoint, pool: int, connect: float, read: float, *, retries: int
    ) -> Minio:
        url = urlsplit(endpoint.url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"S3 endpoint must be an http(s) URL: {endpoint.url!r}")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect, read=read),
            maxsize=pool,
            # A timed-out read is not retried here: S3 that hangs is S3 that is down, and the
            # engine retries once a probe finds it back.
            retries=urllib3.Retry(total=retries, read=0, backoff_factor=0.1, status_forcelist=[]),
        )
        self.pools.append(http)
        return Minio(
            url.netloc,
            access_key=endpoint.access_key_id,
            secret_key=endpoint.secret_access_key,
            secure=url.scheme == "https",
            region=endpoint.region,
            http_client=http,
        )

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run one blocking SDK call on the pool; its errors as :class:`S3Failure`."""
        try:
            return await self.blocking.run(fn, *args)
        except S3Failure:
            raise
        except Exception as exc:
            raise classify(exc) from exc

    # --- operations --------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise :class:`S3Unavailable` unless S3 answers (any answer but a 5xx counts)."""
        try:
            await self.call(self.probe_client.list_buckets)
        except S3Refused:
            return

    async def ensure_bucket(self, bucket: str) -> None:
        if bucket in self.known_buckets:
            return
        if not await self.call(self.minio.bucket_exists, bucket):
            try:
                await self.call(self.minio.make_bucket, bucket)
            except S3Refused as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self.known_buckets.add(bucket)

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write ``data`` at ``key``; a missing bucket is created if ``create_buckets``."""
        try:
            await self.call(self._put, bucket, key, data)
        except S3Refused as exc:
            if exc.code != "NoSuchBucket" or not self.create_buckets:
                raise
            self.known_buckets.discard(bucket)
            await self.ensure_bucket(bucket)
            await self.call(self._put, bucket, key, data)

    def _put(self, bucket: str, key: str, data: bytes) -> None:
        self.minio.put_object(
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            part_size=PART_SIZE,
            num_parallel_uploads=1,
        )

    async def get(self, bucket: str, key: str) -> bytes:
        return await self.call(self._get, bucket, key)

    def _get(self, bucket: str, key: str) -> bytes:
        response = self.minio.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    async def list_objects(self, bucket: str, prefix: str) -> list[Listed]:
        """Every object under ``prefix`` (recursive); none when the bucket does not exist."""
        try:
            return await self.call(self._list, bucket, prefix)
        except S3Refused as exc:
            if exc.code == "NoSuchBucket":
                return []
            raise

    def _list(self, bucket: str, prefix: str) -> list[Listed]:
        return [
            Listed(
                o.object_name,
                o.size or 0,
                o.last_modified.timestamp() if o.last_modified is not None else None,
            )
            for o in self.minio.list_objects(bucket, prefix=prefix, recursive=True)
            if o.object_name is not None and not o.is_dir
        ]

    async def delete_tree(self, bucket: str, key: str) -> None:
        """Delete the object ``key`` and every object under ``key/`` (a directory)."""
        try:
            await self.call(self._delete_tree, bucket, key)
        except S3Refused as exc:
            if exc.code != "NoSuchBucket":
                raise

    def _delete_tree(self, bucket: str, key: str) -> None:
        # Below first: on a server that keeps objects as files (rclone, MinIO on a disk), "key"
        # is then no longer a folder, which cannot be deleted as an object.
        keys = [
            o.object_name
            for o in self.minio.list_objects(bucket, prefix=key + "/", recursive=True)
            if o.object_name is not None
        ]
        for start in range(0, len(keys), 1000):
            errors = list(
                self.minio.remove_objects(
                    bucket, (DeleteObject(k) for k in keys[start : start + 1000])
                )
            )
            if errors:
                raise S3Refused(f"deleting under {key}/: {errors[0].message}", errors[0].code)
        self.minio.remove_object(bucket, key)

    def close(self) -> None:
        for pool in self.pools:
            pool.clear()


def classify(exc: BaseException) -> S3Failure:
    """Tell an SDK or transport error apart: try again later, or S3 said no."""
    if isinstance(exc, S3Error):
        if exc.code in _RETRYABLE_CODES:
            return S3Unavailable(str(exc), exc.code)
        return S3Refused(f"{exc.code}: {exc.message}", exc.code)
    if isinstance(exc, InvalidResponseError):
        # Servers (rclone's among them) that answer errors as text/xml, which the SDK does not
        # parse: the status and the <Code> in the body still say what happened.
        status = getattr(exc, "_code", None)
        body = getattr(exc, "_body", None) or ""
        match = _CODE.search(body)
        code = match.group(1) if match else None
        if (isinstance(status, int) and status >= 500) or code in _RETRYABLE_CODES:
            return S3Unavailable(f"HTTP {status} {code or ''}".strip(), code)
        return S3Refused(f"HTTP {status}: {code or body[:200]}", code)
    if isinstance(exc, ServerError):
        return S3Unavailable(str(exc))
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError | MinioException):
        return S3Unavailable(f"{type(exc).__name__}: {exc}")
    return S3Refused(f"{type(exc).__name__}: {exc}")
