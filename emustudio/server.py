"""The gateway process: its parts, how they are wired, and start-up as a list of named steps."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tornado import httpserver, ioloop, web
from tornado.routing import Rule

from emustudio.audit import Auditor
from emustudio.auth import SESSION_COOKIE, IamUserSignIn, SessionStore, StudioGate
from emustudio.auth.federation import Federation
from emustudio.auth.idc import IdentityCenter, acs_url_for, entity_id_for
from emustudio.auth.idp import BuiltinIdp, UsersFile
from emustudio.auth.saml import AWS_ACS_URL, StoreReplayCache, sts_verifier
from emustudio.auth.signin import ConsoleSignIn
from emustudio.authz import BucketPolicies, PolicyAuthorizer
from emustudio.aws import spec
from emustudio.backup import BackupEngine, S3Endpoint, S3Failure
from emustudio.config import Settings
from emustudio.credentials import Credentials, RootCredentials
from emustudio.demo import Demo
from emustudio.pipeline import Gateway
from emustudio.proxy import WorkspaceProxy
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images
from emustudio.runtime.networks import GatewayContainerMissing, SubnetNetworks
from emustudio.runtime.workspaces import DockerWorkspaces
from emustudio.s3 import EmbeddedS3, S3ServerError
from emustudio.s3.store import StoreClient
from emustudio.services.cloudtrail import CloudTrailService
from emustudio.services.ec2 import Ec2Service
from emustudio.services.emr import EmrService
from emustudio.services.emr.containers import DockerContainers
from emustudio.services.emr.workspaces import WorkspaceHooks, WorkspaceManager
from emustudio.services.iam import IamCredentials, IamService
from emustudio.services.identitystore import IdentityStoreDirectory, IdentityStoreService
from emustudio.services.operator import OperatorService
from emustudio.services.s3 import Forwarder, S3Service
from emustudio.services.sso_admin import SsoAdminService
from emustudio.services.sts import StsCredentials, StsService
from emustudio.store import Store
from emustudio.store.tables import Editor
from emustudio.web.admin_calls import AdminCalls
from emustudio.web.aws_handler import AwsHandler, HealthHandler
from emustudio.web.console import StudioConsole
from emustudio.web.console_admin import console_admin_rules
from emustudio.web.console_pages import console_rules
from emustudio.web.idp import idp_rules
from emustudio.web.landing import landing_rules
from emustudio.web.routes import studio_rules
from emustudio.web.s3_handler import S3Addressing, s3_rules
from emustudio.web.saml import federation_rules
from emustudio.web.site import SignInTrail, StudioSite, app_settings
from emustudio.web.sso import sso_rules

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A start-up step failed in a way the user can fix; the message says how."""


