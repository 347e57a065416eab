"""The instance metadata service's HTTP face, as EC2's (``/latest/...``), for EMR nodes.

Served on its own port, only on the subnet networks' gateway addresses
(``runtime/reach.py``). SDKs on a node find it through ``AWS_EC2_METADATA_SERVICE_ENDPOINT``,
which the AWS SDK for Java v1 (S3A's) and botocore both read. Answers are plain text or JSON,
as EC2's; a caller that is no running node gets ``404``. The caller is the connection's own
address: no forwarding header is believed, and a token request that carries
``X-Forwarded-For`` is refused, as EC2 refuses it (it came through a proxy).
"""

from __future__ import annotations

import json

from tornado import web
from tornado.routing import PathMatches, Rule

from emustudio.services.emr.metadata import MAX_TOKEN_TTL, InstanceMetadata, Node

_TTL = "X-aws-ec2-metadata-token-ttl-seconds"
_TOKEN = "X-aws-ec2-metadata-token"


class _MetadataHandler(web.RequestHandler):
    def initialize(self, metadata: InstanceMetadata) -> None:
        self.metadata = metadata

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.clear_header("Server")

    @property
    def caller(self) -> str:
        return str(self.request.remote_ip)

    def answer(self, status: int, body: str = "") -> None:
        self.set_status(status)
        self.finish(body)

    async def node(self) -> Node | None:
        """The asking node, having answered the request itself when there is none."""
        token = self.request.headers.get(_TOKEN)
        if token is not None and not self.metadata.token_valid(self.caller, token):
            self.answer(401)
            return None
        node = await self.metadata.node(self.caller)
        if node is None:
            self.answer(404)
        return node


class TokenHandler(_MetadataHandler):
    async def put(self) -> None:
        if "X-Forwarded-For" in self.request.headers:
            return self.answer(403)
        ttl = self.request.headers.get(_TTL, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TOKEN_TTL:
            return self.answer(400)
        if await self.metadata.node(self.caller) is None:
            return self.answer(404)
        self.set_header(_TTL, ttl)
        self.answer(200, self.metadata.token(self.caller, int(ttl)))


class CredentialsHandler(_MetadataHandler):
    async def get(self, role_name: str) -> None:
        node = await self.node()
        if node is None:
            return
        profile = await self.metadata.profile(node)
        if profile is None or profile.role is None:
            return self.answer(404)
        if not role_name:
            return self.answer(200, profile.role.name)
        if role_name != profile.role.name:
            return self.answer(404)
        document = await self.metadata.credentials(node)
        if document is None:
            return self.answer(404)
        self.answer(200, json.dumps(document, indent=2))


class InfoHandler(_MetadataHandler):
    async def get(self) -> None:
        node = await self.node()
        if node is None:
            return
        profile = await self.metadata.profile(node)
        if profile is None:
            return self.answer(404)
        info = {"Code": "Success", "InstanceProfileArn": profile.arn,
                "InstanceProfileId": profile.id}  # fmt: skip
        self.answer(200, json.dumps(info, indent=2))


class InstanceHandler(_MetadataHandler):
    """The few plain values SDKs and scripts read: the instance, its address and place."""

    async def get(self, item: str) -> None:
        node = await self.node()
        if node is None:
            return
        values = {
            "instance-id": node.instance_id,
            "instance-type": node.instance_type,
            "local-ipv4": node.private_ip,
            "local-hostname": node.instance_id,
            "placement/availability-zone": node.availability_zone,
            "placement/region": node.region,
        }
        value = values.get(item.rstrip("/"))
        if value is None:
            return self.answer(404)
        self.answer(200, value)


def metadata_rules(metadata: InstanceMetadata) -> list[Rule]:
    args = {"metadata": metadata}
    return [
        Rule(PathMatches(r"/latest/api/token"), TokenHandler, args),
        Rule(
            PathMatches(r"/latest/meta-data/iam/security-credentials/?([^/]*)"),
            CredentialsHandler,
            args,
        ),
        Rule(PathMatches(r"/latest/meta-data/iam/info/?"), InfoHandler, args),
        Rule(PathMatches(r"/latest/meta-data/(.+)"), InstanceHandler, args),
    ]


def metadata_app(metadata: InstanceMetadata) -> web.Application:
    return web.Application(metadata_rules(metadata))
