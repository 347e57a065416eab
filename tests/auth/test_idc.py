"""Identity Center's SP side on its own: AuthnRequests and the table of requests awaiting an
answer (the sign-in flows are tested end to end in tests/web/test_sso.py)."""

from __future__ import annotations

import base64
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from emustudio.auth.federation import FederationRefused
from emustudio.auth.idc import IdentityCenter, session_name, sso_url
from emustudio.auth.idp import BuiltinIdp, UsersFile
from emustudio.auth.saml import InMemoryReplayCache, SamlRejected

ACS = "http://localhost:8080/sso/saml"
ENTITY = "https://us-east-1.signin.aws.amazon.com/platform/saml/d-0000000000"


def identity_center(metadata: str | None) -> IdentityCenter:
    unused = cast(Any, None)  # begin() needs no store, STS or auditor
    return IdentityCenter(
        store=unused,
        sts=unused,
        auditor=unused,
        replay_cache=InMemoryReplayCache(),
        identity_store_id="d-0000000000",
        acs_url=ACS,
        entity_id=ENTITY,
        idp_metadata=lambda: metadata,
        session_seconds=3600,
    )


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> BuiltinIdp:
    where = tmp_path_factory.mktemp("idc-idp")
    (where / "users.yaml").write_text("users: {}\n")
    return BuiltinIdp(UsersFile(where / "users.yaml"), where, base_url="http://localhost:8080")


def authn_request(url: str) -> str:
    raw = parse_qs(urlsplit(url).query)["SAMLRequest"][0]
    return zlib.decompress(base64.b64decode(raw), -15).decode()


def test_begin_sends_an_authn_request_to_the_idps_sign_on_url(idp: BuiltinIdp) -> None:
    url = identity_center(idp.metadata()).begin("es-" + "A" * 25, path_form=False)
    assert url.startswith(sso_url(idp.metadata()) + "?")
    xml = authn_request(url)
    assert f'AssertionConsumerServiceURL="{ACS}"' in xml
    assert f">{ENTITY}</" in xml  # the Issuer: Identity Center's entity id


def test_concurrent_sign_ins_each_keep_their_request(idp: BuiltinIdp) -> None:
    center = identity_center(idp.metadata())
    with ThreadPoolExecutor(max_workers=8) as pool:
        urls = list(pool.map(lambda i: center.begin(f"es-{i:025d}", path_form=False), range(32)))
    ids = {authn_request(url).split(' ID="', 1)[1].split('"', 1)[0] for url in urls}
    assert len(ids) == 32
    assert ids == set(center._pending)


def test_no_identity_source_is_a_clear_refusal() -> None:
    with pytest.raises(FederationRefused, match="has no identity source") as refused:
        identity_center(None).begin("es-" + "A" * 25, path_form=False)
    assert refused.value.status == 503


@pytest.mark.parametrize(
    ("user", "expected"),
    [("alice", "alice"), ("Jane Doe", "Jane-Doe"), ("x", "x-"), ("a" * 80, "a" * 64)],
)
def test_session_names_are_what_sts_accepts(user: str, expected: str) -> None:
    assert session_name(user) == expected


def test_metadata_without_a_redirect_sign_on_is_refused() -> None:
    with pytest.raises(SamlRejected, match="HTTP-Redirect"):
        sso_url('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>')
