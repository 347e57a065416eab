"""IAM Identity Center's admin API (``sso-admin``), as EMR Studio and its setup guide use it.

One instance per account, fixed for the account as the Identity Store is (``ssoins-`` + 16 hex
digits derived from the account id), whose ``IdentityStoreId`` is the gateway's Identity Store:
``ListInstances`` is how a user, or a script following AWS's guide, learns that id.

Each SSO-mode Studio is an Identity Center application (EMR makes one when it creates such a
Studio), known by an ARN derived from the Studio's id; its assignments are the Studio's session
mappings (a user or group mapped to the Studio is assigned to it). They are read here, never
stored twice: deleting the Studio or a mapping removes the application or the assignment.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from emustudio.aws.errors import AwsError
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import Service, operation
from emustudio.store import Store
from emustudio.store.tables import Studio, StudioSessionMapping

# Identity Center's own clock for an instance made with the account; any fixed instant serves.
_INSTANCE_CREATED = datetime(2024, 1, 1, tzinfo=UTC)
EMR_STUDIO_PROVIDER = "arn:aws:sso::aws:applicationProvider/emr-studio"


class ResourceNotFound(AwsError):
    code = "ResourceNotFoundException"
    status = 400


class ValidationError(AwsError):
    code = "ValidationException"
    status = 400


def _hex(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def instance_id(account_id: str) -> str:
    return "ssoins-" + _hex(f"emustudio-sso-instance/{account_id}", 16)


def instance_arn(account_id: str) -> str:
    return f"arn:aws:sso:::instance/{instance_id(account_id)}"


class SsoAdminService(Service):
    name = "sso-admin"

    def __init__(
        self, store: Store, *, region: str, account_id: str, identity_store_id: str
    ) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.identity_store_id = identity_store_id
        self.instance_arn = instance_arn(account_id)

    # --- helpers --------------------------------------------------------------------------------

    @property
    def identity_store_arn(self) -> str:
        return f"arn:aws:identitystore::{self.account_id}:identitystore/{self.identity_store_id}"

    def instance(self) -> dict[str, Any]:
        return {
            "InstanceArn": self.instance_arn,
            "IdentityStoreId": self.identity_store_id,
            "IdentityStoreArn": self.identity_store_arn,
            "OwnerAccountId": self.account_id,
            "Name": "emustudio",
            "CreatedDate": _INSTANCE_CREATED,
            "Status": "ACTIVE",
            "PrimaryRegion": self.region,
        }

    def check_instance(self, arn: str) -> None:
        if arn != self.instance_arn:
            raise ResourceNotFound(f"Instance {arn} does not exist.")

    def application_arn(self, studio_id: str) -> str:
        suffix = _hex(f"emustudio-application/{studio_id}", 16)
        return (
            f"arn:aws:sso::{self.account_id}:application/{instance_id(self.account_id)}"
            f"/apl-{suffix}"
        )

    def application(self, studio: Studio) -> dict[str, Any]:
        return {
            "ApplicationArn": self.application_arn(studio.id),
            "ApplicationProviderArn": EMR_STUDIO_PROVIDER,
            "Name": studio.name,
            "ApplicationAccount": self.account_id,
            "InstanceArn": self.instance_arn,
            "IdentityStoreArn": self.identity_store_arn,
            "Status": "ENABLED",
            "Description": f"Amazon EMR Studio {studio.id}",
            "CreatedDate": datetime.fromtimestamp(studio.created_at, tz=UTC),
        }

    async def sso_studios(self) -> list[Studio]:
        def read(session: Session) -> list[Studio]:
            rows = session.exec(
                select(Studio)
                .where(Studio.region == self.region, Studio.auth_mode == "SSO")
                .order_by(col(Studio.created_at))
            ).all()
            for row in rows:
                session.expunge(row)
            return [r for r in rows if r.idc_instance_arn in (None, self.instance_arn)]

        return await self.store.tx(read)

    async def studio_of(self, application_arn: str) -> Studio:
        for studio in await self.sso_studios():
            if self.application_arn(studio.id) == application_arn:
                return studio
        raise ResourceNotFound(f"Application {application_arn} does not exist.")

    @staticmethod
    def page(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
        """A page of ``items`` from ``NextToken`` (`services/pages.py`)."""
        size = int(params.get("MaxResults") or 100)
        invalid = ValidationError("The NextToken is invalid.")
        found, token = pages.page(items, params.get("NextToken"), size, invalid)
        return pages.with_token({key: found}, token)

    # --- operations -----------------------------------------------------------------------------

    @operation("ListInstances")
    async def list_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self.page([self.instance()], params, "Instances")

    @operation("DescribeInstance")
    async def describe_instance(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self.check_instance(params["InstanceArn"])
        return self.instance()

    @operation("ListApplications")
    async def list_applications(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self.check_instance(params["InstanceArn"])
        apps = [self.application(s) for s in await self.sso_studios()]
        wanted = (params.get("Filter") or {}).get("ApplicationProvider")
        if wanted:
            apps = [a for a in apps if a["ApplicationProviderArn"] == wanted]
        return self.page(apps, params, "Applications")

    @operation("DescribeApplication")
    async def describe_application(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return self.application(await self.studio_of(params["ApplicationArn"]))

    @operation("ListApplicationAssignments")
    async def list_application_assignments(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        arn = params["ApplicationArn"]
        studio = await self.studio_of(arn)

        def read(session: Session) -> list[dict[str, Any]]:
            rows = session.exec(
                select(StudioSessionMapping).where(StudioSessionMapping.studio_id == studio.id)
            ).all()
            return [
                {
                    "ApplicationArn": arn,
                    "PrincipalId": r.identity_id,
                    "PrincipalType": r.identity_type,
                }
                for r in rows
            ]

        return self.page(await self.store.tx(read), params, "ApplicationAssignments")

    @operation("DescribeApplicationAssignment")
    async def describe_application_assignment(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        found = await self.list_application_assignments(
            ctx, {"ApplicationArn": params["ApplicationArn"]}
        )
        for item in found["ApplicationAssignments"]:
            if (item["PrincipalId"], item["PrincipalType"]) == (
                params["PrincipalId"],
                params["PrincipalType"],
            ):
                return dict(item)
        raise ResourceNotFound(
            f"Principal {params['PrincipalId']} is not assigned to {params['ApplicationArn']}."
        )

    @operation("ListApplicationProviders")
    async def list_application_providers(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        provider = {
            "ApplicationProviderArn": EMR_STUDIO_PROVIDER,
            "FederationProtocol": "SAML",
            "DisplayData": {"DisplayName": "Amazon EMR Studio"},
        }
        return self.page([provider], params, "ApplicationProviders")
