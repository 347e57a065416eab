"""Checksums the gateway keeps beside the store's objects, as S3 keeps them: a multipart
upload's algorithm and type, each part's checksum, and at ``CompleteMultipartUpload`` the
object's, COMPOSITE (the checksum of the parts' checksums, ``-<parts>`` after it) or
FULL_OBJECT (the CRC of the whole object, combined from the parts' CRCs and sizes), with its
parts (``GetObjectAttributes``). An upload that asks for none gets S3's default, a full-object
CRC64NVME. A single ``PutObject``'s checksum goes with the object as its metadata when known
before its body (``forward.py``); one known only after the body streamed (a trailer's, S3's
default) is kept here (:meth:`Checksums.keep`).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from awscrt import checksums as crt
from sqlmodel import Session, select

from emustudio.aws.payload import CHECKSUMS
from emustudio.services.s3.errors import s3_error
from emustudio.store import Store
from emustudio.store.s3_tables import ObjectChecksum, ObjectPart, PartChecksum, UploadChecksum

DEFAULT = "DEFAULT"  # an upload's kind when none was asked for: S3's full-object CRC64NVME
DEFAULT_ALGORITHM = "crc64nvme"
_MAX_PARTS = 1000  # GetObjectAttributes' parts in one answer, unless asked for fewer

# The CRCs, whose values over two pieces combine into the value over both.
_COMBINE = {
    "crc32": (crt.combine_crc32, 4),
    "crc32c": (crt.combine_crc32c, 4),
    "crc64nvme": (crt.combine_crc64nvme, 8),
}


def _member(algorithm: str) -> str:
    return f"Checksum{algorithm.upper()}"


def upload_kind(params: dict[str, Any]) -> tuple[str, str]:
    """The upload's (algorithm, type), S3's defaults filled in (none asked for: DEFAULT);
    InvalidRequest for a type the algorithm cannot have (a full-object checksum is a CRC's;
    CRC64NVME has no composite)."""
    algorithm = str(params.get("ChecksumAlgorithm") or "").lower()
    kind = params.get("ChecksumType")
    if not algorithm:
        if kind:
            raise s3_error(
                "InvalidRequest", "The x-amz-checksum-type header can only be used with the"
                " x-amz-checksum-algorithm header.",
            )  # fmt: skip
        return DEFAULT_ALGORITHM, DEFAULT
    kind = kind or ("FULL_OBJECT" if algorithm == "crc64nvme" else "COMPOSITE")
    if (kind == "FULL_OBJECT" and algorithm not in _COMBINE) or (
        kind == "COMPOSITE" and algorithm == "crc64nvme"
    ):
        raise s3_error(
            "InvalidRequest",
            f"The {kind} checksum type cannot be used with the {algorithm} checksum algorithm.",
        )
    return algorithm, kind


class Checksums:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.kept: set[tuple[str, str]] | None = None  # the keys with a row, read once

    async def _kept(self) -> set[tuple[str, str]]:
        if self.kept is None:

            def read(session: Session) -> set[tuple[str, str]]:
                return {(r.bucket, r.key) for r in session.exec(select(ObjectChecksum))}

            self.kept = await self.store.tx(read)
        return self.kept

    async def begin(self, upload_id: str, algorithm: str, kind: str) -> None:
        def write(session: Session) -> None:
            session.merge(UploadChecksum(upload_id=upload_id, algorithm=algorithm, kind=kind))

        await self.store.tx(write)

    async def part(
        self, upload_id: str, number: int, expected: dict[str, str], computed: dict[str, str],
        size: int,
    ) -> None:  # fmt: skip
        """A part's checksum, if its upload has one: it must be of the upload's algorithm
        (``expected``: what the part was checked against), or for an upload that asked for
        none, S3's default as computed of the part."""

        def write(session: Session) -> None:
            upload = session.get(UploadChecksum, upload_id)
            if upload is None:
                return
            if upload.kind == DEFAULT:
                value = computed.get(upload.algorithm)
            else:
                value = expected.get(upload.algorithm)
            if value is None:
                if upload.kind == DEFAULT:
                    return
                raise s3_error(
                    "InvalidRequest",
                    "Checksum Type mismatch occurred, expected checksum Type:"
                    f" {upload.algorithm}, actual checksum Type:"
                    f" {next(iter(expected), 'null')}",
                )
            session.merge(
                PartChecksum(upload_id=upload_id, part_number=number, value=value, size=size)
            )

        await self.store.tx(write)

    async def check_parts(self, upload_id: str, parts: list[dict[str, Any]]) -> None:
        """Each completed part's checksum, where the request names one, is the part's."""
        stored = await self._parts(upload_id)
        if stored is None:
            return
        upload, by_number = stored
        for part in parts:
            claimed = part.get(_member(upload.algorithm))
            found = by_number.get(int(part.get("PartNumber", 0)))
            if claimed is not None and (found is None or found.value != claimed):
                raise s3_error("InvalidPart")

    async def complete(
        self,
        upload_id: str,
        bucket: str,
        key: str,
        parts: list[dict[str, Any]],
        stored_etag: Callable[[], Awaitable[str]],
    ) -> dict[str, Any]:
        """The object's checksum, kept for the ETag the store gives the object (which need not
        be the one it answered the completion with: rclone's are not); the members of the
        answer that say it."""
        stored = await self._parts(upload_id)
        if stored is None:
            return {}
        etag = await stored_etag()
        upload, by_number = stored
        numbers = [int(p["PartNumber"]) for p in parts]
        kind = "FULL_OBJECT" if upload.kind == DEFAULT else upload.kind
        if any(n not in by_number for n in numbers):
            # A part went up without its checksum (a copied one): the object has none, but
            # its parts are still counted.
            await self._keep_object(bucket, key, etag, "", "", "", [(n, 0, "") for n in numbers])
            return {}
        raws = [base64.b64decode(by_number[n].value) for n in numbers]
        if kind == "FULL_OBJECT":
            combine, width = _COMBINE[upload.algorithm]
            value = int.from_bytes(raws[0], "big")
            for n, raw in zip(numbers[1:], raws[1:], strict=True):
                value = combine(value, int.from_bytes(raw, "big"), by_number[n].size)
            text = base64.b64encode(value.to_bytes(width, "big")).decode()
        else:
            digest = CHECKSUMS[upload.algorithm]()
            for raw in raws:
                digest.update(raw)
            text = f"{base64.b64encode(digest.digest()).decode()}-{len(numbers)}"

        rows = [(n, by_number[n].size, by_number[n].value) for n in numbers]
        await self._keep_object(bucket, key, etag, upload.algorithm, kind, text, rows, upload_id)
        return {_member(upload.algorithm): text, "ChecksumType": kind}

    async def keep(self, bucket: str, key: str, etag: str, algorithm: str, value: str) -> None:
        """A single PUT's full-object checksum, known only once the store had the body."""
        await self._keep_object(bucket, key, etag, algorithm, "FULL_OBJECT", value, [])

    async def _keep_object(
        self, bucket: str, key: str, etag: str, algorithm: str, kind: str, value: str,
        parts: list[tuple[int, int, str]], upload_id: str | None = None,
    ) -> None:  # fmt: skip
        """The object's row, and its parts in place of any earlier object's of the key."""

        def write(session: Session) -> None:
            session.merge(
                ObjectChecksum(
                    bucket=bucket, key=key, etag=etag, algorithm=algorithm, kind=kind,
                    value=value,
                )
            )  # fmt: skip
            old = select(ObjectPart).where(ObjectPart.bucket == bucket, ObjectPart.key == key)
            for row in session.exec(old):
                session.delete(row)
            session.flush()
            for number, size, part_value in parts:
                session.add(
                    ObjectPart(
                        bucket=bucket, key=key, part_number=number, size=size, value=part_value
                    )
                )
            if upload_id is not None:
                self._forget(session, upload_id)

        await self.store.tx(write)
        (await self._kept()).add((bucket, key))

    async def abort(self, upload_id: str) -> None:
        await self.store.tx(lambda session: self._forget(session, upload_id))

    async def of_object(self, bucket: str, key: str, etag: str) -> dict[str, Any]:
        """A multipart object's checksum members, if kept for this ETag."""
        if (bucket, key) not in await self._kept():
            return {}  # most objects: no read of the store

        def read(session: Session) -> ObjectChecksum | None:
            row = session.get(ObjectChecksum, (bucket, key))
            if row is not None:
                session.expunge(row)
            return row

        row = await self.store.tx(read)
        if row is None or row.etag != etag or not row.value:
            return {}
        return {_member(row.algorithm): row.value, "ChecksumType": row.kind}

    async def object_parts(
        self, bucket: str, key: str, etag: str, marker: int, max_parts: int | None
    ) -> dict[str, Any] | None:
        """``GetObjectAttributes``' ``ObjectParts`` of a multipart object (None for any other):
        the count, and, if the object has a checksum, a page of its parts with theirs."""
        if (bucket, key) not in await self._kept():
            return None

        def read(session: Session) -> tuple[ObjectChecksum | None, list[ObjectPart]]:
            row = session.get(ObjectChecksum, (bucket, key))
            query = select(ObjectPart).where(ObjectPart.bucket == bucket, ObjectPart.key == key)
            parts = sorted(session.exec(query), key=lambda p: p.part_number)
            for item in [row, *parts]:
                if item is not None:
                    session.expunge(item)
            return row, parts

        row, parts = await self.store.tx(read)
        if row is None or row.etag != etag or not parts:
            return None
        answer: dict[str, Any] = {"TotalPartsCount": len(parts)}
        if not row.value:
            return answer  # no checksum: the count alone, as S3 answers such an object
        limit = _MAX_PARTS if max_parts is None else max(0, min(max_parts, _MAX_PARTS))
        after = [p for p in parts if p.part_number > marker]
        page = after[:limit]
        answer.update(PartNumberMarker=marker, MaxParts=limit, IsTruncated=len(after) > limit)
        if page:
            answer["NextPartNumberMarker"] = page[-1].part_number
        answer["Parts"] = [
            {"PartNumber": p.part_number, "Size": p.size, _member(row.algorithm): p.value}
            for p in page
        ]
        return answer

    async def _parts(self, upload_id: str) -> tuple[UploadChecksum, dict[int, PartChecksum]] | None:
        def read(session: Session) -> tuple[UploadChecksum, dict[int, PartChecksum]] | None:
            upload = session.get(UploadChecksum, upload_id)
            if upload is None:
                return None
            rows = session.exec(select(PartChecksum).where(PartChecksum.upload_id == upload_id))
            parts = {r.part_number: r for r in rows}
            for row in [upload, *parts.values()]:
                session.expunge(row)
            return upload, parts

        return await self.store.tx(read)

    @staticmethod
    def _forget(session: Session, upload_id: str) -> None:
        upload = session.get(UploadChecksum, upload_id)
        if upload is not None:
            session.delete(upload)
        for row in session.exec(select(PartChecksum).where(PartChecksum.upload_id == upload_id)):
            session.delete(row)
