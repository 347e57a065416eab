"""A built-in SAML 2.0 identity provider (pysaml2 as IdP), so IAM federation works out of the box.

Users come from a YAML file (``idp_users_file``), re-read when it changes::

    groups:
      analysts:
        roles:
          - role: arn:aws:iam::000000000000:role/StudioUser
            provider: arn:aws:iam::000000000000:saml-provider/EmuStudioIdp
            studios: [es-...]          # optional: offered on the portal
    users:
      alice:
        password: alice-password      # or password_hash: scrypt$... (emustudio idp hash-password)
        groups: [analysts]
        roles: []                     # the user's own, added to its groups'
        session_duration: 3600        # SessionDuration (optional)
        tags: {team: data}            # PrincipalTag:<key>
        attributes: {SourceIdentity: alice}   # any other AWS SAML attribute

The signing key and certificate are generated once in ``data_dir`` (``idp-key.pem``, mode 600,
and ``idp-cert.pem``). Responses are addressed as to AWS: Destination and Recipient
``https://signin.aws.amazon.com/saml``, Audience ``urn:amazon:webservices``, a persistent NameID
(the user name); the assertion is signed with RSA-SHA256 and SHA-256 digests.

It also answers AuthnRequests (HTTP-Redirect binding) of the service providers it is given
(``service_providers``: their metadata), IAM Identity Center's: the response goes to the ACS
the SP's metadata registers, ``InResponseTo`` the request, NameID the user name, no AWS
attributes (Identity Center maps the user to its Identity Store by that name).
"""

from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import yaml
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2 import xmldsig as ds
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID

from emustudio.auth.keys import write_keypair
from emustudio.auth.saml import AWS_ACS_URL, AWS_AUDIENCE, AWS_SP_METADATA, identity_attributes
from emustudio.services.iam.passwords import hash_password, salted_hash

if TYPE_CHECKING:
    from saml2.config import IdPConfig
    from saml2.server import Server

_ATTR = {'"': "&quot;"}  # escaped in attribute values, beside & < >

HASH_SCHEME = "scrypt"
KEY_FILE = "idp-key.pem"
CERT_FILE = "idp-cert.pem"


class UsersFileError(ValueError):
    """The users file cannot be read."""


class BadAuthnRequest(ValueError):
    """A ``SAMLRequest`` this IdP does not answer (malformed, or from an unknown SP)."""


@dataclass(frozen=True)
class AuthnAsk:
    """A verified-enough ``AuthnRequest``: the response goes to the SP's registered ACS."""

    request_id: str
    sp_entity_id: str
    acs_url: str


@dataclass(frozen=True)
class IdpRole:
    role_arn: str
    provider_arn: str
    studios: tuple[str, ...] = ()

    @property
    def pair(self) -> str:
        return f"{self.role_arn},{self.provider_arn}"


@dataclass(frozen=True)
class IdpUser:
    name: str
    password: str | None
    groups: tuple[str, ...] = ()
    roles: tuple[IdpRole, ...] = ()
    session_duration: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    password_hash: str | None = None

    def check_password(self, password: str) -> bool:
        """Against ``password_hash`` (scrypt) when the file gives one, else the plain text."""
        if self.password_hash is not None:
            salt, digest = _split_hash(self.password_hash)
            return hmac.compare_digest(hash_password(password, salt), digest)
        return hmac.compare_digest((self.password or "").encode(), password.encode())


def _roles(entries: Any, where: str) -> list[IdpRole]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise UsersFileError(f"{where}: roles must be a list")
    roles = []
    for entry in entries:
        if not isinstance(entry, dict) or "role" not in entry or "provider" not in entry:
            raise UsersFileError(f"{where}: each role needs role and provider ARNs")
        studios = entry.get("studios") or []
        roles.append(
            IdpRole(str(entry["role"]), str(entry["provider"]), tuple(str(s) for s in studios))
        )
    return roles


def password_hash(password: str) -> str:
    """A users file's ``password_hash`` for ``password``: ``scrypt$<salt hex>$<hash hex>``,
    scrypt with the parameters IAM login profiles use."""
    salt, digest = salted_hash(password)
    return f"{HASH_SCHEME}${salt.hex()}${digest.hex()}"


def _split_hash(value: str) -> tuple[bytes, bytes]:
    scheme, salt, digest = value.split("$")
    if scheme != HASH_SCHEME:
        raise ValueError(value)
    return bytes.fromhex(salt), bytes.fromhex(digest)


