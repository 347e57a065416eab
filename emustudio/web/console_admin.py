"""The console's administration of EMR Studios, as the signed-in principal.

What an administrator does in the AWS console's EMR Studio pages, each step one API call made
as the console's principal (IAM user or federated role) through the gateway's authorizer and
CloudTrail (`Gateway.call`, the pipeline's in-process entry), so a page refuses exactly what
``boto3`` with that principal's keys would:

* ``GET /console/studios``: ``ListStudios``, a table with search, sorting and pages;
* ``GET|POST /console/studios/create``: ``CreateStudio`` from a form whose VPC, subnets, security
  groups and roles are picked from lists (``ec2:DescribeVpcs``, ``DescribeSubnets``,
  ``DescribeSecurityGroups``, ``iam:ListRoles``); a list the principal may not read becomes a
  text field, and says why;
* ``GET /console/studios/<es-id>``: ``DescribeStudio``, its URL to copy, the edit form
  (``UpdateStudio``) and, for an SSO-mode Studio, its users and groups
  (``ListStudioSessionMappings``; add one picked from the Identity Store's ``ListUsers`` and
  ``ListGroups`` with a session policy from ``iam:ListPolicies``; remove one);
* ``GET|POST /console/studios/<es-id>/delete``: the question, then ``DeleteStudio``.

A refusal shows the API's message; a form keeps what was typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.client import responses
from typing import Any

from tornado import web
from tornado.routing import HostMatches, PathMatches, Rule

from emustudio.auth.federation import Federation
from emustudio.auth.sessions import CONSOLE_PATH
from emustudio.auth.signin import Authenticator
from emustudio.aws.errors import AwsError
from emustudio.context import Principal
from emustudio.pipeline import Gateway
from emustudio.web.base import page_status
from emustudio.web.console_pages import SIGNIN_PATH, ConsoleHandler
from emustudio.web.site import StudioSite

STUDIOS_PATH = f"{CONSOLE_PATH}/studios"
STUDIO_ID = r"(?P<studio_id>es-[A-Z0-9]{25})"
# CreateStudio's members and the form's field names.
FORM_FIELDS = (
    "name",
    "description",
    "auth_mode",
    "vpc_id",
    "workspace_sg",
    "engine_sg",
    "service_role",
    "user_role",
    "s3_location",
)


@dataclass(frozen=True)
class Choice:
    """A form field picked from a list; ``options`` None: the list could not be read
    (``refused`` says why) and the field is typed instead."""

    name: str
    label: str
    options: list[tuple[str, str]] | None
    refused: str | None = None


class AdminHandler(ConsoleHandler):
    gateway: Gateway
    identity_store_id: str

    def initialize(  # type: ignore[override]
        self,
        site: StudioSite,
        federation: Federation,
        signin: Authenticator,
        gateway: Gateway,
        identity_store_id: str,
    ) -> None:
        super().initialize(site, federation, signin)
        self.gateway = gateway
        self.identity_store_id = identity_store_id

    def principal(self) -> Principal:
        if self.user is not None:
            return self.user
        if self.request.method in ("GET", "HEAD"):
            self.redirect(SIGNIN_PATH)
            raise web.Finish()
        self.error_message = "Your console session has ended. Sign in again."
        raise web.HTTPError(403)

    async def call(
        self, service: str, operation: str, params: dict[str, Any], *, record: bool = True
    ) -> dict[str, Any]:
        return await self.gateway.call(
            self.principal(),
            service,
            operation,
            params,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            record=record,
        )

    async def every(
        self, service: str, operation: str, params: dict[str, Any], key: str, marker: str
    ) -> list[dict[str, Any]]:
        """All pages of a list operation (``marker`` names its paging member both ways)."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(100):  # a bound: a list of 100 pages is already more than a page shows
            page = await self.call(
                service, operation, {**params, **({marker: token} if token else {})}, record=False
            )
            out.extend(page.get(key, []))
            token = page.get("NextToken" if marker == "NextToken" else "Marker")
            if not token:
                break
        return out

    async def choices(self, service: str, operation: str, params: dict[str, Any], key: str,
                      marker: str) -> tuple[list[dict[str, Any]] | None, str | None]:  # fmt: skip
        try:
            return await self.every(service, operation, params, key, marker), None
        except AwsError as exc:
            return None, f"{exc.code}: {exc.message}"

    def refused_page(self, exc: AwsError) -> None:
        status = page_status(exc)
        self.page(
            "error.html",
            status,
            error=f"{exc.code}: {exc.message}",
            status_code=status,
            reason=responses.get(status, "Error"),
        )


class StudiosPage(AdminHandler):
    async def get(self) -> None:
        self.principal()
        try:
            studios = await self.every("emr", "ListStudios", {}, "Studios", "Marker")
        except AwsError as exc:
            self.refused_page(exc)
            return
        self.page("console_admin_studios.html", studios=studios)


