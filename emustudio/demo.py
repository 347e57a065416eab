"""The demo ``emustudio up`` sets up (setting ``demo``): IAM federation that works at once.

One start-up step, :meth:`Demo.start_demo`, run after the store, IAM and the default VPC are
loaded and before the listener opens. It makes only what is missing, so a restart keeps what the
user changed and never makes a second copy:

* the built-in IdP's users: ``data_dir/idp-users.yaml``, a copy of the packaged
  ``emustudio/demo_users.yaml`` (the same text as ``examples/idp-users.yaml``), written once with
  the account id and the demo Studio's id filled in (``idp_users_file`` set by the user: their
  file is used and never written);
* IAM: the SAML provider ``EmuStudioIdp`` from the built-in IdP's metadata; the roles
  ``StudioAnalyst`` (the "basic user" Workspace actions) and ``StudioAdmin``
  (``elasticmapreduce:*``), both trusting the provider for ``sts:AssumeRoleWithSAML``,
  ``sts:TagSession`` and ``sts:SetSourceIdentity`` (the demo users send tags and a source
  identity) with ``SAML:aud`` AWS sign-in's endpoint, both allowed
  ``elasticmapreduce:CreateStudioPresignedUrl`` on the demo Studio; the Studio's service role
  ``EMRStudio_Service_Role``;
* an IAM-mode Studio ``Demo`` in the default VPC's subnets whose ``IdpAuthUrl`` is the built-in
  IdP's ``/idp/sso``: opening its URL goes to the IdP's login and comes back signed in;
* an SSO-mode Studio ``Demo (Identity Center)`` whose users sign in through IAM Identity Center
  (:mod:`emustudio.demo_identity_center`).

Everything is made through the pipeline's in-process entry (:meth:`Demo.call`, `Gateway.call`:
the model's input validation, the operation, the CloudTrail record, as root), never over HTTP.
The demo Studio is known by its id, kept in the store (``Meta``), not by its name: renaming it
keeps it the demo's. When it is gone (deleted), the next start makes a new one and moves the demo's
policies and users file over to the new id.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from emustudio.auth.idp import BuiltinIdp, IdpUser, UsersFileError, parse_users
from emustudio.auth.saml import AWS_ACS_URL, SamlRejected, idp_entity_id
from emustudio.aws.errors import AwsError
from emustudio.config import DEMO_USERS_FILE, Settings
from emustudio.context import Principal
from emustudio.demo_console import admin_statements, ensure_console_admin
from emustudio.demo_identity_center import IdentityCenterDemo
from emustudio.iam.documented import EMR_TAG, studio_service_policy
from emustudio.pipeline import Gateway
from emustudio.services.iam import IamService
from emustudio.store import Store
from emustudio.store.tables import Meta, Studio

log = logging.getLogger(__name__)

PACKAGED_USERS = Path(__file__).with_name("demo_users.yaml")
PROVIDER_NAME = "EmuStudioIdp"
ANALYST_ROLE = "StudioAnalyst"
ADMIN_ROLE = "StudioAdmin"
SERVICE_ROLE = "EMRStudio_Service_Role"
STUDIO_NAME = "Demo"
# The demo's own inline policy on each role: put when the role or the Studio is made.
POLICY_NAME = "EmuStudioDemo"
USER_AGENT = "emustudio/demo"
_PACKAGED_ACCOUNT = "000000000000"
_EMPTY_STUDIOS = re.compile(r"^(\s*studios:\s*)\[\]", re.MULTILINE)

# EMR Studio's "basic user" Workspace actions (Management Guide, "Configure EMR Studio user
# permissions": create, access, collaborate, attach), the analyst's on top of opening the Studio.
BASIC_USER_ACTIONS = [
    "elasticmapreduce:CreateEditor",
    "elasticmapreduce:DescribeEditor",
    "elasticmapreduce:ListEditors",
    "elasticmapreduce:DeleteEditor",
    "elasticmapreduce:StartEditor",
    "elasticmapreduce:StopEditor",
    "elasticmapreduce:OpenEditorInConsole",
    "elasticmapreduce:UpdateEditor",
    "elasticmapreduce:PutWorkspaceAccess",
    "elasticmapreduce:DeleteWorkspaceAccess",
    "elasticmapreduce:ListWorkspaceAccessIdentities",
    "elasticmapreduce:AttachEditor",
    "elasticmapreduce:DetachEditor",
    "elasticmapreduce:ListClusters",
    "elasticmapreduce:DescribeCluster",
]


class DemoError(RuntimeError):
    """The demo cannot be set up as configured (the message says why)."""


@dataclass(frozen=True)
class DemoStudio:
    """The demo Studio at start: its id (None without a default VPC); whether this start made
    it, and the id of the demo Studio it replaces (one that was deleted)."""

    studio_id: str | None
    made: bool = False
    replaced: str | None = None


@dataclass(frozen=True)
class DemoFacts:
    """What ``emustudio up`` prints: where to go and as whom."""

    studio_id: str | None
    studio_url: str | None
    users_file: Path
    portal_url: str
    sso_studio_url: str | None
    user: str | None
    password: str | None
    console_url: str = ""
    console_user: str = ""
    console_password: str = ""


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _meta_key(region: str) -> str:
    return f"demo-studio:{region}"


def fill_users_file(
    text: str, *, account_id: str, studio_id: str | None, old_id: str | None
) -> str:
    """The demo's users file: the account's ARNs; the demo Studio in each empty ``studios: []``
    and in place of the one it replaces (``old_id``). Ids are unique tokens, so a text edit is
    exact, and it keeps the file's comments and layout."""
    text = text.replace(f"arn:aws:iam::{_PACKAGED_ACCOUNT}:", f"arn:aws:iam::{account_id}:")
    if studio_id is None:
        return text
    if old_id:
        text = text.replace(old_id, studio_id)
    return _EMPTY_STUDIOS.sub(lambda m: f"{m.group(1)}[{studio_id}]", text)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 600 (the file holds passwords)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Demo:
    """The demo of one gateway; :meth:`start_demo` is its start-up step.

    It is given the parts it uses: the pipeline's in-process entry and the root principal it
    calls as, the store (the demo Studios' ids), IAM (the SAML provider's metadata), the
    built-in IdP, the Identity Store's id and the Studio URL template."""

    def __init__(
        self,
        settings: Settings,
        *,
        gateway: Gateway,
        root: Principal,
        store: Store,
        iam: IamService,
        idp: BuiltinIdp | None,
        identity_store_id: str,
        studio_url: Callable[[str], str],
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.root = root
        self.store = store
        self.iam = iam
        self.idp = idp
        self.identity_store_id = identity_store_id
        self.studio_url = studio_url
        self.account = settings.account_id
        self.region = settings.region
        self.facts: DemoFacts | None = None

    # --- names ----------------------------------------------------------------------------------

    @property
    def provider_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:saml-provider/{PROVIDER_NAME}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{name}"

    def studio_arn(self, studio_id: str) -> str:
        return f"arn:aws:elasticmapreduce:{self.region}:{self.account}:studio/{studio_id}"

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.settings.url_port}"

    # --- the step -------------------------------------------------------------------------------

    async def start_demo(self) -> None:
        if not self.settings.demo:
            return
        idp = self.idp
        users_file = self.settings.idp_users_file
        if idp is None or users_file is None:
            raise DemoError(
                "the demo needs the built-in IdP: set idp_users_file (Settings.load sets it)"
            )
        await self.ensure_provider(idp.metadata(), idp.entity_id)
        roles_made = {
            name: await self.ensure_role(name, trust)
            for name, trust in (
                (SERVICE_ROLE, self.service_trust()),
                (ANALYST_ROLE, self.federated_trust()),
                (ADMIN_ROLE, self.federated_trust()),
            )
        }
        if roles_made[SERVICE_ROLE]:
            await self.put_policy(SERVICE_ROLE, self.service_policy())
        studio = await self.ensure_studio()
        studio_id = studio.studio_id
        for name in (ANALYST_ROLE, ADMIN_ROLE):
            if studio_id is not None and (roles_made[name] or studio.made):
                await self.put_policy(name, self.user_policy(name, studio_id))
        if users_file == self.settings.data_dir / DEMO_USERS_FILE:
            # The demo's own copy; a users file the user named is theirs, never written.
            self.ensure_users_file(users_file, studio_id, studio.replaced)
        # Identity Center's users are the IdP's: read once the demo's copy is written.
        sso_studio_id = await IdentityCenterDemo(self).ensure(
            self.idp_users(users_file), await self.default_network()
        )
        console_user, console_password = await ensure_console_admin(self)
        self.facts = DemoFacts(
            studio_id=studio_id,
            studio_url=f"{self.studio_url(studio_id)}/" if studio_id else None,
            users_file=users_file,
            portal_url=f"{self.base_url}/idp/portal",
            sso_studio_url=f"{self.studio_url(sso_studio_id)}/" if sso_studio_id else None,
            console_url=f"{self.base_url}/console",
            console_user=console_user,
            console_password=console_password,
            **self.sign_in_hint(users_file),
        )

    # --- IAM ------------------------------------------------------------------------------------

    async def ensure_provider(self, metadata: str, entity_id: str) -> None:
        provider = await self.iam.get_saml_provider(self.provider_arn)
        if provider is None:
            await self.call(
                "iam",
                "CreateSAMLProvider",
                {"Name": PROVIDER_NAME, "SAMLMetadataDocument": metadata},
            )
            return
        try:
            trusted = idp_entity_id(provider.metadata_document)
        except SamlRejected:
            trusted = None
        if trusted != entity_id:
            # A user's change (or another port): kept, but sign-in through the demo will fail.
            log.warning(
                "demo: SAML provider %s trusts %s, not the built-in IdP %s; delete it to have"
                " the demo make it again at the next start",
                PROVIDER_NAME,
                trusted,
                entity_id,
            )

    def federated_trust(self) -> str:
        return _document(
            {
                "Effect": "Allow",
                "Principal": {"Federated": self.provider_arn},
                # The demo users carry PrincipalTag attributes (session tags: TagSession) and
                # a SourceIdentity (SetSourceIdentity), as IAM requires for each.
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {"SAML:aud": AWS_ACS_URL}},
            }
        )

    @staticmethod
    def service_trust() -> str:
        return _document(
            {
                "Effect": "Allow",
                "Principal": {"Service": "elasticmapreduce.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        )

    def service_policy(self) -> str:
        """The EMR Studio guide's service-role policy (what EMR Studio does as the role when a
        Workspace attaches to a cluster), its S3 statement narrowed to the demo's bucket."""
        bucket = self.settings.s3_default_bucket
        statements = [
            s
            for s in studio_service_policy()["Statement"]
            if not str(s["Action"][0]).startswith("s3:")
        ]
        return _document(
            *statements,
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
        )

    def user_policy(self, role: str, studio_id: str) -> str:
        open_studio = {
            "Effect": "Allow",
            "Action": "elasticmapreduce:CreateStudioPresignedUrl",
            "Resource": self.studio_arn(studio_id),
        }
        if role == ADMIN_ROLE:
            # The console's Studio administration too (demo_console.py), as the IAM user admin.
            return _document(open_studio, *admin_statements(self.account))
        basic = {"Effect": "Allow", "Action": BASIC_USER_ACTIONS, "Resource": "*"}
        return _document(open_studio, basic, self.pass_service_role())

    @staticmethod
    def basic_user_policy() -> str:
        """The basic user's Workspace actions alone (the Identity Center Studio's user role and
        session policy: Identity Center's mapping, not a permission, opens that Studio)."""
        return _document({"Effect": "Allow", "Action": BASIC_USER_ACTIONS, "Resource": "*"})

    def pass_service_role(self) -> dict[str, Any]:
        return {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": self.role_arn(SERVICE_ROLE),
        }

    async def ensure_role(self, name: str, trust: str) -> bool:
        """Make the role when it is missing; True when made."""
        try:
            await self.call("iam", "GetRole", {"RoleName": name}, audit=False)
            return False
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
        await self.call(
            "iam",
            "CreateRole",
            {
                "RoleName": name,
                "AssumeRolePolicyDocument": trust,
                "Description": "emustudio demo (emustudio up; --no-demo to go without)",
            },
        )
        return True

    async def put_policy(self, role: str, document: str) -> None:
        await self.call(
            "iam",
            "PutRolePolicy",
            {"RoleName": role, "PolicyName": POLICY_NAME, "PolicyDocument": document},
        )

    # --- the Studio -----------------------------------------------------------------------------

    async def ensure_studio(self) -> DemoStudio:
        key = _meta_key(self.region)

        def read(session: Session) -> tuple[str | None, bool]:
            meta = session.get(Meta, key)
            if meta is None:
                return None, False
            return meta.value, session.get(Studio, meta.value) is not None

        known, exists = await self.store.tx(read)
        if known is not None and exists:
            return DemoStudio(known)
        network = await self.default_network()
        if network is None:
            log.warning("demo: no default VPC (deleted?), so no demo Studio")
            return DemoStudio(None)
        vpc_id, subnet_ids, group_id = network
        # Tagged as the EMR Studio guide asks: the service role makes the attach's network
        # interface only in subnets and groups that carry EMR's tag.
        await self.call(
            "ec2",
            "CreateTags",
            {"Resources": [*subnet_ids, group_id], "Tags": [{"Key": EMR_TAG, "Value": "true"}]},
        )
        made = await self.call(
            "emr",
            "CreateStudio",
            {
                "Name": STUDIO_NAME,
                "Description": "emustudio's demo: sign in through the built-in IdP",
                "AuthMode": "IAM",
                "VpcId": vpc_id,
                "SubnetIds": subnet_ids,
                "ServiceRole": self.role_arn(SERVICE_ROLE),
                "WorkspaceSecurityGroupId": group_id,
                "EngineSecurityGroupId": group_id,
                "DefaultS3Location": f"s3://{self.settings.s3_default_bucket}/demo",
                "IdpAuthUrl": f"{self.base_url}/idp/sso",
                "IdpRelayStateParameterName": "RelayState",
                "Tags": [{"Key": "emustudio:demo", "Value": "true"}],
            },
        )
        studio_id = str(made["StudioId"])

        def remember(session: Session) -> None:
            session.merge(Meta(key=key, value=studio_id))

        await self.store.tx(remember)
        log.info("demo: made Studio %s (%s)", STUDIO_NAME, studio_id)
        return DemoStudio(studio_id, made=True, replaced=known)

    async def default_network(self) -> tuple[str, list[str], str] | None:
        """The default VPC, its subnets (up to the Studio's five) and its default group."""
        vpcs = await self.call(
            "ec2",
            "DescribeVpcs",
            {"Filters": [{"Name": "is-default", "Values": ["true"]}]},
            audit=False,
        )
        if not vpcs.get("Vpcs"):
            return None
        vpc_id = str(vpcs["Vpcs"][0]["VpcId"])
        by_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
        subnets = await self.call("ec2", "DescribeSubnets", {"Filters": by_vpc}, audit=False)
        groups = await self.call(
            "ec2",
            "DescribeSecurityGroups",
            {"Filters": [*by_vpc, {"Name": "group-name", "Values": ["default"]}]},
            audit=False,
        )
        subnet_ids = [str(s["SubnetId"]) for s in subnets.get("Subnets", [])][:5]
        if not subnet_ids or not groups.get("SecurityGroups"):
            return None
        return vpc_id, subnet_ids, str(groups["SecurityGroups"][0]["GroupId"])

    # --- the users file -------------------------------------------------------------------------

    def ensure_users_file(self, path: Path, studio_id: str | None, old_id: str | None) -> None:
        """Copy the packaged users once; afterwards only move it to a replacement Studio."""
        if not path.exists():
            text = fill_users_file(
                PACKAGED_USERS.read_text(),
                account_id=self.account,
                studio_id=studio_id,
                old_id=None,
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_private(path, text)
            log.info("demo: IdP users in %s", path)
            return
        if studio_id is not None and old_id is not None:
            text = path.read_text()
            if old_id in text:
                _write_private(path, text.replace(old_id, studio_id))

    @staticmethod
    def idp_users(path: Path) -> dict[str, IdpUser]:
        """The users file's users; none when it cannot be read (the IdP's pages say why)."""
        try:
            return parse_users(path.read_text())
        except (OSError, UsersFileError, ValueError):
            return {}

    def sign_in_hint(self, path: Path) -> dict[str, str | None]:
        """The first user whose role is a demo role, to print with its password."""
        try:
            users = parse_users(path.read_text())
        except (OSError, UsersFileError, ValueError):
            return {"user": None, "password": None}
        demo_roles = {self.role_arn(ANALYST_ROLE), self.role_arn(ADMIN_ROLE)}

        def demo_user(user: IdpUser) -> bool:
            return any(role.role_arn in demo_roles for role in user.roles)

        found = next((u for u in users.values() if demo_user(u)), None)
        if found is None:
            return {"user": None, "password": None}
        return {"user": found.name, "password": found.password}

    # --- calls ----------------------------------------------------------------------------------

    async def call(
        self, service: str, operation: str, params: dict[str, Any], *, audit: bool = True
    ) -> dict[str, Any]:
        """Run an operation through the pipeline's in-process entry, as root, user agent
        ``emustudio/demo`` (reads are not recorded in CloudTrail: every start makes them)."""
        return await self.gateway.call(
            self.root, service, operation, params, user_agent=USER_AGENT, record=audit
        )
