"""The instance metadata service of EMR nodes: who is asking, and their instance profile's
credentials.

A node is known by the address it asks from, as EC2's metadata service knows an instance: a
request from a running cluster's node (its ``PrivateIpAddress`` on the subnet network, which a
container with no capabilities cannot forge) is that node's; any other caller, a Workspace on
the same subnet for one, is nobody. The node's credentials are a session of its cluster's
``JobFlowRole`` role named after the instance (``services/sts/instance.py``), kept until less
than :data:`RENEW_BEFORE` seconds are left and then replaced, so SDKs, which fetch again when
fewer than 15 minutes remain (the AWS SDK for Java v1) or 5 to 10 (botocore), always get a fresh
session in time. Nothing on a node holds a long-term key, or the gateway's.

Tokens (IMDSv2's ``PUT /latest/api/token``) are bound to the address that asked for them and
signed with a key of this process; requests without one are answered too, as EC2's default
(``HttpTokens: optional``) does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from emustudio.services.emr.cluster_life import TERMINAL
from emustudio.services.iam import IamService
from emustudio.services.sts import StsService
from emustudio.services.sts.common import AccessDenied, Issued
from emustudio.store import Store
from emustudio.store.cluster_tables import Cluster
from emustudio.store.iam_tables import IamInstanceProfile, IamRole

RENEW_BEFORE = 20 * 60
MAX_TOKEN_TTL = 21600


@dataclass(frozen=True)
class Node:
    """A running cluster's instance, as its metadata shows it."""

    cluster_id: str
    instance_id: str
    instance_type: str
    private_ip: str
    availability_zone: str
    region: str
    profile_name: str


@dataclass(frozen=True)
class Profile:
    arn: str
    id: str
    role: IamRole | None


class InstanceMetadata:
    def __init__(self, store: Store, iam: IamService, sts: StsService, *, region: str) -> None:
        self.store = store
        self.iam = iam
        self.sts = sts
        self.region = region
        self._key = secrets.token_bytes(32)
        # (cluster, instance) -> the session and when it was issued
        self._sessions: dict[tuple[str, str], tuple[Issued, float]] = {}

    # --- who is asking ----------------------------------------------------------------------------

    async def node(self, address: str) -> Node | None:
        """The running node at ``address``, None for anyone else."""

        def find(session: Session) -> Node | None:
            rows = session.exec(select(Cluster).where(Cluster.region == self.region))
            for cluster in rows:
                if cluster.state in TERMINAL:
                    continue
                for node in cluster.instances:
                    if node.get("PrivateIpAddress") == address:
                        return Node(
                            cluster.id, node["Ec2InstanceId"], node["InstanceType"], address,
                            cluster.availability_zone, self.region, cluster.job_flow_role,
                        )  # fmt: skip
            return None

        return await self.store.tx(find)

    # --- tokens -----------------------------------------------------------------------------------

    def token(self, address: str, ttl: int) -> str:
        expires = int(time.time()) + ttl
        return f"{expires}.{self._sign(address, expires)}"

    def token_valid(self, address: str, token: str) -> bool:
        expires, _, signature = token.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature, self._sign(address, int(expires)))

    def _sign(self, address: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{address}|{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    # --- the instance profile ---------------------------------------------------------------------

    async def profile(self, node: Node) -> Profile | None:
        name = node.profile_name.rsplit("/", 1)[-1]

        def read(session: Session) -> Profile | None:
            profile = self.iam.find_instance_profile(session, name)
            if profile is None:
                return None
            role = None if profile.role_id is None else session.get(IamRole, profile.role_id)
            return Profile(_profile_arn(self.iam, profile), profile.id, role)

        return await self.store.tx(read)

    async def credentials(self, node: Node) -> dict[str, Any] | None:
        """The metadata service's credentials document for ``node``'s role (None: no role).
        A role that does not trust EC2 gives a document with ``Code`` and no keys, as EC2's."""
        profile = await self.profile(node)
        if profile is None or profile.role is None:
            return None
        key = (node.cluster_id, node.instance_id)
        now = time.time()
        issued, issued_at = self._sessions.get(key) or (None, now)
        if (
            issued is None
            or issued.principal.issuer_id != profile.role.id  # the profile's role was replaced
            or _expires(issued) - now < RENEW_BEFORE
        ):
            try:
                issued = await self.sts.assume_instance_role(profile.role, node.instance_id)
            except AccessDenied as exc:
                return {"Code": "AssumeRoleUnauthorizedAccess", "Message": exc.message,
                        "LastUpdated": _iso(now)}  # fmt: skip
            issued_at = now
            self._forget_ended()
            self._sessions[key] = (issued, issued_at)
        credential = issued.credential
        return {
            "Code": "Success",
            "LastUpdated": _iso(issued_at),
            "Type": "AWS-HMAC",
            "AccessKeyId": credential.access_key_id,
            "SecretAccessKey": credential.secret_access_key,
            "Token": credential.session_token,
            "Expiration": _iso(_expires(issued)),
        }

    def _forget_ended(self) -> None:
        now = time.time()
        for key in [k for k, (v, _at) in self._sessions.items() if _expires(v) < now]:
            del self._sessions[key]


def _expires(issued: Issued) -> float:
    assert issued.credential.expiration is not None
    return issued.credential.expiration.timestamp()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _profile_arn(iam: IamService, profile: IamInstanceProfile) -> str:
    return iam.arn("instance-profile", profile.path, profile.name)
