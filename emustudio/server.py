"""The gateway process: its parts, how they are wired, and start-up as a list of named steps."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tornado import httpserver, web

from emustudio.audit import Auditor
from emustudio.authz import PolicyAuthorizer
from emustudio.config import Settings
from emustudio.credentials import Credentials, RootCredentials
from emustudio.pipeline import Gateway
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import SubnetNetworks
from emustudio.services.cloudtrail import CloudTrailService
from emustudio.services.ec2 import Ec2Service
from emustudio.services.emr import EmrService
from emustudio.services.iam import IamCredentials, IamService
from emustudio.services.sts import StsCredentials, StsService
from emustudio.store import Store
from emustudio.web.aws_handler import AwsHandler, HealthHandler

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A start-up step failed in a way the user can fix; the message says how."""


class EmuStudio:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = settings.resolved_instance_id()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.database_url)
        self.docker = DockerExecutor(settings.docker_url)
        self.networks = SubnetNetworks(
            self.docker,
            self.instance_id,
            remap=settings.network_remap,
            remap_pool=settings.network_remap_pool,
        )
        self.ec2 = Ec2Service(
            self.store, self.networks, region=settings.region, account_id=settings.account_id
        )
        self.emr = EmrService(
            self.store,
            region=settings.region,
            account_id=settings.account_id,
            studio_url=f"http://{{studio_id}}.{settings.studio_domain}:{settings.url_port}",
            page_size=settings.list_page_size,
            max_studios=settings.max_studios,
        )
        self.cloudtrail = CloudTrailService(
            self.store, region=settings.region, account_id=settings.account_id
        )
        self.auditor = Auditor(self.store, region=settings.region, account_id=settings.account_id)
        self.iam_credentials = IamCredentials()
        self.iam = IamService(
            self.store, account_id=settings.account_id, credentials=self.iam_credentials
        )
        self.sts_credentials = StsCredentials()
        self.sts = StsService(
            self.store,
            self.iam,
            account_id=settings.account_id,
            region=settings.region,
            credentials=self.sts_credentials,
        )
        self.credentials = Credentials(
            [
                RootCredentials(
                    settings.access_key_id, settings.secret_access_key, settings.account_id
                ),
                self.iam_credentials,
                self.sts_credentials,
            ]
        )
        self.gateway = Gateway(
            services={
                "emr": self.emr,
                "ec2": self.ec2,
                "cloudtrail": self.cloudtrail,
                "iam": self.iam,
                "sts": self.sts,
            },
            credentials=self.credentials,
            region=settings.region,
            account_id=settings.account_id,
            authorizer=PolicyAuthorizer(
                self.store, self.iam, region=settings.region, account_id=settings.account_id
            ),
            auditor=self.auditor,
        )
        self.http_server: httpserver.HTTPServer | None = None
        self.startup: list[Callable[[], Awaitable[None]]] = [
            self.open_store,
            self.load_iam,
            self.load_sts,
            self.connect_docker,
            self.reconcile_networks,
            self.ensure_default_vpc,
            self.listen,
        ]

    def make_app(self) -> web.Application:
        return web.Application(
            [
                (r"/_emustudio/health", HealthHandler, {"region": self.settings.region}),
                (
                    r"/",
                    AwsHandler,
                    {
                        "gateway": self.gateway,
                        "max_request_bytes": self.settings.max_request_bytes,
                    },
                ),
            ],
        )

    async def start(self) -> None:
        for step in self.startup:
            log.debug("start-up: %s", step.__name__)
            await step()

    # --- start-up steps ---------------------------------------------------------------------------

    async def open_store(self) -> None:
        await self.store.tx(lambda session: None)
        self.store.create_all()

    async def load_iam(self) -> None:
        await self.iam.load()

    async def load_sts(self) -> None:
        await self.sts.load()

    async def connect_docker(self) -> None:
        if not await self.docker.ping():
            raise StartupError(
                "Docker is not reachable"
                + (f" at {self.settings.docker_url}" if self.settings.docker_url else "")
                + ": start dockerd (scripts/setup does) or set EMUSTUDIO_DOCKER_URL."
            )

    async def reconcile_networks(self) -> None:
        report = await self.ec2.reconcile_networks()
        if report.created or report.removed:
            log.info(
                "subnet networks: recreated %s, removed orphans %s", report.created, report.removed
            )

    async def ensure_default_vpc(self) -> None:
        await self.ec2.ensure_default_vpc()

    async def listen(self) -> None:
        # Tornado's own limit sits far above ours so that the handler, not Tornado, answers
        # an oversized request, in AWS's error format.
        self.http_server = httpserver.HTTPServer(
            self.make_app(), max_body_size=max(self.settings.max_request_bytes * 64, 1 << 30)
        )
        self.http_server.listen(self.settings.port, self.settings.host)

    async def stop(self) -> None:
        if self.http_server is not None:
            self.http_server.stop()
            await self.http_server.close_all_connections()
        self.docker.close()
        self.store.close()