class CreateStudioPage(AdminHandler):
    async def get(self) -> None:
        self.principal()
        await self.form_page({"auth_mode": "IAM"})

    async def form_page(
        self,
        draft: dict[str, Any],
        status: int = 200,
        error: str | None = None,
        field_errors: dict[str, str] | None = None,
    ) -> None:
        vpcs, vpc_refused = await self.choices("ec2", "DescribeVpcs", {}, "Vpcs", "NextToken")
        subnets, subnet_refused = await self.choices(
            "ec2", "DescribeSubnets", {}, "Subnets", "NextToken"
        )
        groups, group_refused = await self.choices(
            "ec2", "DescribeSecurityGroups", {}, "SecurityGroups", "NextToken"
        )
        roles, role_refused = await self.choices("iam", "ListRoles", {}, "Roles", "Marker")

        def group_options() -> list[tuple[str, str]] | None:
            if groups is None:
                return None
            return [
                (g["GroupId"], f"{g['GroupId']} ({g.get('GroupName', '')}, {g.get('VpcId', '')})")
                for g in groups
            ]

        role_options = None if roles is None else [(r["Arn"], r["RoleName"]) for r in roles]
        vpc_options = None if vpcs is None else [(v["VpcId"], vpc_label(v)) for v in vpcs]
        choices = [
            Choice("vpc_id", "VPC", vpc_options, vpc_refused),
            Choice("workspace_sg", "Workspace security group", group_options(), group_refused),
            Choice("engine_sg", "Engine security group", group_options(), group_refused),
            Choice("service_role", "Service role", role_options, role_refused),
            Choice("user_role", "User role (IAM Identity Center mode)", role_options, role_refused),
        ]
        self.page(
            "console_admin_create.html",
            status,
            draft=draft,
            choices=choices,
            subnets=subnets,
            subnet_refused=subnet_refused,
            error=error,
            field_errors=field_errors or {},
        )

    async def post(self) -> None:
        self.principal()
        draft: dict[str, Any] = {
            name: self.get_body_argument(name, "").strip() for name in FORM_FIELDS
        }
        draft["subnets"] = [s.strip() for s in self.get_body_arguments("subnets") if s.strip()]
        params: dict[str, Any] = {
            "Name": draft["name"],
            "AuthMode": draft["auth_mode"] or "IAM",
            "VpcId": draft["vpc_id"],
            "SubnetIds": draft["subnets"],
            "ServiceRole": draft["service_role"],
            "WorkspaceSecurityGroupId": draft["workspace_sg"],
            "EngineSecurityGroupId": draft["engine_sg"],
            "DefaultS3Location": draft["s3_location"],
        }
        if draft["description"]:
            params["Description"] = draft["description"]
        if draft["user_role"] and params["AuthMode"] == "SSO":
            params["UserRole"] = draft["user_role"]
        try:
            created = await self.call("emr", "CreateStudio", params)
        except AwsError as exc:
            field = field_of(exc)
            await self.form_page(
                draft,
                page_status(exc),
                error=None if field else f"{exc.code}: {exc.message}",
                field_errors={field: exc.message} if field else None,
            )
            return
        self.redirect(f"{STUDIOS_PATH}/{created['StudioId']}", status=303)


class StudioPage(AdminHandler):
    """One Studio: details, URL, edit, users and groups."""

    async def get(self, studio_id: str) -> None:
        self.principal()
        await self.show(studio_id)

    async def show(
        self,
        studio_id: str,
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
    ) -> None:
        try:
            studio = (await self.call("emr", "DescribeStudio", {"StudioId": studio_id}))["Studio"]
        except AwsError as exc:
            self.refused_page(exc)
            return
        mappings: list[dict[str, Any]] = []
        mapping_refused = None
        users = groups = policies = None
        identity_refused = policy_refused = None
        if studio.get("AuthMode") == "SSO":
            try:
                mappings = await self.every(
                    "emr",
                    "ListStudioSessionMappings",
                    {"StudioId": studio_id},
                    "SessionMappings",
                    "Marker",
                )
            except AwsError as exc:
                mapping_refused = f"{exc.code}: {exc.message}"
            store = {"IdentityStoreId": self.identity_store_id}
            users, identity_refused = await self.choices(
                "identitystore", "ListUsers", store, "Users", "NextToken"
            )
            groups, group_refused = await self.choices(
                "identitystore", "ListGroups", store, "Groups", "NextToken"
            )
            identity_refused = identity_refused or group_refused
            policies, policy_refused = await self.choices(
                "iam", "ListPolicies", {"Scope": "Local"}, "Policies", "Marker"
            )
        subnets, _ = await self.choices(
            "ec2",
            "DescribeSubnets",
            {"Filters": [{"Name": "vpc-id", "Values": [studio["VpcId"]]}]},
            "Subnets",
            "NextToken",
        )
        self.page(
            "console_admin_studio.html",
            status,
            studio=None,
            described=studio,
            mappings=mappings,
            mapping_refused=mapping_refused,
            users=users,
            groups=groups,
            identity_refused=identity_refused,
            policies=policies,
            policy_refused=policy_refused,
            subnets=subnets,
            error=error,
            notice=notice,
        )

    async def post(self, studio_id: str) -> None:
        """``UpdateStudio``: name, description, subnets, default S3 location."""
        self.principal()
        params: dict[str, Any] = {"StudioId": studio_id}
        for member, name in (
            ("Name", "name"),
            ("Description", "description"),
            ("DefaultS3Location", "s3_location"),
        ):
            value = self.get_body_argument(name, None)
            if value is not None:
                params[member] = value.strip()
        subnets = [s for s in self.get_body_arguments("subnets") if s.strip()]
        if subnets:
            params["SubnetIds"] = subnets
        try:
            await self.call("emr", "UpdateStudio", params)
        except AwsError as exc:
            await self.show(studio_id, page_status(exc), error=f"{exc.code}: {exc.message}")
            return
        self.redirect(f"{STUDIOS_PATH}/{studio_id}?updated=1", status=303)


