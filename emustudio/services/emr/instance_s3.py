"""S3 as a cluster's nodes reach it: with the instance profile's role (``JobFlowRole``).

On EMR a node fetches its bootstrap scripts and uploads its step logs with the credentials of
the EC2 instance profile. Here the gateway does it for the node, as a session of the profile's
role (trusting ``ec2.amazonaws.com``, named by the instance id, as EC2 names it), through the
pipeline's in-process entry: the role's policies and the bucket's policy decide, as they would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sqlmodel import Session, select

from emustudio.aws.errors import AwsError
from emustudio.context import Principal
from emustudio.services.base import InProcessCall
from emustudio.services.sts.studio import StudioSessionOperations
from emustudio.store import Store
from emustudio.store.iam_tables import IamInstanceProfile, IamRole

log = logging.getLogger(__name__)
T = TypeVar("T")

EC2_SERVICE = "ec2.amazonaws.com"
ATTEMPTS, ATTEMPT_SECONDS = 3, 30.0
MAX_SCRIPT_BYTES = 16 << 20  # a bootstrap script, read whole


class S3Refused(Exception):
    """The object could not be read or written; the message says why (S3's own words)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` (or ``s3n://``, ``s3a://``) as (bucket, key); ValueError if not."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or scheme not in ("s3", "s3n", "s3a") or not bucket:
        raise ValueError(f"{uri} is not an s3:// URI")
    return bucket, key


class InstanceProfileS3:
    def __init__(self, store: Store, sts: StudioSessionOperations, call: InProcessCall) -> None:
        self.store = store
        self.sts = sts
        self.call = call

    async def _session(self, profile: str, instance_id: str) -> Principal:
        name = profile.rsplit("/", 1)[-1]

        def role_name(session: Session) -> str | None:
            found = session.exec(
                select(IamInstanceProfile).where(IamInstanceProfile.name_key == name.lower())
            ).first()
            role = session.get(IamRole, found.role_id) if found and found.role_id else None
            return role.name if role is not None else None

        role = await self.store.tx(role_name)
        if role is None:
            raise S3Refused(f"The instance profile {profile} has no role.")
        try:
            issued = await self.sts.assume_service_role(role, instance_id, service=EC2_SERVICE)
        except AwsError as exc:
            raise S3Refused(exc.message) from exc
        return issued.principal

    async def get(self, profile: str, instance_id: str, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        principal = await self._session(profile, instance_id)

        async def once() -> bytes:
            result = await self.call(
                principal, "s3", "GetObject", {"Bucket": bucket, "Key": key}, user_agent="emr"
            )
            body: bytes | AsyncIterator[bytes] = result["Body"]
            if isinstance(body, bytes):  # a small object comes whole
                return body
            data = bytearray()
            async for piece in body:
                data += piece
                if len(data) > MAX_SCRIPT_BYTES:
                    raise S3Refused(f"{uri} is larger than {MAX_SCRIPT_BYTES} bytes.")
            return bytes(data)

        return await _patiently(once, uri)

    async def put(self, profile: str, instance_id: str, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        principal = await self._session(profile, instance_id)
        params = {"Bucket": bucket, "Key": key, "Body": data}

        async def once() -> None:
            await self.call(principal, "s3", "PutObject", params, user_agent="emr")

        await _patiently(once, uri)


async def _patiently(attempt: Callable[[], Awaitable[T]], uri: str) -> T:
    """``attempt()``, given ``ATTEMPT_SECONDS`` each time, ``ATTEMPTS`` times. A node's call
    must not wedge its cluster: a call to the store behind S3 was seen to hang for good after
    minutes of quiet (a kept connection; see docs/decisions.md), while a new one answers."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return await asyncio.wait_for(attempt(), ATTEMPT_SECONDS)
        except AwsError as exc:
            raise S3Refused(f"{exc.code}: {exc.message}") from exc
        except TimeoutError:
            log.warning("S3 %s: no answer in %.0f s (attempt %d)", uri, ATTEMPT_SECONDS, number)
    raise S3Refused(f"S3 did not answer for {uri}.")