class BackupHooks(WorkspaceHooks):
    """The backup engine at the Workspace transitions (``backup/`` does not import ``services/``,
    so the engine has the hooks' methods and this hands them over)."""

    def __init__(self, engine: BackupEngine) -> None:
        self.engine = engine

    async def before_ready(self, editor: Editor, endpoint: str) -> None:
        await self.engine.before_ready(editor, endpoint)

    async def before_stop(self, editor: Editor) -> None:
        await self.engine.before_stop(editor)

    async def after_delete(self, editor: Editor) -> None:
        await self.engine.after_delete(editor)


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
            gateway_container=settings.gateway_container,
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
        # Workspaces: JupyterLab containers on the Studio's subnet networks.
        self.workspace_runtime = DockerWorkspaces.from_settings(
            self.docker, self.instance_id, settings
        )
        self.workspaces = WorkspaceManager(
            self.store,
            DockerContainers(
                self.workspace_runtime,
                self.networks,
                Images.from_settings(self.docker, settings),
                memory=settings.workspace_memory,
                cpus=settings.workspace_cpus,
            ),
            region=settings.region,
        )
        self.emr.workspaces = self.workspaces
        # Identity Center users and groups: the Identity Store, and session mappings' directory.
        self.identitystore = IdentityStoreService(
            self.store, region=settings.region, account_id=settings.account_id
        )
        self.emr.directory = IdentityStoreDirectory(self.identitystore.store_id)
        # Identity Center's admin API: the instance that names the Identity Store.
        self.sso_admin = SsoAdminService(
            self.store,
            region=settings.region,
            account_id=settings.account_id,
            identity_store_id=self.identitystore.store_id,
        )
        self.emr.idc_instance_arn = self.sso_admin.instance_arn
        # S3 (the embedded server unless one is configured) and the Workspace backups to it.
        self.s3_server: EmbeddedS3 | None = None
        if settings.s3_endpoint_url:
            s3_endpoint = S3Endpoint(
                settings.s3_endpoint_url,
                settings.s3_access_key_id or "",
                settings.s3_secret_access_key or "",
                settings.s3_region,
            )
        else:
            self.s3_server = EmbeddedS3(
                settings.data_dir,
                port=settings.s3_port,
                access_key_id=settings.s3_access_key_id,
                secret_access_key=settings.s3_secret_access_key,
                region=settings.s3_region,
            )
            s3_endpoint = S3Endpoint(
                self.s3_server.url,
                self.s3_server.access_key_id,
                self.s3_server.secret_access_key,
                settings.s3_region,
            )
        create_buckets = settings.s3_create_buckets
        self.backup = BackupEngine.from_settings(
            self.store,
            s3_endpoint,
            settings,
            base_url=self.workspaces.base_url,
            create_buckets=self.s3_server is not None if create_buckets is None else create_buckets,
        )
        self.workspaces.hooks.append(BackupHooks(self.backup))
        self.operator = OperatorService(self.workspaces, region=settings.region)
        self.culler: ioloop.PeriodicCallback | None = None
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
        # AssumeRoleWithSAML: responses verified against the provider's metadata, as AWS does.
        # One replay cache for the API and the sign-in endpoint: an assertion is accepted once.
        self.saml_replay_cache = StoreReplayCache(self.store)
        self.sts.saml_verifier = sts_verifier(replay_cache=self.saml_replay_cache)
        self.credentials = Credentials(
            [
                RootCredentials(
                    settings.access_key_id, settings.secret_access_key, settings.account_id
                ),
                self.iam_credentials,
                self.sts_credentials,
            ]
        )
        # S3 on this endpoint: the store behind is the backups' S3; bucket policies are
        # resource policies of the authorizer.
        markers = settings.s3_directory_markers
        self.s3 = S3Service(
            self.store,
            Forwarder(
                StoreClient(
                    s3_endpoint.url,
                    s3_endpoint.access_key_id,
                    s3_endpoint.secret_access_key,
                    s3_endpoint.region,
                ),
                spec.load_service("s3"),
            ),
            region=settings.region,
            account_id=settings.account_id,
            markers=self.s3_server is not None if markers is None else markers,
        )
        self.authorizer = PolicyAuthorizer(
            self.store,
            self.iam,
            region=settings.region,
            account_id=settings.account_id,
            resource_policies=BucketPolicies(self.store),
        )
        self.s3.access = self.authorizer
        self.gateway = Gateway(
            services={
                "emr": self.emr,
                "ec2": self.ec2,
                "cloudtrail": self.cloudtrail,
                "identitystore": self.identitystore,
                "iam": self.iam,
                "sts": self.sts,
                "emustudio": self.operator,
                "s3": self.s3,
                "sso-admin": self.sso_admin,
            },
            credentials=self.credentials,
            region=settings.region,
            account_id=settings.account_id,
            authorizer=self.authorizer,
            auditor=self.auditor,
        )
        # The Studio's web side: sign-in, sessions, pages, and the gate in front of Workspaces.
        self.sessions = SessionStore(self.store, lifetime=settings.session_hours * 3600)
        self.studio_site = StudioSite(
            emr=self.emr,
            sessions=self.sessions,
            signin=IamUserSignIn(
                self.iam,
                self.authorizer,
                root_access_key_id=settings.access_key_id,
                events=SignInTrail(self.auditor),
            ),
            console=StudioConsole(
                self.emr,
                self.authorizer,
                region=settings.region,
                account_id=settings.account_id,
                auditor=self.auditor,
            ),
            studio_domain=settings.studio_domain,
            session_hours=settings.session_hours,
        )
        # The console's IAM user sign-in (web/console_pages.py): the Studio's password check.
        self.console_signin = ConsoleSignIn(
            self.iam,
            account_id=settings.account_id,
            root_access_key_id=settings.access_key_id,
            events=SignInTrail(self.auditor),
        )
        # IAM federation: the gateway's signin.aws.amazon.com/saml (auth/federation.py).
        self.federation = Federation(
            store=self.store,
            iam=self.iam,
            sts=self.sts,
            sts_credentials=self.sts_credentials,
            permissions=self.authorizer,
            auditor=self.auditor,
            replay_cache=self.saml_replay_cache,
            region=settings.region,
            account_id=settings.account_id,
            acs_urls=(AWS_ACS_URL, f"http://localhost:{settings.url_port}/saml"),
        )
        # IAM Identity Center for SSO-mode Studios (auth/idc.py): a SAML SP trusting the
        # external IdP of idc_idp_metadata_file, else the built-in IdP.
        base_url = f"http://localhost:{settings.url_port}"
        self.identity_center = IdentityCenter(
            store=self.store,
            sts=self.sts,
            auditor=self.auditor,
            replay_cache=self.saml_replay_cache,
            identity_store_id=self.identitystore.store_id,
            acs_url=acs_url_for(base_url),
            entity_id=entity_id_for(settings.region, self.identitystore.store_id),
            idp_metadata=self.idc_idp_metadata,
            session_seconds=int(settings.session_hours * 3600),
        )
        self.emr.sign_ins = self.federation  # CreateStudioPresignedUrl's one-time URLs
        self.studio_site.identity_center = self.identity_center
        self.studio_site.credentials = self.sts_credentials
        # The built-in SAML IdP (auth/idp.py), when a users file is configured.
        self.idp: BuiltinIdp | None = None
        if settings.idp_users_file is not None:
            self.idp = BuiltinIdp(
                UsersFile(settings.idp_users_file),
                settings.data_dir,
                base_url=base_url,
                service_providers=(self.identity_center.sp_metadata(),),
            )
        if self.idp is not None:
            self.studio_site.idp_signout_url = f"{base_url}/idp/logout"
            self.studio_site.idp_is_identity_source = settings.idc_idp_metadata_file is None
        self.gate = StudioGate(
            self.store,
            self.sessions,
            self.authorizer,
            region=settings.region,
            account_id=settings.account_id,
            session_hours=settings.session_hours,
            touch=self.touch_workspace,
        )
        self.proxy = WorkspaceProxy(
            self.gate, studio_domain=settings.studio_domain, session_cookie=SESSION_COOKIE
        )
        self.http_server: httpserver.HTTPServer | None = None
        # `emustudio up`'s demo (setting demo): the IdP's users, IAM federation, a Studio.
        self.demo = Demo(self)
        self.startup: list[Callable[[], Awaitable[None]]] = [
            self.open_store,
            self.load_iam,
            self.load_sts,
            self.connect_docker,
            self.reconcile_networks,
            self.ensure_default_vpc,
            self.demo.start_demo,
            self.start_s3,
            self.adopt_workspaces,
            self.start_backup,
            self.listen,
        ]

    def make_app(self) -> web.Application:
        return web.Application(
            [
                *landing_rules(
                    self.studio_site,
                    idp=self.idp is not None,
                    endpoint_url=f"http://localhost:{self.settings.url_port}",
                ),
                *s3_rules(
                    self.gateway,
                    S3Addressing(
                        (self.settings.s3_virtual_host_domain,), self.settings.studio_domain
                    ),
                ),
                *self.proxy.rules(),
                *self.idp_rules(),
                *sso_rules(self.studio_site, self.federation, self.identity_center),
                *federation_rules(self.studio_site, self.federation),
                *console_admin_rules(
                    self.studio_site,
                    self.federation,
                    self.console_signin,
                    AdminCalls(self.gateway),
                    self.identitystore.store_id,
                ),
                *console_rules(self.studio_site, self.federation, self.console_signin),
                *studio_rules(self.studio_site),
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
            **app_settings(self.settings.resolved_cookie_secret()),
        )

    def idc_idp_metadata(self) -> str | None:
        """Identity Center's identity source: the configured external IdP, else the built-in."""
        if self.settings.idc_idp_metadata_file is not None:
            return self.settings.idc_idp_metadata_file.read_text()
        return self.idp.metadata() if self.idp is not None else None

    def idp_rules(self) -> list[Rule]:
        if self.idp is None:
            return []
        return idp_rules(
            self.idp,
            saml_url=f"http://localhost:{self.settings.url_port}/saml",
            studio_url=f"http://{{studio_id}}.{self.settings.studio_domain}:{self.settings.url_port}",
            studio_domain=self.settings.studio_domain,
        )

    def touch_workspace(self, editor_id: str) -> None:
        if self.emr.workspaces is not None:
            self.emr.workspaces.touch(editor_id)

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
        try:
            await self.networks.check_gateway_container()
        except GatewayContainerMissing as exc:
            raise StartupError(str(exc)) from exc

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

    async def adopt_workspaces(self) -> None:
        """Keep Workspaces whose containers still run; mark the others Idle; stop idle ones."""
        await self.workspaces.adopt()
        idle = self.settings.workspace_idle_timeout
        if idle > 0:
            self.culler = ioloop.PeriodicCallback(
                lambda: self.workspaces.background(self.cull(idle), "cull idle Workspaces"),
                callback_time=min(idle, 60) * 1000,
            )
            self.culler.start()

    async def start_s3(self) -> None:
        """Run the embedded S3 server (unless one is configured); make the default bucket."""
        if self.s3_server is not None:
            try:
                await self.s3_server.start()
            except S3ServerError as exc:
                raise StartupError(str(exc)) from exc
        try:
            await self.backup.s3.ensure_bucket(self.settings.s3_default_bucket)
        except S3Failure as exc:
            if self.s3_server is not None:
                raise StartupError(f"the embedded S3 server does not answer: {exc}") from exc
            log.warning(
                "S3 at %s: cannot make bucket %s (%s); backups wait until S3 answers",
                self.settings.s3_endpoint_url,
                self.settings.s3_default_bucket,
                exc,
            )

    async def start_backup(self) -> None:
        """Follow the running Workspaces and replay the changes not yet in S3."""
        await self.backup.start()

    async def cull(self, idle: float) -> None:
        await self.workspaces.cull_idle(idle)

    async def stop(self) -> None:
        if self.culler is not None:
            self.culler.stop()
        if self.http_server is not None:
            self.http_server.stop()
            await self.http_server.close_all_connections()
        # Workspace containers keep running: the next start adopts them (and the backup
        # journal keeps what S3 does not have yet).
        await self.backup.close()
        await self.workspaces.close()
        await self.workspace_runtime.close()
        self.proxy.close()
        if self.s3_server is not None:
            await self.s3_server.stop()
        self.docker.close()
        self.store.close()
