"""The gateway process: its parts, how they are wired, and start-up as a list of named steps."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial

from tornado import httpserver, ioloop, web
from tornado.routing import Rule

from emustudio.audit import Auditor
from emustudio.auth import SESSION_COOKIE, IamUserSignIn, SessionStore, StudioGate
from emustudio.auth.engine_gate import KernelRouteGate
from emustudio.auth.federation import Federation
from emustudio.auth.idc import IdentityCenter, acs_url_for, entity_id_for
from emustudio.auth.idp import BuiltinIdp, UsersFile
from emustudio.auth.saml import AWS_ACS_URL, StoreReplayCache, sts_verifier
from emustudio.auth.signin import ConsoleSignIn
from emustudio.authz import BucketPolicies, PerAccount, PolicyAuthorizer
from emustudio.aws import spec
from emustudio.aws_handler import AwsHandler, HealthHandler
from emustudio.backup import BackupEngine, S3Endpoint, S3Failure
from emustudio.config import Settings
from emustudio.credentials import Credentials, RootCredentials
from emustudio.demo import Demo
from emustudio.engines.docker import DockerClusterEngine
from emustudio.engines.standalone import StandaloneClusterEngine
from emustudio.pipeline import Gateway, OtherAccount
from emustudio.proxy import ProxyOptions, WorkspaceProxy
from emustudio.proxy.engine import EngineProxy
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.firewall import FirewallUnavailable, SubnetFirewall
from emustudio.runtime.images import Images
from emustudio.runtime.networks import GatewayContainerMissing, SubnetNetworks
from emustudio.runtime.reach import API, METADATA, GatewayReach, ReachError
from emustudio.runtime.workspaces import DockerWorkspaces
from emustudio.s3 import EmbeddedS3, S3ServerError
from emustudio.s3.store import StoreClient
from emustudio.s3_handler import S3Addressing, anonymous_s3_rules, s3_rules
from emustudio.services.base import WRITES, Service
from emustudio.services.cloudtrail import CloudTrailService
from emustudio.services.ec2 import Ec2Service
from emustudio.services.ec2.enforcement import GroupEnforcement
from emustudio.services.emr import EmrService
from emustudio.services.emr.cluster_life import ClusterLife
from emustudio.services.emr.containers import DockerContainers
from emustudio.services.emr.instance_s3 import InstanceProfileS3
from emustudio.services.emr.kernel_route import KernelRoutes, RouteHooks
from emustudio.services.emr.metadata import InstanceMetadata
from emustudio.services.emr.reattach import reached_subnets
from emustudio.services.emr.service_role import ServiceRoleAttach
from emustudio.services.emr.workspaces import (
    WorkspaceHooks,
    WorkspaceManager,
    workspace_base_url,
)
from emustudio.services.iam import IamCredentials, IamService
from emustudio.services.identitystore import IdentityStoreDirectory, IdentityStoreService
from emustudio.services.operator import OperatorService
from emustudio.services.s3 import Forwarder, S3Service
from emustudio.services.sso_admin import SsoAdminService
from emustudio.services.sts import StsCredentials, StsService
from emustudio.services.sts.common import StsBase
from emustudio.store import Store
from emustudio.web.console import StudioConsole
from emustudio.web.console_admin import console_admin_rules
from emustudio.web.console_pages import console_rules
from emustudio.web.idp import idp_rules
from emustudio.web.metadata import metadata_app
from emustudio.web.routes import studio_rules
from emustudio.web.saml import federation_rules
from emustudio.web.site import SignInTrail, StudioSite, app_settings
from emustudio.web.sso import sso_rules
from emustudio.web.start_page import landing_rules

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A start-up step failed in a way the user can fix; the message says how."""


