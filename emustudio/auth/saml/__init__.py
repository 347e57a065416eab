"""SAML 2.0 service-provider side of sign-in: verifying IdP responses (pysaml2 + xmlsec1,
`verify`), AWS sign-in's SAML vocabulary (`vocabulary`), the replay cache (`replay`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from emustudio.auth.saml.replay import InMemoryReplayCache, ReplayCache, StoreReplayCache
from emustudio.auth.saml.verify import idp_entity_id, verify_saml_response
from emustudio.auth.saml.vocabulary import (
    AWS_ACS_URL,
    AWS_AUDIENCE,
    AWS_SP_METADATA,
    ROLE,
    AwsSamlAttributes,
    SamlRejected,
    aws_attributes,
    identity_attributes,
)
from emustudio.services.sts.common import InvalidIdentityToken
from emustudio.services.sts.saml import SamlAssertion, SamlVerifier

__all__ = [
    "AWS_ACS_URL",
    "AWS_AUDIENCE",
    "AWS_SP_METADATA",
    "ROLE",
    "AwsSamlAttributes",
    "InMemoryReplayCache",
    "ReplayCache",
    "SamlRejected",
    "StoreReplayCache",
    "aws_attributes",
    "identity_attributes",
    "idp_entity_id",
    "sts_verifier",
    "verify_saml_response",
]


def sts_verifier(
    *,
    acs_url: str = AWS_ACS_URL,
    sp_entity_id: str = AWS_AUDIENCE,
    replay_cache: ReplayCache | None = None,
    skew: timedelta = timedelta(seconds=60),
) -> SamlVerifier:
    """A ``StsService.saml_verifier``: IdP-initiated responses, refusals as InvalidIdentityToken."""
    cache = replay_cache if replay_cache is not None else InMemoryReplayCache()

    async def verify(saml_response: str, provider_arn: str, metadata_xml: str) -> SamlAssertion:
        try:
            return await asyncio.to_thread(
                verify_saml_response,
                saml_response,
                idp_metadata_xml=metadata_xml,
                acs_url=acs_url,
                sp_entity_id=sp_entity_id,
                replay_cache=cache,
                skew=skew,
            )
        except SamlRejected as exc:
            raise InvalidIdentityToken(f"Invalid SAML assertion: {exc.reason}") from None

    return verify
