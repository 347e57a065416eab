"""The Studio web side's parts in one place, and the Application settings it needs.

:class:`StudioSite` is what every Studio page handler is given (through the URL table's
kwargs): the EMR service, sessions, the sign-in, the console that calls operations as the user.
:func:`app_settings` are the `tornado.web.Application` settings the pages rely on: the cookie
secret, XSRF on every form (the AWS endpoint and the proxy opt out in ``check_xsrf_cookie``),
templates and static files, and the access log (:func:`log_request`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session
from tornado import web
from tornado.log import access_log

from emustudio import ids
from emustudio.audit import Auditor
from emustudio.auth.idc import IdentityCenter
from emustudio.auth.sessions import SessionStore
from emustudio.auth.signin import Authenticator, SignInAttempt
from emustudio.aws.errors import AwsError
from emustudio.context import Principal
from emustudio.services.emr import EmrService
from emustudio.services.sts import StsCredentials
from emustudio.store.cluster_tables import Cluster
from emustudio.web import shell
from emustudio.web.console import StudioConsole

WEB_DIR = Path(__file__).parent
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"
STATIC_PREFIX = "/_emustudio/static/"
XSRF_COOKIE = "emustudio-xsrf"


def app_settings(cookie_secret: str) -> dict[str, Any]:
    return {
        "cookie_secret": cookie_secret,
        "xsrf_cookies": True,
        # Not Tornado's "_xsrf": JupyterLab's pages on the Studio host have their own.
        "xsrf_cookie_name": XSRF_COOKIE,
        "xsrf_cookie_kwargs": {"httponly": True, "samesite": "Lax"},
        "template_path": str(TEMPLATES),
        "static_path": str(STATIC),
        "static_url_prefix": STATIC_PREFIX,
        # The page shell's navigation and user line (web/shell.py), for every template.
        "ui_methods": {"shell_nav": shell.shell_nav, "role_of": shell.role_of},
        "log_function": log_request,
    }


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log, except for the requests of handlers with ``quiet_access_log``
    (the Workspace proxy's) that went well or that the gate refused: those are logged at
    DEBUG only. A JupyterLab page makes dozens of requests and polls its API, and a log line
    costs about as much CPU as proxying the request itself (configurable-http-proxy logs none
    either)."""
    status = handler.get_status()
    # A refusal the Workspace gate remembered was logged when it was decided (auth/gate.py).
    if status < 400 or (status < 500 and getattr(handler, "refused_by_gate", False)):
        if getattr(handler, "quiet_access_log", False):
            if not access_log.isEnabledFor(logging.DEBUG):
                return
            log = access_log.debug
        else:
            log = access_log.info
    else:
        log = access_log.warning if status < 500 else access_log.error
    request = handler.request
    log(
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.uri,
        request.remote_ip,
        1000.0 * request.request_time(),
    )


@dataclass(frozen=True)
class StudioInfo:
    id: str
    name: str
    description: str | None
    auth_mode: str
    arn: str
    url: str
    idp_auth_url: str | None
    idp_relay_state_parameter_name: str | None = None
    vpc_id: str = ""
    subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterPlace:
    """Where a cluster runs: its VPC and subnet, and its master node's address (None until the
    node has one). What the Spark UI route needs, and no API shows (ListInstances is not a
    Studio user's permission)."""

    vpc_id: str
    subnet_id: str
    master_ip: str | None


