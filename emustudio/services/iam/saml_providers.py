"""SAML identity providers: create, get, list, update, delete, tags.

The metadata document must be SAML 2.0 metadata: an ``EntityDescriptor`` (possibly inside an
``EntitiesDescriptor``) with an ``IDPSSODescriptor``; anything else is IAM's ``InvalidInput``
``Could not parse metadata``. Documents with a DTD are refused before parsing (metadata never
needs one, and it keeps entity-expansion tricks out). ``ValidUntil`` is the metadata's
``validUntil``, else 100 years from creation, as IAM sets it.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    EntityAlreadyExists,
    IamBase,
    InvalidInput,
    NoSuchEntity,
    drop_tags,
    merge_tags,
    now,
    page,
    to_datetime,
)
from emustudio.store.iam_tables import IamSamlProvider

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_HUNDRED_YEARS = 100 * 365.25 * 24 * 3600


def parse_metadata(document: str) -> float | None:
    """Check a SAML metadata document; return its ``validUntil`` (epoch seconds) if any."""
    bad = InvalidInput("Could not parse metadata")
    if "<!DOCTYPE" in document.upper() or "<!ENTITY" in document.upper():
        raise bad
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        raise bad from None
    if root.tag == f"{{{MD}}}EntitiesDescriptor":
        entity = root.find(f"{{{MD}}}EntityDescriptor")
    elif root.tag == f"{{{MD}}}EntityDescriptor":
        entity = root
    else:
        entity = None
    if entity is None or entity.find(f"{{{MD}}}IDPSSODescriptor") is None:
        raise bad
    valid_until = entity.get("validUntil") or root.get("validUntil")
    if not valid_until:
        return None
    try:
        return datetime.fromisoformat(valid_until.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad from None


def provider_not_found(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Manifest not found for arn {arn}")


class SamlProviderOperations(IamBase):
    def saml_provider_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:saml-provider/{name}"

    @staticmethod
    def provider_or_raise(session: Session, arn: str) -> IamSamlProvider:
        provider = session.get(IamSamlProvider, arn)
        if provider is None:
            raise provider_not_found(arn)
        return provider

    @operation("CreateSAMLProvider")
    async def create_saml_provider(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        name = params["Name"]
        document = params["SAMLMetadataDocument"]
        valid_until = parse_metadata(document)
        tags = merge_tags([], params.get("Tags") or [], "TagsPerSAMLProvider")
        arn = self.saml_provider_arn(name)

        def create(session: Session) -> dict[str, Any]:
            if session.get(IamSamlProvider, arn) is not None:
                raise EntityAlreadyExists(f"SAMLProvider {name} already exists.")
            moment = now()
            session.add(
                IamSamlProvider(
                    arn=arn,
                    name=name,
                    uuid=str(uuid.uuid4()),
                    metadata_document=document,
                    valid_until=valid_until or moment + _HUNDRED_YEARS,
                    created_at=moment,
                    tags=tags,
                )
            )
            out: dict[str, Any] = {"SAMLProviderArn": arn}
            if tags:
                out["Tags"] = tags
            return out

        return await self.store.tx(create)

    @operation("GetSAMLProvider")
    async def get_saml_provider_op(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            provider = self.provider_or_raise(session, params["SAMLProviderArn"])
            out: dict[str, Any] = {
                "SAMLProviderUUID": provider.uuid,
                "SAMLMetadataDocument": provider.metadata_document,
                "CreateDate": to_datetime(provider.created_at),
                "AssertionEncryptionMode": "Allowed",
            }
            if provider.valid_until is not None:
                out["ValidUntil"] = to_datetime(provider.valid_until)
            if provider.tags:
                out["Tags"] = list(provider.tags)
            return out

        return await self.store.tx(get)

    @operation("ListSAMLProviders")
    async def list_saml_providers(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            rows = session.exec(select(IamSamlProvider).order_by(col(IamSamlProvider.arn)))
            entries = []
            for p in rows:
                entry: dict[str, Any] = {"Arn": p.arn, "CreateDate": to_datetime(p.created_at)}
                if p.valid_until is not None:
                    entry["ValidUntil"] = to_datetime(p.valid_until)
                entries.append(entry)
            return {"SAMLProviderList": entries}

        return await self.store.tx(list_)

    @operation("UpdateSAMLProvider")
    async def update_saml_provider(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        document = params.get("SAMLMetadataDocument")
        valid_until = parse_metadata(document) if document is not None else None

        def update(session: Session) -> dict[str, Any]:
            provider = self.provider_or_raise(session, params["SAMLProviderArn"])
            if document is not None:
                provider.metadata_document = document
                provider.valid_until = valid_until or provider.created_at + _HUNDRED_YEARS
            session.add(provider)
            return {"SAMLProviderArn": provider.arn}

        return await self.store.tx(update)

    @operation("DeleteSAMLProvider")
    async def delete_saml_provider(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            session.delete(self.provider_or_raise(session, params["SAMLProviderArn"]))
            return {}

        return await self.store.tx(delete)

    @operation("TagSAMLProvider")
    async def tag_saml_provider(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def tag(session: Session) -> dict[str, Any]:
            provider = self.provider_or_raise(session, params["SAMLProviderArn"])
            provider.tags = merge_tags(provider.tags, params["Tags"], "TagsPerSAMLProvider")
            session.add(provider)
            return {}

        return await self.store.tx(tag)

    @operation("UntagSAMLProvider")
    async def untag_saml_provider(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def untag(session: Session) -> dict[str, Any]:
            provider = self.provider_or_raise(session, params["SAMLProviderArn"])
            provider.tags = drop_tags(provider.tags, params["TagKeys"])
            session.add(provider)
            return {}

        return await self.store.tx(untag)

    @operation("ListSAMLProviderTags")
    async def list_saml_provider_tags(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            provider = self.provider_or_raise(session, params["SAMLProviderArn"])
            items, result = page(provider.tags, params, "Tags")
            result["Tags"] = items
            return result

        return await self.store.tx(list_)

    # --- for STS and sign-in --------------------------------------------------------------------

    async def get_saml_provider(self, arn: str) -> IamSamlProvider | None:
        """The provider row (metadata document included), or ``None``."""
        return await self.store.tx(lambda session: session.get(IamSamlProvider, arn))