def parse_users(text: str) -> dict[str, IdpUser]:
    """The users of a users file (see the module's docstring)."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise UsersFileError("expected a mapping with users (and groups)")
    groups_raw = data.get("groups") or {}
    users_raw = data.get("users") or {}
    if not isinstance(groups_raw, dict) or not isinstance(users_raw, dict):
        raise UsersFileError("users and groups must be mappings by name")
    group_roles = {
        str(name): _roles((spec or {}).get("roles"), f"group {name}")
        for name, spec in groups_raw.items()
    }
    users: dict[str, IdpUser] = {}
    for name, spec in users_raw.items():
        if not isinstance(spec, dict) or ("password" in spec) == ("password_hash" in spec):
            raise UsersFileError(f"user {name}: a password (or a password_hash) is required")
        if "password_hash" in spec:
            try:
                _split_hash(str(spec["password_hash"]))
            except ValueError:
                raise UsersFileError(
                    f"user {name}: password_hash is not scrypt$<salt>$<hash>"
                    " (make one with `emustudio idp hash-password`)"
                ) from None
        groups = tuple(str(g) for g in spec.get("groups") or [])
        roles: list[IdpRole] = []
        for group in groups:
            if group not in group_roles:
                raise UsersFileError(f"user {name}: unknown group {group}")
            roles.extend(group_roles[group])
        roles.extend(_roles(spec.get("roles"), f"user {name}"))
        unique = list({role.pair: role for role in roles}.values())
        duration = spec.get("session_duration")
        attributes = {
            str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
            for k, v in (spec.get("attributes") or {}).items()
        }
        users[str(name)] = IdpUser(
            name=str(name),
            password=str(spec["password"]) if "password" in spec else None,
            password_hash=str(spec["password_hash"]) if "password_hash" in spec else None,
            groups=groups,
            roles=tuple(unique),
            session_duration=int(duration) if duration is not None else None,
            tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
            attributes=attributes,
        )
    return users


class UsersFile:
    """The users file, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self._users: dict[str, IdpUser] = {}
        self._lock = threading.Lock()

    def users(self) -> dict[str, IdpUser]:
        with self._lock:
            try:
                stamp = self.path.stat().st_mtime
                if stamp != self._stamp:
                    self._users = parse_users(self.path.read_text())
                    self._stamp = stamp
            except (OSError, yaml.YAMLError, TypeError, ValueError) as exc:
                raise UsersFileError(f"{self.path}: {exc}") from exc
            return self._users

    def get(self, name: str) -> IdpUser | None:
        return self.users().get(name)

    def authenticate(self, name: str, password: str) -> IdpUser | None:
        user = self.get(name)
        if user is None or not password or not user.check_password(password):
            return None
        return user


def ensure_keypair(data_dir: Path, common_name: str = "emustudio-idp") -> tuple[Path, Path]:
    """The IdP's key (mode 600) and self-signed certificate in ``data_dir``, made once."""
    key_path, cert_path = data_dir / KEY_FILE, data_dir / CERT_FILE
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    write_keypair(key_path, cert_path, common_name)
    return key_path, cert_path


def idp_config(
    entity_id: str,
    key_file: Path,
    cert_file: Path,
    *,
    sso_url: str,
    lifetime_minutes: int = 5,
    service_providers: tuple[str, ...] = (),
    xmlsec_binary: str | None = None,
) -> IdPConfig:
    """A pysaml2 IdP that signs as AWS expects (RSA-SHA256 assertions, SHA-256 digests,
    persistent NameIDs, URI attribute names) for AWS sign-in and the SPs whose metadata it gets
    (the built-in IdP's, and the tests' forging IdP's)."""
    spec: dict[str, Any] = {
        "entityid": entity_id,
        "service": {
            "idp": {
                "name": "emustudio",
                "endpoints": {
                    "single_sign_on_service": [
                        (sso_url, BINDING_HTTP_REDIRECT),
                        (sso_url, BINDING_HTTP_POST),
                    ]
                },
                "policy": {
                    "default": {
                        "lifetime": {"minutes": lifetime_minutes},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_URI,
                    }
                },
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                "signing_algorithm": ds.SIG_RSA_SHA256,
                "digest_algorithm": ds.DIGEST_SHA256,
                "want_authn_requests_signed": False,
            }
        },
        "key_file": str(key_file),
        "cert_file": str(cert_file),
        # AWS sign-in (IdP-initiated, no AuthnRequest) and the service providers whose
        # AuthnRequests it answers (IAM Identity Center).
        "metadata": {"inline": [AWS_SP_METADATA, *service_providers]},
    }
    if xmlsec_binary:
        spec["xmlsec_binary"] = xmlsec_binary
    # pysaml2's config module loads its XML schemas (over a second): imported where first used,
    # so a gateway without a built-in IdP starts without it.
    from saml2.config import IdPConfig

    config = IdPConfig()
    config.load(spec)
    return config