@dataclass
class StudioSite:
    emr: EmrService
    sessions: SessionStore
    signin: Authenticator
    console: StudioConsole
    studio_domain: str
    session_hours: float
    # SSO-mode Studios' sign-in (auth/idc.py); None: no Identity Center on this gateway.
    identity_center: IdentityCenter | None = None
    # The temporary credentials of role sessions, for the session's credentials page.
    credentials: StsCredentials | None = None
    # The built-in IdP's sign-out page (None: no built-in IdP), and whether it is Identity
    # Center's identity source: a Studio's sign-out chains to it (`idp_signout_for`).
    idp_signout_url: str | None = None
    idp_is_identity_source: bool = False

    def idp_signout_for(self, studio: StudioInfo) -> str | None:
        """The built-in IdP's sign-out when ``studio`` signs its users in through it."""
        if self.idp_signout_url is None:
            return None
        if studio.auth_mode == "SSO":
            return self.idp_signout_url if self.idp_is_identity_source else None
        idp_base = self.idp_signout_url.rsplit("/", 1)[0] + "/"
        if studio.idp_auth_url and studio.idp_auth_url.startswith(idp_base):
            return self.idp_signout_url
        return None

    @property
    def region(self) -> str:
        return self.emr.region

    async def studio(self, studio_id: str) -> StudioInfo | None:
        emr = self.emr

        def read(session: Session) -> StudioInfo | None:
            try:
                studio = emr.get_studio_or_raise(session, studio_id)
            except AwsError:
                return None
            return StudioInfo(
                id=studio.id,
                name=studio.name,
                description=studio.description,
                auth_mode=studio.auth_mode,
                arn=emr.studio_arn(studio.id),
                url=emr.studio_url(studio.id),
                idp_auth_url=studio.idp_auth_url,
                idp_relay_state_parameter_name=studio.idp_relay_state_parameter_name,
                vpc_id=studio.vpc_id,
                subnet_ids=tuple(studio.subnet_ids),
            )

        return await emr.store.tx(read)

    async def cluster_place(self, cluster_id: str) -> ClusterPlace | None:
        """The cluster's network place and master address; None: no such cluster here."""
        region = self.region

        def read(session: Session) -> ClusterPlace | None:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None or cluster.region != region:
                return None
            master = next((n for n in cluster.instances if n.get("Role") == "MASTER"), {})
            return ClusterPlace(cluster.vpc_id, cluster.subnet_id, master.get("PrivateIpAddress"))

        return await self.emr.store.tx(read)

    def editor_arn(self, editor_id: str) -> str:
        return ids.editor_arn(self.region, self.emr.account_id, editor_id)

    def last_progress(self, editor_id: str) -> str:
        """The latest start-progress message of a Workspace, if this gateway started it."""
        manager = self.emr.workspaces
        progress = manager.progress.get(editor_id) if manager is not None else None
        return progress.events[-1][1] if progress is not None and progress.events else ""

    def watch(self, editor_id: str) -> AsyncIterator[str] | None:
        """Start progress as it happens (`WorkspaceManager.watch`), None without a runtime."""
        manager = self.emr.workspaces
        return manager.watch(editor_id) if manager is not None else None


class SignInTrail:
    """Sign-in outcomes in CloudTrail: ``ConsoleLogin`` for the password check, and
    ``CreateStudioPresignedUrl`` for the opening of the Studio (with its refusal, if any)."""

    def __init__(self, auditor: Auditor) -> None:
        self.auditor = auditor

    async def console_login(
        self, attempt: SignInAttempt, user_name: str, principal: Principal | None
    ) -> None:
        await self.auditor.record_event(
            event_name="ConsoleLogin",
            event_source="signin.amazonaws.com",
            principal=principal,
            source_ip=attempt.source_ip,
            user_agent=attempt.user_agent,
            request_parameters=None,
            response_elements={"ConsoleLogin": "Success" if principal else "Failure"},
            error_code=None,
            error_message=None,
            read_only=False,
            event_type="AwsConsoleSignIn",
        )

    async def studio_opened(
        self, attempt: SignInAttempt, principal: Principal, error: str | None
    ) -> None:
        await self.auditor.record_event(
            event_name="CreateStudioPresignedUrl",
            event_source="elasticmapreduce.amazonaws.com",
            principal=principal,
            source_ip=attempt.source_ip,
            user_agent=attempt.user_agent,
            request_parameters={"studioId": attempt.studio_id},
            response_elements=None,
            error_code="AccessDeniedException" if error else None,
            error_message=error,
            read_only=False,
            resources=[("AWS::EMR::Studio", attempt.studio_arn)],
        )


def when(value: Any) -> str:
    """A timestamp for a page: ``2024-05-01 12:00 UTC``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "" if value is None else str(value)
