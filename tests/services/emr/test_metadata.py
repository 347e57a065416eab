"""The instance metadata service's sessions: kept while they outlive the SDKs' refresh window,
replaced before it, and refused (no keys) for a role that does not trust EC2."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal
from emustudio.services.emr.metadata import RENEW_BEFORE, InstanceMetadata, Node, Profile
from emustudio.services.sts.common import AccessDenied, Issued
from emustudio.store.iam_tables import IamRole

NODE = Node("j-1", "i-0123456789abcdef0", "m5.xlarge", "10.0.0.5", "us-east-1a", "us-east-1",
            "EMR_EC2_DefaultRole")  # fmt: skip


class FakeSts:
    """Issues sessions lasting ``lifetime`` seconds, or refuses like a role not trusting EC2."""

    def __init__(self, lifetime: float, trusted: bool = True) -> None:
        self.lifetime, self.trusted, self.issued = lifetime, trusted, 0

    async def assume_instance_role(self, role: IamRole, instance_id: str) -> Issued:
        if not self.trusted:
            raise AccessDenied("EC2 cannot assume the role")
        self.issued += 1
        expires = datetime.fromtimestamp(time.time() + self.lifetime, tz=UTC)
        key = f"ASIA{self.issued:016d}"
        principal = Principal("AssumedRole", f"arn:aws:sts::0:assumed-role/r/{instance_id}", "0",
                              key, instance_id, f"{role.id}:{instance_id}", issuer_id=role.id)  # fmt: skip
        return Issued(Credential(key, "secret", "token", expires), principal)


class Metadata(InstanceMetadata):
    async def profile(self, node: Node) -> Profile:
        return Profile("arn:aws:iam::0:instance-profile/p", "AIPA1", IamRole(id="AROA1", name="r"))


def metadata(sts: FakeSts) -> InstanceMetadata:
    sts_any: Any = sts
    return Metadata(None, None, sts_any, region="us-east-1")  # type: ignore[arg-type]


async def test_a_session_is_kept_then_replaced_before_the_sdks_would_refresh() -> None:
    long = FakeSts(lifetime=3600)
    service = metadata(long)
    first = await service.credentials(NODE)
    again = await service.credentials(NODE)
    assert first is not None and again is not None
    assert first["Code"] == "Success" and first["AccessKeyId"] == again["AccessKeyId"]
    assert long.issued == 1

    # A session with less than RENEW_BEFORE left (SDK v1 refreshes 15 minutes before the end).
    short = FakeSts(lifetime=RENEW_BEFORE - 60)
    service = metadata(short)
    first = await service.credentials(NODE)
    again = await service.credentials(NODE)
    assert first is not None and again is not None
    assert first["AccessKeyId"] != again["AccessKeyId"] and short.issued == 2


async def test_a_role_that_does_not_trust_ec2_gives_no_keys() -> None:
    document = await metadata(FakeSts(3600, trusted=False)).credentials(NODE)
    assert document is not None
    assert document["Code"] == "AssumeRoleUnauthorizedAccess"
    assert "AccessKeyId" not in document


def test_tokens_are_bound_to_the_address_that_asked() -> None:
    service = metadata(FakeSts(3600))
    token = service.token("10.0.0.5", 60)
    assert service.token_valid("10.0.0.5", token)
    assert not service.token_valid("10.0.0.6", token)
    assert not service.token_valid("10.0.0.5", service.token("10.0.0.5", -1))
