"""Multipart uploads' checksums, as S3 keeps them: the upload's algorithm and type, each part's
checksum, and at ``CompleteMultipartUpload`` the object's, COMPOSITE (the checksum of the parts'
checksums, ``-<parts>`` after it) or FULL_OBJECT (the CRC of the whole object, combined from the
parts' CRCs and sizes). A single ``PutObject``'s checksum goes with the object instead
(``forward.py``)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from awscrt import checksums as crt
from sqlmodel import Session, select

from emustudio.aws.payload import CHECKSUMS
from emustudio.services.s3.errors import s3_error
from emustudio.store import Store
from emustudio.store.s3_tables import ObjectChecksum, PartChecksum, UploadChecksum

# The CRCs, whose values over two pieces combine into the value over both.
_COMBINE = {
    "crc32": (crt.combine_crc32, 4),
    "crc32c": (crt.combine_crc32c, 4),
    "crc64nvme": (crt.combine_crc64nvme, 8),
}


def _member(algorithm: str) -> str:
    return f"Checksum{algorithm.upper()}"


def upload_kind(params: dict[str, Any]) -> tuple[str, str] | None:
    """The upload's (algorithm, type), S3's defaults filled in; InvalidRequest for a type the
    algorithm cannot have (a full-object checksum is a CRC's; CRC64NVME has no composite)."""
    algorithm = str(params.get("ChecksumAlgorithm") or "").lower()
    kind = params.get("ChecksumType")
    if not algorithm:
        if kind:
            raise s3_error(
                "InvalidRequest", "The x-amz-checksum-type header can only be used with the"
                " x-amz-checksum-algorithm header.",
            )  # fmt: skip
        return None
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

    async def part(self, upload_id: str, number: int, expected: dict[str, str], size: int) -> None:
        """A part's checksum, if its upload has one: it must be of the upload's algorithm."""

        def write(session: Session) -> None:
            upload = session.get(UploadChecksum, upload_id)
            if upload is None:
                return
            value = expected.get(upload.algorithm)
            if value is None:
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
        if any(n not in by_number for n in numbers):
            return {}  # a part went up without its checksum: the object has none
        raws = [base64.b64decode(by_number[n].value) for n in numbers]
        if upload.kind == "FULL_OBJECT":
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

        def write(session: Session) -> None:
            session.merge(
                ObjectChecksum(
                    bucket=bucket, key=key, etag=etag, algorithm=upload.algorithm,
                    kind=upload.kind, value=text,
                )
            )  # fmt: skip
            self._forget(session, upload_id)

        await self.store.tx(write)
        (await self._kept()).add((bucket, key))
        return {_member(upload.algorithm): text, "ChecksumType": upload.kind}

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
        if row is None or row.etag != etag:
            return {}
        return {_member(row.algorithm): row.value, "ChecksumType": row.kind}

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