class BuiltinIdp:
    """The gateway's own IdP: metadata, and signed SAML responses for AWS sign-in."""

    def __init__(
        self,
        users: UsersFile,
        data_dir: Path,
        *,
        base_url: str,
        xmlsec_binary: str | None = None,
        lifetime_minutes: int = 5,
        service_providers: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
    ) -> None:
        """``service_providers``: their metadata, or what gives it at the first sign-in."""
        self.users = users
        self.base_url = base_url.rstrip("/")
        self.entity_id = f"{self.base_url}/idp"
        self.sso_url = f"{self.entity_id}/sso"
        self._key_file, self._cert_file = ensure_keypair(data_dir)
        self._lifetime_minutes = lifetime_minutes
        self._service_providers = service_providers
        self._xmlsec_binary = xmlsec_binary
        self._server: Server | None = None
        self._making = threading.Lock()  # the server's making; _lock, its per-call state
        self._lock = threading.Lock()
        self._metadata: str | None = None

    @property
    def server(self) -> Server:
        """pysaml2's IdP, made at the first sign-in: its config loads pysaml2's XML schemas
        (about 30 MB and a second), which a gateway nobody signs in to through it never needs."""
        with self._making:
            if self._server is None:
                from saml2.server import Server

                config = idp_config(
                    self.entity_id,
                    self._key_file,
                    self._cert_file,
                    sso_url=self.sso_url,
                    lifetime_minutes=self._lifetime_minutes,
                    service_providers=(
                        self._service_providers()
                        if callable(self._service_providers)
                        else self._service_providers
                    ),
                    xmlsec_binary=self._xmlsec_binary,
                )
                self._server = Server(config=config)
            return self._server

    def metadata(self) -> str:
        """The IdP's metadata: what pysaml2's ``create_metadata_string`` writes for its config,
        written here (the demo registers it at every start; a test checks the two agree)."""
        if self._metadata is None:
            cert = "".join(
                line
                for line in self._cert_file.read_text().splitlines()
                if line and not line.startswith("-----")
            )
            entity, sso = escape(self.entity_id, _ATTR), escape(self.sso_url, _ATTR)
            self._metadata = (
                '<ns0:EntityDescriptor xmlns:ns0="urn:oasis:names:tc:SAML:2.0:metadata"'
                ' xmlns:ns1="http://www.w3.org/2000/09/xmldsig#"'
                f' entityID="{entity}"><ns0:IDPSSODescriptor'
                ' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"'
                ' WantAuthnRequestsSigned="false"><ns0:KeyDescriptor use="signing"><ns1:KeyInfo>'
                f"<ns1:X509Data><ns1:X509Certificate>{cert}</ns1:X509Certificate></ns1:X509Data>"
                "</ns1:KeyInfo></ns0:KeyDescriptor>"
                f"<ns0:NameIDFormat>{NAMEID_FORMAT_PERSISTENT}</ns0:NameIDFormat>"
                f'<ns0:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location="{sso}" />'
                f'<ns0:SingleSignOnService Binding="{BINDING_HTTP_POST}" Location="{sso}" />'
                "</ns0:IDPSSODescriptor></ns0:EntityDescriptor>"
            )
        return self._metadata

    def identity(self, user: IdpUser, roles: list[IdpRole] | None = None) -> dict[str, list[str]]:
        chosen = user.roles if roles is None else roles
        return identity_attributes(
            [role.pair for role in chosen],
            user.name,
            session_duration=user.session_duration,
            tags=user.tags,
            others=user.attributes,
        )

    def parse_request(self, saml_request: str, binding: str = BINDING_HTTP_REDIRECT) -> AuthnAsk:
        """An ``AuthnRequest`` of a known service provider, or `BadAuthnRequest`."""
        with self._lock:
            try:
                request = self.server.parse_authn_request(saml_request, binding)
                args = self.server.response_args(request.message)
            except Exception as exc:  # pysaml2 raises many kinds; all mean "not for us"
                raise BadAuthnRequest(f"{type(exc).__name__}: {exc}") from None
        if not args.get("destination") or not args.get("sp_entity_id"):
            raise BadAuthnRequest("the request names no known service provider")
        return AuthnAsk(
            request_id=str(args["in_response_to"]),
            sp_entity_id=str(args["sp_entity_id"]),
            acs_url=str(args["destination"]),
        )

    def response_to(self, ask: AuthnAsk, user: IdpUser) -> str:
        """A signed SAMLResponse (base64) answering ``ask`` for ``user``: NameID the user name."""
        return self._signed(user, {}, ask.request_id, ask.acs_url, ask.sp_entity_id)

    def response(self, user: IdpUser, roles: list[IdpRole] | None = None) -> str:
        """A signed SAMLResponse (base64) for ``user`` with ``roles`` (default: all of them)."""
        return self._signed(user, self.identity(user, roles), None, AWS_ACS_URL, AWS_AUDIENCE)

    def _signed(
        self,
        user: IdpUser,
        identity: dict[str, list[str]],
        in_response_to: str | None,
        destination: str,
        sp_entity_id: str,
    ) -> str:
        with self._lock:  # pysaml2's Server keeps per-call state
            xml = self.server.create_authn_response(
                identity,
                in_response_to=in_response_to,
                destination=destination,
                sp_entity_id=sp_entity_id,
                name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=user.name),
                userid=user.name,
                authn={
                    "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
                },
                sign_response=False,
                sign_assertion=True,
            )
        return base64.b64encode(str(xml).encode()).decode()