class EmuStudio:
    """The gateway: every part built from settings and handed its collaborators, in order
    (the store, Docker and Workspaces; IAM, STS and the pipeline; sign-in and the pages)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = settings.resolved_instance_id()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.culler: ioloop.PeriodicCallback | None = None
        self.http_server: httpserver.HTTPServer | None = None
        self.metadata_server: httpserver.HTTPServer | None = None
        self._build_runtime(settings)
        self._build_services(settings)
        self._build_signin(settings)

    def _build_runtime(self, settings: Settings) -> None:
        """The store, Docker, the subnet networks with their firewall, and the Workspaces."""
        region, account = settings.region, settings.account_id
        self.store = Store(settings.database_url)
        self.docker = DockerExecutor(settings.docker_url)
        self.networks = SubnetNetworks(
            self.docker,
            self.instance_id,
            remap=settings.network_remap,
            remap_pool=settings.network_remap_pool,
            gateway_container=settings.gateway_container,
            isolate=settings.enforce_security_groups != "off",
        )
        self.enforcement = make_enforcement(settings, self.store, self.docker, self.instance_id)
        self.ec2 = Ec2Service(
            self.store, self.networks, region=region, account_id=account,
            groups_changed=self.enforcement.refresh if self.enforcement else None,
        )  # fmt: skip
        # Where containers on a subnet reach the gateway (S3, instance metadata): runtime/reach.py.
        self.reach = GatewayReach(
            self.networks, self.docker, host=settings.host, metadata_port=settings.metadata_port
        )
        # Workspaces: JupyterLab containers on the Studio's subnet networks, backed up to S3.
        self.s3_server = make_s3_server(settings)
        self.backup = make_backup(settings, self.store, self.s3_server)
        self.workspace_runtime = DockerWorkspaces.from_settings(
            self.docker, self.instance_id, settings
        )
        # The kernel route: attached Workspaces' servers reach their cluster's kernels through
        # the gateway's API server, at its address on their subnet (runtime/reach.py).
        self.kernel_routes = KernelRoutes(self.store)
        self.workspaces = make_workspaces(
            settings, self.store, self.docker, self.workspace_runtime, self.networks, self.backup,
            self.kernel_route_address, self.kernel_routes,
        )  # fmt: skip

    def _build_services(self, settings: Settings) -> None:
        """IAM, STS, the policy engine and CloudTrail, every service, and the pipeline."""
        region, account = settings.region, settings.account_id
        self.iam, self.sts, self.credentials = make_identity(settings, self.store)
        self.accounts = make_other_accounts(settings, self.credentials, self.sts)
        self.authorizer = make_authorizer(settings, self.store, self.iam, self.accounts)
        self.auditor = Auditor(self.store, region=region, account_id=account)
        self.identitystore, self.sso_admin = make_directory(settings, self.store)
        self.s3 = make_s3(settings, self.store, self.s3_server, self.authorizer)
        self.federation = make_federation(
            settings, self.store, self.iam, self.sts, self.authorizer, self.auditor
        )
        self.clusters = make_clusters(
            settings, self.store, self.docker, self.networks, self.reach, self.kernel_routes
        )
        self.engine_proxy = EngineProxy(
            KernelRouteGate(self.kernel_routes), activity=self.workspaces.touch
        )
        self.instance_metadata = InstanceMetadata(self.store, self.iam, self.sts, region=region)
        self.emr = make_emr(settings, self.store, self.workspaces, self.sso_admin, self.federation)
        self.emr.clusters, self.emr.max_cluster_nodes = self.clusters, settings.cluster_max_nodes
        services = self.services()
        # Each model keeps only the shapes of what its service answers (aws/spec.py: EC2's 7 MB
        # of objects down to a few hundred KB); S3's keeps all: its REST routing reads them.
        spec.serve_only(
            {name: s.model_operations() for name, s in services.items() if name != "s3"}
        )
        self.gateway = Gateway(
            services,
            self.credentials,
            region,
            account,
            self.authorizer,
            self.auditor,
            other_accounts={a.account_id: a.answering(self.s3) for a in self.accounts},
        )
        # AttachEditor acts as the Studio's service role, authorized and recorded.
        self.emr.service_role_attach = ServiceRoleAttach(self.sts, self.gateway.call)
        # Cluster nodes reach S3 as their instance profile's role (bootstrap scripts, step logs).
        self.clusters.s3 = InstanceProfileS3(self.store, self.sts, self.gateway.call)

    def _build_signin(self, settings: Settings) -> None:
        """Sign-in (IAM users, IAM federation, Identity Center, the built-in IdP), the pages,
        the Workspace proxy and the demo."""
        self.identity_center = make_identity_center(
            settings, self.store, self.sts, self.auditor, self.identitystore, self.idc_idp_metadata
        )
        self.idp = make_idp(settings, self.identity_center)
        self.sessions = SessionStore(self.store, lifetime=settings.session_hours * 3600)
        self.studio_site = make_studio_site(self)
        self.console_signin = make_console_signin(settings, self.iam, self.auditor)
        self.proxy = make_proxy(
            settings, self.store, self.sessions, self.authorizer, self.workspaces
        )
        # `emustudio up`'s demo (setting demo): the IdP's users, IAM federation, a Studio.
        self.demo = make_demo(self)

    @property
    def startup(self) -> list[Callable[[], Awaitable[None]]]:
        """Start-up, in order: each step a method (the demo's is the demo's own)."""
        return [
            self.open_store,
            self.load_iam,
            self.load_sts,
            self.connect_docker,
            self.check_firewall,
            self.reconcile_networks,
            self.ensure_default_vpc,
            self.enforce_security_groups,
            self.demo.start_demo,
            self.start_s3,
            self.adopt_workspaces,
            self.clusters.adopt,
            self.start_backup,
            self.listen,
            self.reach_adopted,
        ]

    async def kernel_route_address(self, subnet_id: str) -> str | None:
        """``host:port`` of the kernel route (the API server) from a container on the subnet."""
        try:
            return f"{await self.reach.address(subnet_id)}:{self.reach.port(API)}"
        except (ReachError, KeyError):
            log.warning("the kernel route is not reachable from subnet %s", subnet_id)
            return None

    def services(self) -> dict[str, Service]:
        """The pipeline's services, by botocore name."""
        return {
            "emr": self.emr,
            "ec2": self.ec2,
            "cloudtrail": CloudTrailService(
                self.store, region=self.settings.region, account_id=self.settings.account_id
            ),
            "identitystore": self.identitystore,
            "iam": self.iam,
            "sts": self.sts,
            "emustudio": OperatorService(self.workspaces, region=self.settings.region),
            "s3": self.s3,
            "sso-admin": self.sso_admin,
        }

    def make_app(self) -> web.Application:
        s3_addressing = S3Addressing(
            (self.settings.s3_virtual_host_domain,), self.settings.studio_domain
        )
        return web.Application(
            [
                *landing_rules(
                    self.studio_site,
                    idp=self.idp is not None,
                    endpoint_url=f"http://localhost:{self.settings.url_port}",
                ),
                *s3_rules(self.gateway, s3_addressing),
                *self.proxy.rules(),
                *self.engine_proxy.rules(),
                *self.idp_rules(),
                *sso_rules(self.studio_site, self.federation, self.identity_center),
                *federation_rules(self.studio_site, self.federation),
                *console_admin_rules(
                    self.studio_site,
                    self.federation,
                    self.console_signin,
                    self.gateway,
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
                *anonymous_s3_rules(self.gateway, s3_addressing),  # what no rule above took
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
            saml_url=f"{base_url(self.settings)}/saml",
            studio_url=studio_url_template(self.settings),
            studio_domain=self.settings.studio_domain,
        )

    async def start(self) -> None:
        for step in self.startup:
            log.debug("start-up: %s", step.__name__)
            await step()

    # --- start-up steps ---------------------------------------------------------------------------

    async def open_store(self) -> None:
        for store in (self.store, *(a.store for a in self.accounts)):
            await store.tx(lambda session: None)
            store.create_all()

    async def load_iam(self) -> None:
        for iam in (self.iam, *(a.iam for a in self.accounts)):
            await iam.load()

    async def load_sts(self) -> None:
        for sts in (self.sts, *(a.sts for a in self.accounts)):
            await sts.load()

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

    async def check_firewall(self) -> None:
        """Whether security groups can be enforced here; before any network is made, which
        is made closed only when they can (a closed network without the firewall would keep
        a cluster's nodes apart)."""
        if self.enforcement is None:
            return
        try:
            await self.enforcement.firewall.check()
        except FirewallUnavailable as exc:
            if self.settings.enforce_security_groups == "on":
                raise StartupError(str(exc)) from exc
            log.warning("%s", exc)
            self.enforcement = None
            self.ec2.groups_changed = None
            self.networks.isolate = False

    async def enforce_security_groups(self) -> None:
        """Close the subnet networks but for what the security groups allow."""
        if self.enforcement is not None:
            await self.enforcement.start()

    async def listen(self) -> None:
        # Tornado's own limit sits far above ours so that the handler, not Tornado, answers
        # an oversized request, in AWS's error format.
        self.http_server = httpserver.HTTPServer(
            self.make_app(), max_body_size=max(self.settings.max_request_bytes * 64, 1 << 30)
        )
        self.reach.listen(API, self.http_server, self.settings.port)
        self.metadata_server = httpserver.HTTPServer(metadata_app(self.instance_metadata))
        self.reach.listen(METADATA, self.metadata_server, self.settings.metadata_port)

    async def reach_adopted(self) -> None:
        """Listen again where the adopted containers reach the gateway (``runtime/reach.py``
        binds a subnet's address when a container there first needs it; after a restart,
        the nodes' S3 and metadata calls and the Workspaces' kernel route come unasked)."""
        region = self.settings.region
        for subnet_id in sorted(await self.store.tx(partial(reached_subnets, region))):
            try:
                await self.reach.address(subnet_id)
            except ReachError as exc:
                log.warning("%s", exc)

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
        for server in (self.http_server, self.metadata_server):
            if server is not None:
                server.stop()
                await server.close_all_connections()
        # The firewall's rules go first: nothing after may keep them in place. The networks
        # made with inter-container traffic off stay closed meanwhile (runtime/firewall.py).
        if self.enforcement is not None:
            await self.enforcement.close()
        # Workspace containers keep running: the next start adopts them (and the backup
        # journal keeps what S3 does not have yet).
        await self.backup.close()
        await self.workspaces.close()
        await self.clusters.close()
        await self.workspace_runtime.close()
        self.proxy.close()
        self.engine_proxy.close()
        if self.s3_server is not None:
            await self.s3_server.stop()
        self.docker.close()
        self.store.close()


# --- the parts, each from settings and its collaborators ----------------------------------------


def make_enforcement(
    settings: Settings, store: Store, docker: DockerExecutor, instance_id: str
) -> GroupEnforcement | None:
    if settings.enforce_security_groups == "off":
        return None
    # The standalone engine's masters also join the user's driver network: guarded there too.
    foreign = [settings.standalone_network] if settings.cluster_engine == "standalone" else []
    firewall = SubnetFirewall(
        docker, instance_id, gateway_container=settings.gateway_container, foreign_networks=foreign
    )
    return GroupEnforcement(store, docker, firewall, instance_id)


def make_s3_server(settings: Settings) -> EmbeddedS3 | None:
    """The embedded S3 server, unless an S3 endpoint is configured."""
    if settings.s3_endpoint_url:
        return None
    return EmbeddedS3(
        settings.data_dir,
        port=settings.s3_port,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        region=settings.s3_region,
    )


def s3_endpoint(settings: Settings, s3_server: EmbeddedS3 | None) -> S3Endpoint:
    """The S3 behind the gateway: the configured one, else the embedded server."""
    if s3_server is None:
        return S3Endpoint(
            settings.s3_endpoint_url or "",
            settings.s3_access_key_id or "",
            settings.s3_secret_access_key or "",
            settings.s3_region,
        )
    return S3Endpoint(
        s3_server.url, s3_server.access_key_id, s3_server.secret_access_key, settings.s3_region
    )


def make_backup(settings: Settings, store: Store, s3_server: EmbeddedS3 | None) -> BackupEngine:
    """The Workspace backups, to the S3 behind the gateway."""
    create_buckets = settings.s3_create_buckets
    return BackupEngine.from_settings(
        store,
        s3_endpoint(settings, s3_server),
        settings,
        base_url=workspace_base_url,
        create_buckets=s3_server is not None if create_buckets is None else create_buckets,
    )


def make_authorizer(
    settings: Settings, store: Store, iam: IamService, accounts: list[Account] | None = None
) -> PolicyAuthorizer:
    """The policy engine's authorizer; S3's bucket policies are its resource policies; each
    principal's identity policies come from its own account's IAM."""
    others = {a.account_id: a.iam for a in accounts or []}
    return PolicyAuthorizer(
        store,
        PerAccount(iam, others) if others else iam,
        region=settings.region,
        account_id=settings.account_id,
        resource_policies=BucketPolicies(store, account_id=settings.account_id),
        multi_account=bool(others),
        writes=WRITES,  # what it reads from the store is kept until a write
    )


@dataclass(frozen=True)
class Account:
    """One of ``other_accounts``: its own store (IAM, STS sessions, CloudTrail), IAM and STS."""

    account_id: str
    store: Store
    iam: IamService
    sts: StsService
    auditor: Auditor

    def answering(self, s3: S3Service) -> OtherAccount:
        """What the pipeline answers this account's principals with: S3 is shared (one bucket
        namespace; each bucket has its owner), CloudTrail reads this account's trail."""
        cloudtrail = CloudTrailService(
            self.store, region=self.auditor.region, account_id=self.account_id
        )
        return OtherAccount(
            {"iam": self.iam, "sts": self.sts, "s3": s3, "cloudtrail": cloudtrail}, self.auditor
        )


def make_other_accounts(
    settings: Settings, credentials: Credentials, sts: StsService
) -> list[Account]:
    """The accounts of setting ``other_accounts``, their keys added to ``credentials``; every
    account's STS knows every other's (``sts.accounts``), for AssumeRole across accounts."""
    accounts = sts.accounts
    made = []
    for account_id, key_id, secret in settings.parsed_other_accounts():
        own = replace(
            settings, account_id=account_id, access_key_id=key_id, secret_access_key=secret
        )
        store = Store(f"sqlite:///{settings.data_dir / f'account-{account_id}.db'}")
        iam, its_sts, found = make_identity(own, store, accounts)
        credentials.sources.extend(found.sources)
        auditor = Auditor(store, region=settings.region, account_id=account_id)
        made.append(Account(account_id, store, iam, its_sts, auditor))
    return made


def make_directory(
    settings: Settings, store: Store
) -> tuple[IdentityStoreService, SsoAdminService]:
    """Identity Center's users and groups (the Identity Store), and its admin API: the
    instance that names the Identity Store."""
    identitystore = IdentityStoreService(
        store, region=settings.region, account_id=settings.account_id
    )
    sso_admin = SsoAdminService(
        store,
        region=settings.region,
        account_id=settings.account_id,
        identity_store_id=identitystore.store_id,
    )
    return identitystore, sso_admin


def make_s3(
    settings: Settings, store: Store, s3_server: EmbeddedS3 | None, authorizer: PolicyAuthorizer
) -> S3Service:
    """S3 on this endpoint: the store behind is the backups' S3; bucket policies are resource
    policies of the authorizer."""
    endpoint = s3_endpoint(settings, s3_server)
    markers = settings.s3_directory_markers
    store_client = StoreClient(
        endpoint.url, endpoint.access_key_id, endpoint.secret_access_key, endpoint.region
    )
    return S3Service(
        store,
        Forwarder(store_client, spec.load_service("s3")),
        region=settings.region,
        account_id=settings.account_id,
        markers=s3_server is not None if markers is None else markers,
        access=authorizer,
    )


def make_workspaces(
    settings: Settings,
    store: Store,
    docker: DockerExecutor,
    runtime: DockerWorkspaces,
    networks: SubnetNetworks,
    backup: BackupEngine,
    engine_address: Callable[[str], Awaitable[str | None]] | None = None,
    kernel_routes: KernelRoutes | None = None,
) -> WorkspaceManager:
    containers = DockerContainers(
        runtime,
        networks,
        Images.from_settings(docker, settings),
        memory=settings.workspace_memory,
        cpus=settings.workspace_cpus,
        engine_address=engine_address,
    )
    # A stopped Workspace's kernel route closes and its kernels on the cluster end.
    hooks: list[WorkspaceHooks] = [backup]
    if kernel_routes is not None:
        hooks.append(RouteHooks(kernel_routes))
    return WorkspaceManager(
        store, containers, region=settings.region, base_url=workspace_base_url, hooks=hooks
    )


def make_clusters(
    settings: Settings,
    store: Store,
    docker: DockerExecutor,
    networks: SubnetNetworks,
    reach: GatewayReach,
    kernels: KernelRoutes | None = None,
) -> ClusterLife:
    """EMR clusters: Spark in one container per EC2 instance (engines/docker.py), or the master
    node's only, its executors from an existing standalone master (engines/standalone.py);
    their steps' long ``docker exec`` calls get a pool of their own."""
    engine_class: Callable[..., DockerClusterEngine] = DockerClusterEngine
    if settings.cluster_engine == "standalone":
        master_url, network = settings.standalone_master()
        engine_class = functools.partial(
            StandaloneClusterEngine, master_url=master_url, network=network
        )
    engine = engine_class(
        docker,
        DockerExecutor(settings.docker_url, max_workers=2),
        networks,
        Images.from_settings(docker, settings),
        settings.resolved_instance_id(),
        reach,
        region=settings.region,
        max_node_memory_mib=settings.cluster_node_memory_mib,
        max_node_cpus=settings.cluster_node_cpus,
        start_timeout=settings.cluster_start_timeout,
    )
    return ClusterLife(store, engine, region=settings.region, kernels=kernels)


def make_identity(
    settings: Settings, store: Store, accounts: dict[str, StsBase] | None = None
) -> tuple[IamService, StsService, Credentials]:
    """IAM, STS (AssumeRoleWithSAML verified against the provider's metadata, as AWS does), and
    the credential sources SigV4 looks keys up in: root, IAM users' keys, STS sessions."""
    iam_credentials, sts_credentials = IamCredentials(), StsCredentials()
    iam = IamService(store, account_id=settings.account_id, credentials=iam_credentials)
    sts = StsService(
        store,
        iam,
        account_id=settings.account_id,
        region=settings.region,
        credentials=sts_credentials,
        saml_verifier=sts_verifier(replay_cache=StoreReplayCache(store)),
        accounts=accounts,
    )
    root = RootCredentials(settings.access_key_id, settings.secret_access_key, settings.account_id)
    return iam, sts, Credentials([root, iam_credentials, sts_credentials])


def make_federation(
    settings: Settings,
    store: Store,
    iam: IamService,
    sts: StsService,
    authorizer: PolicyAuthorizer,
    auditor: Auditor,
) -> Federation:
    """IAM federation: the gateway's signin.aws.amazon.com/saml (auth/federation.py)."""
    return Federation(
        store=store,
        iam=iam,
        sts=sts,
        sts_credentials=sts.credentials,
        permissions=authorizer,
        auditor=auditor,
        # The replay cache is the store's: an assertion is accepted once, by the API or here.
        replay_cache=StoreReplayCache(store),
        region=settings.region,
        account_id=settings.account_id,
        acs_urls=(AWS_ACS_URL, f"http://localhost:{settings.url_port}/saml"),
    )


def make_emr(
    settings: Settings,
    store: Store,
    workspaces: WorkspaceManager,
    sso_admin: SsoAdminService,
    sign_ins: Federation,
) -> EmrService:
    return EmrService(
        store,
        region=settings.region,
        account_id=settings.account_id,
        studio_url=studio_url_template(settings),
        page_size=settings.list_page_size,
        max_studios=settings.max_studios,
        workspaces=workspaces,
        # Session mappings name Identity Center users and groups of the Identity Store.
        directory=IdentityStoreDirectory(sso_admin.identity_store_id),
        sign_ins=sign_ins,  # CreateStudioPresignedUrl's one-time URLs
        idc_instance_arn=sso_admin.instance_arn,  # the one CreateStudio accepts
    )


def make_identity_center(
    settings: Settings,
    store: Store,
    sts: StsService,
    auditor: Auditor,
    identitystore: IdentityStoreService,
    idp_metadata: Callable[[], str | None],
) -> IdentityCenter:
    """IAM Identity Center for SSO-mode Studios (auth/idc.py): a SAML SP trusting the
    external IdP of idc_idp_metadata_file, else the built-in IdP."""
    return IdentityCenter(
        store=store,
        sts=sts,
        auditor=auditor,
        replay_cache=StoreReplayCache(store),
        identity_store_id=identitystore.store_id,
        acs_url=acs_url_for(base_url(settings)),
        entity_id=entity_id_for(settings.region, identitystore.store_id),
        idp_metadata=idp_metadata,
        session_seconds=int(settings.session_hours * 3600),
    )


def make_idp(settings: Settings, identity_center: IdentityCenter) -> BuiltinIdp | None:
    """The built-in SAML IdP (auth/idp.py), when a users file is configured."""
    if settings.idp_users_file is None:
        return None
    return BuiltinIdp(
        UsersFile(settings.idp_users_file),
        settings.data_dir,
        base_url=base_url(settings),
        # Identity Center's metadata is pysaml2's writing: asked at the first sign-in only.
        service_providers=lambda: (identity_center.sp_metadata(),),
    )


def make_studio_site(app: EmuStudio) -> StudioSite:
    settings = app.settings
    return StudioSite(
        emr=app.emr,
        sessions=app.sessions,
        signin=IamUserSignIn(
            app.iam,
            app.authorizer,
            root_access_key_id=settings.access_key_id,
            events=SignInTrail(app.auditor),
        ),
        console=StudioConsole(app.gateway, app.authorizer),
        studio_domain=settings.studio_domain,
        session_hours=settings.session_hours,
        identity_center=app.identity_center,
        credentials=app.sts.credentials,
        # A Studio's sign-out offers the built-in IdP's (when its users sign in through it).
        idp_signout_url=f"{base_url(settings)}/idp/logout" if app.idp is not None else None,
        idp_is_identity_source=settings.idc_idp_metadata_file is None,
    )


def make_console_signin(settings: Settings, iam: IamService, auditor: Auditor) -> ConsoleSignIn:
    """The console's IAM user sign-in (web/console_pages.py): the Studio's password check."""
    return ConsoleSignIn(
        iam,
        account_id=settings.account_id,
        root_access_key_id=settings.access_key_id,
        events=SignInTrail(auditor),
    )


def make_proxy(
    settings: Settings,
    store: Store,
    sessions: SessionStore,
    authorizer: PolicyAuthorizer,
    workspaces: WorkspaceManager,
) -> WorkspaceProxy:
    """The proxy into Workspaces, behind the sign-in gate; activity goes to the manager."""
    gate = StudioGate(
        store,
        sessions,
        authorizer,
        region=settings.region,
        account_id=settings.account_id,
        session_hours=settings.session_hours,
    )
    # The gate remembers its decisions: a Workspace's status change makes it decide again.
    workspaces.status_listeners.append(gate.forget_workspace)
    return WorkspaceProxy(
        gate,
        studio_domain=settings.studio_domain,
        session_cookie=SESSION_COOKIE,
        options=ProxyOptions(fast_path=settings.proxy_fast_path),
        activity=workspaces.touch,
    )


def make_demo(app: EmuStudio) -> Demo:
    found = app.credentials.lookup(app.settings.access_key_id)
    assert found is not None and found[1].is_root
    return Demo(
        app.settings,
        gateway=app.gateway,
        root=found[1],
        store=app.store,
        iam=app.iam,
        idp=app.idp,
        identity_store_id=app.identitystore.store_id,
        studio_url=app.emr.studio_url,
    )


def base_url(settings: Settings) -> str:
    return f"http://localhost:{settings.url_port}"


def studio_url_template(settings: Settings) -> str:
    return f"http://{{studio_id}}.{settings.studio_domain}:{settings.url_port}"
