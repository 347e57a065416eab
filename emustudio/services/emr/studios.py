"""Studios: create, describe, list, update, delete, and their tags.

Rules AWS states only in prose, enforced here: the VPC, subnets and security groups exist and
belong to the Studio's VPC; a Studio has one to five subnets and ``UpdateStudio`` may add subnets
but never drop one; ``IdpAuthUrl``/``IdpRelayStateParameterName`` belong to IAM mode only; SSO
mode needs a ``UserRole``; tag keys have at most 128 characters and values 256.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.emr.common import (
    STUDIO_NOT_FOUND,
    EmrBase,
    InternalServerException,
    InvalidRequest,
)
from emustudio.services.emr.workspaces import WorkspaceManager
from emustudio.store.cluster_tables import Cluster
from emustudio.store.tables import SecurityGroup, Studio, StudioSessionMapping, Subnet, Tag, Vpc

MAX_SUBNETS = 5


def epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def check_tags(tags: list[dict[str, Any]]) -> None:
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value")
        if not key:
            raise InvalidRequest("Tag key must not be empty.")
        if len(key) > 128:
            raise InvalidRequest(f"Tag key '{key}' is longer than 128 characters.")
        if value is not None and len(value) > 256:
            raise InvalidRequest(f"Tag value for key '{key}' is longer than 256 characters.")
        if key.lower().startswith("aws:"):
            raise InvalidRequest(f"Tag key '{key}' uses the reserved prefix 'aws:'.")


def check_s3_location(location: str) -> None:
    if not location.startswith("s3://") or len(location) <= len("s3://"):
        raise InvalidRequest(
            f"DefaultS3Location '{location}' is not a valid Amazon S3 location (s3://bucket/path)."
        )


class StudioOperations(EmrBase):
    workspaces: WorkspaceManager | None = None  # warm pools follow the Studios' subnets

    def studio_arn(self, studio_id: str) -> str:
        return ids.studio_arn(self.region, self.account_id, studio_id)

    def studio_tags(self, session: Session, studio_id: str) -> list[dict[str, str]]:
        rows = session.exec(select(Tag).where(Tag.resource_id == studio_id).order_by(Tag.key))
        return [{"Key": t.key, "Value": t.value} for t in rows]

    def studio_shape(self, session: Session, studio: Studio) -> dict[str, Any]:
        out: dict[str, Any] = {
            "StudioId": studio.id,
            "StudioArn": self.studio_arn(studio.id),
            "Name": studio.name,
            "Description": studio.description,
            "AuthMode": studio.auth_mode,
            "VpcId": studio.vpc_id,
            "SubnetIds": list(studio.subnet_ids),
            "ServiceRole": studio.service_role,
            "UserRole": studio.user_role,
            "WorkspaceSecurityGroupId": studio.workspace_security_group_id,
            "EngineSecurityGroupId": studio.engine_security_group_id,
            "Url": self.studio_url(studio.id),
            "CreationTime": epoch(studio.created_at),
            "DefaultS3Location": studio.default_s3_location,
            "IdpAuthUrl": studio.idp_auth_url,
            "IdpRelayStateParameterName": studio.idp_relay_state_parameter_name,
            "Tags": self.studio_tags(session, studio.id),
            "IdcInstanceArn": studio.idc_instance_arn,
            "TrustedIdentityPropagationEnabled": studio.trusted_identity_propagation_enabled,
            "IdcUserAssignment": studio.idc_user_assignment,
            "EncryptionKeyArn": studio.encryption_key_arn,
        }
        return {k: v for k, v in out.items() if v is not None}

    # --- the prose rules ------------------------------------------------------------------------

    def check_subnets(self, session: Session, vpc_id: str, subnet_ids: list[str]) -> None:
        if not subnet_ids:
            raise InvalidRequest("A Studio must have at least one subnet.")
        if len(set(subnet_ids)) > MAX_SUBNETS:
            raise InvalidRequest(f"A Studio can have a maximum of {MAX_SUBNETS} subnets.")
        for subnet_id in subnet_ids:
            subnet = session.get(Subnet, subnet_id)
            if subnet is None or subnet.region != self.region:
                raise InvalidRequest(f"Subnet '{subnet_id}' does not exist.")
            if subnet.vpc_id != vpc_id:
                raise InvalidRequest(f"Subnet '{subnet_id}' does not belong to VPC '{vpc_id}'.")

    def check_network(self, session: Session, params: dict[str, Any]) -> None:
        vpc_id = params["VpcId"]
        vpc = session.get(Vpc, vpc_id)
        if vpc is None or vpc.region != self.region:
            raise InvalidRequest(f"VPC '{vpc_id}' does not exist.")
        self.check_subnets(session, vpc_id, params["SubnetIds"])
        for member in ("WorkspaceSecurityGroupId", "EngineSecurityGroupId"):
            group_id = params[member]
            group = session.get(SecurityGroup, group_id)
            if group is None or group.region != self.region:
                raise InvalidRequest(f"Security group '{group_id}' does not exist.")
            if group.vpc_id != vpc_id:
                raise InvalidRequest(
                    f"Security group '{group_id}' ({member}) does not belong to VPC '{vpc_id}'."
                )

    @staticmethod
    def check_auth_mode(params: dict[str, Any]) -> None:
        if params["AuthMode"] == "SSO":
            if not params.get("UserRole"):
                raise InvalidRequest(
                    "UserRole is required for a Studio that uses IAM Identity Center"
                    " authentication (AuthMode SSO)."
                )
            for member in ("IdpAuthUrl", "IdpRelayStateParameterName"):
                if params.get(member):
                    raise InvalidRequest(
                        f"{member} can only be specified for a Studio that uses IAM"
                        " authentication (AuthMode IAM)."
                    )
        elif params.get("IdcInstanceArn") or params.get("IdcUserAssignment"):
            raise InvalidRequest(
                "IdcInstanceArn and IdcUserAssignment can only be specified for a Studio that"
                " uses IAM Identity Center authentication (AuthMode SSO)."
            )
        if not params["ServiceRole"]:
            raise InvalidRequest("ServiceRole must not be empty.")

    # --- operations -----------------------------------------------------------------------------

    # The account's IAM Identity Center instance (``sso-admin``), which an SSO-mode Studio's
    # IdcInstanceArn must name; None: not checked.
    idc_instance_arn: str | None = None

    def check_idc_instance(self, params: dict[str, Any]) -> None:
        given = params.get("IdcInstanceArn")
        if given and self.idc_instance_arn is not None and given != self.idc_instance_arn:
            raise InvalidRequest(
                f"The IAM Identity Center instance {given} does not exist in this account"
                f" (aws sso-admin list-instances names {self.idc_instance_arn})."
            )

    @operation("CreateStudio")
    async def create_studio(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.check_auth_mode(params)
        self.check_idc_instance(params)
        check_s3_location(params["DefaultS3Location"])
        tags = list(params.get("Tags") or [])
        check_tags(tags)
        if not params["Name"].strip():
            raise InvalidRequest("Name must not be empty.")

        def create(session: Session) -> dict[str, Any]:
            self.check_network(session, params)
            count = session.exec(
                select(func.count()).select_from(Studio).where(Studio.region == self.region)
            ).one()
            if count >= self.max_studios:
                raise InvalidRequest(
                    f"The maximum number of Studios ({self.max_studios}) for this account has"
                    " been reached."
                )
            studio = Studio(
                id=ids.studio_id(),
                region=self.region,
                name=params["Name"],
                description=params.get("Description"),
                auth_mode=params["AuthMode"],
                vpc_id=params["VpcId"],
                subnet_ids=list(dict.fromkeys(params["SubnetIds"])),
                service_role=params["ServiceRole"],
                user_role=params.get("UserRole"),
                workspace_security_group_id=params["WorkspaceSecurityGroupId"],
                engine_security_group_id=params["EngineSecurityGroupId"],
                default_s3_location=params["DefaultS3Location"],
                idp_auth_url=params.get("IdpAuthUrl"),
                idp_relay_state_parameter_name=params.get("IdpRelayStateParameterName"),
                trusted_identity_propagation_enabled=params.get(
                    "TrustedIdentityPropagationEnabled"
                ),
                idc_user_assignment=params.get("IdcUserAssignment"),
                idc_instance_arn=params.get("IdcInstanceArn"),
                encryption_key_arn=params.get("EncryptionKeyArn"),
                created_at=self.now(),
            )
            session.add(studio)
            for tag in tags:
                session.merge(
                    Tag(
                        resource_id=studio.id,
                        key=tag["Key"],
                        value=tag.get("Value", ""),
                        resource_type="studio",
                    )
                )
            return {"StudioId": studio.id, "Url": self.studio_url(studio.id)}

        created = await self.store.tx(create)
        await self.sync_pools()
        return created

    async def sync_pools(self) -> None:
        """The Studios' subnets changed: warm pools follow (a first start there is warm too)."""
        if self.workspaces is not None:
            await self.workspaces.sync_pools()

    @operation("DescribeStudio")
    async def describe_studio(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            studio = self.get_studio_or_raise(session, params["StudioId"])
            return {"Studio": self.studio_shape(session, studio)}

        return await self.store.tx(describe)

    @operation("ListStudios")
    async def list_studios(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            studios = list(
                session.exec(
                    select(Studio)
                    .where(Studio.region == self.region)
                    .order_by(col(Studio.created_at), col(Studio.id))
                )
            )
            page, marker = self.page(studios, params.get("Marker"))
            summaries = [
                {
                    "StudioId": s.id,
                    "Name": s.name,
                    "VpcId": s.vpc_id,
                    "Description": s.description,
                    "Url": self.studio_url(s.id),
                    "AuthMode": s.auth_mode,
                    "CreationTime": epoch(s.created_at),
                }
                for s in page
            ]
            summaries = [{k: v for k, v in s.items() if v is not None} for s in summaries]
            return pages.with_token({"Studios": summaries}, marker, "Marker")

        return await self.store.tx(list_)

    @operation("UpdateStudio")
    async def update_studio(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if "DefaultS3Location" in params:
            check_s3_location(params["DefaultS3Location"])
        if "Name" in params and not params["Name"].strip():
            raise InvalidRequest("Name must not be empty.")

        def update(session: Session) -> dict[str, Any]:
            studio = self.get_studio_or_raise(session, params["StudioId"])
            if "SubnetIds" in params:
                wanted = list(dict.fromkeys(params["SubnetIds"]))
                dropped = [s for s in studio.subnet_ids if s not in wanted]
                if dropped:
                    raise InvalidRequest(
                        "SubnetIds must include all of the subnets previously associated with"
                        f" the Studio; missing: {', '.join(dropped)}."
                    )
                self.check_subnets(session, studio.vpc_id, wanted)
                studio.subnet_ids = wanted
            for member, attr in (
                ("Name", "name"),
                ("Description", "description"),
                ("DefaultS3Location", "default_s3_location"),
                ("EncryptionKeyArn", "encryption_key_arn"),
            ):
                if member in params:
                    setattr(studio, attr, params[member])
            session.add(studio)
            return {}

        updated = await self.store.tx(update)
        if "SubnetIds" in params:
            await self.sync_pools()
        return updated

    @operation("DeleteStudio")
    async def delete_studio(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            studio = session.get(Studio, params["StudioId"])
            if studio is None or studio.region != self.region:
                # AWS answers a delete of a missing Studio with a server-side error; Terraform
                # relies on it to treat the Studio as already gone.
                raise InternalServerException(STUDIO_NOT_FOUND)
            for mapping in session.exec(
                select(StudioSessionMapping).where(StudioSessionMapping.studio_id == studio.id)
            ):
                session.delete(mapping)
            for tag in session.exec(select(Tag).where(Tag.resource_id == studio.id)):
                session.delete(tag)
            session.flush()
            session.delete(studio)
            return {}

        deleted = await self.store.tx(delete)
        await self.sync_pools()
        return deleted

    def _tag_target(self, session: Session, params: dict[str, Any]) -> str:
        resource_id = params["ResourceId"]
        if resource_id.startswith("es-"):
            self.get_studio_or_raise(session, resource_id)
            return str(resource_id)
        if resource_id.startswith("j-"):
            cluster = session.get(Cluster, resource_id)
            if cluster is None or cluster.region != self.region:
                raise InvalidRequest(f"Cluster id '{resource_id}' is not valid.", "NoSuchCluster")
            return str(resource_id)
        raise InvalidRequest(f"Resource '{resource_id}' is not a valid EMR resource id.")

    @operation("AddTags")
    async def add_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = list(params["Tags"])
        check_tags(tags)

        def add(session: Session) -> dict[str, Any]:
            resource_id = self._tag_target(session, params)
            for tag in tags:
                session.merge(
                    Tag(
                        resource_id=resource_id,
                        key=tag["Key"],
                        value=tag.get("Value", ""),
                        resource_type="cluster" if resource_id.startswith("j-") else "studio",
                    )
                )
            return {}

        return await self.store.tx(add)

    @operation("RemoveTags")
    async def remove_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def remove(session: Session) -> dict[str, Any]:
            resource_id = self._tag_target(session, params)
            for key in params["TagKeys"]:
                tag = session.get(Tag, (resource_id, key))
                if tag is not None:
                    session.delete(tag)
            return {}

        return await self.store.tx(remove)