class MappingsPage(StudioPage):
    """``POST .../mappings``: add (``CreateStudioSessionMapping``) or, with ``remove``, delete."""

    async def post(self, studio_id: str) -> None:
        self.principal()
        identity = self.get_body_argument("identity", "")
        kind, _, identity_id = identity.partition(":")
        params: dict[str, Any] = {
            "StudioId": studio_id,
            "IdentityType": kind,
            "IdentityId": identity_id,
        }
        remove = self.get_body_argument("remove", None) is not None
        if not remove:
            params["SessionPolicyArn"] = self.get_body_argument("policy", "")
        try:
            await self.call(
                "emr",
                "DeleteStudioSessionMapping" if remove else "CreateStudioSessionMapping",
                params,
            )
        except AwsError as exc:
            await self.show(studio_id, page_status(exc), error=f"{exc.code}: {exc.message}")
            return
        self.redirect(f"{STUDIOS_PATH}/{studio_id}#mappings", status=303)


class DeleteStudioPage(AdminHandler):
    async def get(self, studio_id: str) -> None:
        self.principal()
        try:
            studio = (await self.call("emr", "DescribeStudio", {"StudioId": studio_id}))["Studio"]
        except AwsError as exc:
            self.refused_page(exc)
            return
        self.page("console_admin_delete.html", described=studio)

    async def post(self, studio_id: str) -> None:
        self.principal()
        try:
            await self.call("emr", "DeleteStudio", {"StudioId": studio_id})
        except AwsError as exc:
            self.refused_page(exc)
            return
        self.redirect(STUDIOS_PATH, status=303)


def vpc_label(vpc: dict[str, Any]) -> str:
    default = ", default" if vpc.get("IsDefault") else ""
    return f"{vpc['VpcId']} ({vpc.get('CidrBlock', '')}{default})"


def field_of(exc: AwsError) -> str | None:
    """The create form's field a refusal is about (validation's member path), else None."""
    if exc.status != 400 or "AccessDenied" in exc.code:
        return None
    match = re.search(r" at '(\w+)' failed", exc.message)
    paths = {
        "name": "name",
        "description": "description",
        "defaultS3Location": "s3_location",
        "vpcId": "vpc_id",
        "serviceRole": "service_role",
    }
    if match:
        return paths.get(match.group(1))
    if exc.message.startswith("DefaultS3Location"):
        return "s3_location"
    return None


def console_admin_rules(
    site: StudioSite,
    federation: Federation,
    signin: Authenticator,
    gateway: Gateway,
    identity_store_id: str,
) -> list[Rule]:
    """Put these before `console_rules` (whose ``/console`` they extend)."""
    domain = re.escape(site.studio_domain.lower().strip("."))
    kwargs: dict[str, Any] = {
        "site": site,
        "federation": federation,
        "signin": signin,
        "gateway": gateway,
        "identity_store_id": identity_store_id,
    }
    return [
        Rule(
            HostMatches(rf"(?!es-[a-z0-9]{{25}}\.{domain}$).*"),
            [
                Rule(PathMatches(rf"{STUDIOS_PATH}/?"), StudiosPage, kwargs),
                Rule(PathMatches(rf"{STUDIOS_PATH}/create"), CreateStudioPage, kwargs),
                Rule(PathMatches(rf"{STUDIOS_PATH}/{STUDIO_ID}"), StudioPage, kwargs),
                Rule(PathMatches(rf"{STUDIOS_PATH}/{STUDIO_ID}/mappings"), MappingsPage, kwargs),
                Rule(PathMatches(rf"{STUDIOS_PATH}/{STUDIO_ID}/delete"), DeleteStudioPage, kwargs),
            ],
        )
    ]
