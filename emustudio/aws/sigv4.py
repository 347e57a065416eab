"""AWS Signature Version 4 request verification, as the AWS front doors do it.

Two forms are accepted: the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...`` header (dated by ``X-Amz-Date`` or, failing that, ``Date``) and the presigned
query string (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders``, ``X-Amz-Signature``, optional ``X-Amz-Security-Token``).

The canonical request is rebuilt the way botocore's ``SigV4Auth``/``SigV4QueryAuth`` build it
(the non-S3 flavour): the raw path as received has its dot segments and empty segments removed
and is then quoted with ``safe='/~'`` (so a ``%20`` on the wire is signed as ``%2520``, the
double encoding SigV4 prescribes for every service but S3); the query string is sorted by key
then value; header values are trimmed with runs of whitespace collapsed; the payload hash is the
``X-Amz-Content-Sha256`` header when present (a hex digest there must match the body), otherwise
the SHA-256 of the body. Where clients legitimately differ, a small set of candidate canonical
requests is tried, every one a function of the exact bytes received:

* query: the raw pairs sorted as sent (what botocore signs for an URL it encoded itself) and
  the decoded-then-RFC-3986-re-encoded pairs (what the SigV4 spec and the other SDKs sign, and
  what botocore signs for ``AWSRequest.params``, which go on the wire form-encoded);
* path: normalised (botocore) and as received (SDKs that do not normalise);
* presigned payload: the body hash (botocore) and ``UNSIGNED-PAYLOAD`` (S3-style presigners).

Checks run in this order: form (MISSING / INCOMPLETE), date format, credential scope date,
access key (UNKNOWN_KEY), session token (BAD_TOKEN, then EXPIRED_TOKEN), clock (SKEWED /
EXPIRED_PRESIGN), signature (BAD_SIGNATURE). Signatures are compared with
``hmac.compare_digest``.

Errors per protocol family (``AuthFailure.for_protocol``): ``json`` covers awsJson and restJson
(Coral) services such as EMR, ``query`` IAM/STS-style awsQuery services, ``ec2`` the EC2 query
dialect. Statuses follow what AWS sends: Coral JSON services answer every authentication
failure with 400, IAM/STS mostly with 403, EC2 with 401 AuthFailure.

================  ======  ======  ====================================  =======
kind              family  status  code                                  message
================  ======  ======  ====================================  =======
MISSING           json    400     MissingAuthenticationTokenException   [M]
                  query   403     MissingAuthenticationToken            [M]
                  ec2     401     MissingAuthenticationToken            [M2]
INCOMPLETE        json    400     IncompleteSignatureException          [D]
                  query   400     IncompleteSignature                   [D]
                  ec2     400     IncompleteSignature                   [D]
UNKNOWN_KEY       json    400     UnrecognizedClientException           [I]
                  query   403     InvalidClientTokenId                  [I]
                  ec2     401     AuthFailure                           [A]
BAD_SIGNATURE     json    400     InvalidSignatureException             [S or D]
                  query   403     SignatureDoesNotMatch                 [S or D]
                  ec2     401     AuthFailure                           [A]
SKEWED            json    400     InvalidSignatureException             [D]
                  query   403     SignatureDoesNotMatch                 [D]
                  ec2     400     RequestExpired                        [R]
EXPIRED_PRESIGN   json    400     RequestExpired                        [R]
                  query   400     RequestExpired                        [R]
                  ec2     400     RequestExpired                        [R]
EXPIRED_TOKEN     json    400     ExpiredTokenException                 [E]
                  query   403     ExpiredToken                          [E]
                  ec2     400     RequestExpired                        [R]
BAD_TOKEN         json    400     UnrecognizedClientException           [I]
                  query   403     InvalidClientTokenId                  [I]
                  ec2     401     AuthFailure                           [A]
================  ======  ======  ====================================  =======

Messages:

* [M] ``Request is missing Authentication Token``
* [M2] ``The request must contain either a valid (registered) AWS access key ID or X.509
  certificate.``
* [I] ``The security token included in the request is invalid.``
* [E] ``The security token included in the request is expired``
* [A] ``AWS was not able to validate the provided access credentials``
* [R] ``Request has expired.``
* [S] ``The request signature we calculated does not match the signature you provided. Check
  your AWS Secret Access Key and signing method. Consult the service documentation for
  details.`` (the plain signature mismatch)
* [D] the specific detail of the failure, listed below.

Details (AWS's wording, S3's where only S3 documents one; "(ours)" marks emustudio's own):

* ``Authorization header requires 'Credential' parameter. Authorization header requires
  'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization
  header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=...``
  (only the missing parts are listed);
* ``'x' not a valid key=value pair (missing equal-sign) in Authorization header: '...'.``;
* ``Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term,
  got '...'``;
* ``Date must be in ISO-8601 'basic format'. Got '...'. See http://en.wikipedia.org/wiki/ISO_8601``;
* ``'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.``;
* ``Unsupported AWS 'algorithm': '...'`` (ours; another ``AWS4-`` algorithm, e.g. SigV4a),
  ``Only one auth mechanism allowed; ...`` (Authorization header and presigned query together),
  ``x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a
  valid sha256 value.``;
* presigned: ``Query-string authentication version 4 requires the X-Amz-Algorithm,
  X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires
  parameters.``, ``X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"``, ``X-Amz-Expires should be
  a number``, ``X-Amz-Expires must be less than a week (in seconds) that is 604800``,
  ``X-Amz-Expires must be at least 1 second`` (ours);
* BAD_SIGNATURE: ``Date in Credential scope does not match YYYYMMDD from ISO-8601 version of
  date from HTTP: '20261127' != '20261128', from '20261128T120000Z'.``, ``Credential should be
  scoped with a valid terminator: 'aws4_request', not '...'.``, ``The provided
  'x-amz-content-sha256' header does not match what was computed.``;
* SKEWED: ``Signature expired: 20261128T115000Z is now earlier than 20261128T115500Z
  (20261128T120000Z - 5 min.)`` and ``Signature not yet current: 20261128T121000Z is still later
  than 20261128T120500Z (20261128T120000Z + 5 min.)`` (the minutes are ``max_skew``).

Choices where AWS is not uniform or not observable: EC2's answer to an unsigned request
(MissingAuthenticationToken, 401) and the JSON code for an expired presigned URL (RequestExpired,
as AWS's common-errors table lists it for presigned URLs).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote_plus

from emustudio.aws.errors import AwsError
from emustudio.aws.http import HttpRequest

__all__ = [
    "ALGORITHM",
    "STREAMING_SIGNED_PAYLOAD",
    "STREAMING_SIGNED_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "TERMINATOR",
    "UNSIGNED_PAYLOAD",
    "AuthFailure",
    "AuthKind",
    "Authorization",
    "Credential",
    "Scope",
    "SignedRequest",
    "read_authorization",
    "read_scope",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
# What S3 accepts in x-amz-content-sha256 besides a hex digest (aws-chunked bodies are checked
# chunk by chunk as they stream: ``aws/payload.py``); other services take the first two only.
_DECLARED_PAYLOADS = (
    UNSIGNED_PAYLOAD,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    STREAMING_SIGNED_PAYLOAD,
    STREAMING_SIGNED_PAYLOAD_TRAILER,
)
MAX_PRESIGN_EXPIRES = 604800

_Q_ALGORITHM = "X-Amz-Algorithm"
_Q_CREDENTIAL = "X-Amz-Credential"
_Q_DATE = "X-Amz-Date"
_Q_EXPIRES = "X-Amz-Expires"
_Q_SIGNED_HEADERS = "X-Amz-SignedHeaders"
_Q_SIGNATURE = "X-Amz-Signature"
_Q_TOKEN = "X-Amz-Security-Token"
_Q_CONTENT_SHA256 = "X-Amz-Content-Sha256"
_PRESIGN_MARKERS = (_Q_ALGORITHM, _Q_CREDENTIAL, _Q_SIGNATURE)
_PRESIGN_REQUIRED = (
    _Q_ALGORITHM,
    _Q_CREDENTIAL,
    _Q_SIGNATURE,
    _Q_DATE,
    _Q_SIGNED_HEADERS,
    _Q_EXPIRES,
)

_H_AUTHORIZATION = "authorization"
_H_AMZ_DATE = "x-amz-date"
_H_DATE = "date"
_H_TOKEN = "x-amz-security-token"
_H_CONTENT_SHA256 = "x-amz-content-sha256"

_TIMESTAMP_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SHA256_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_AUTH_TOKEN_SPLIT_RE = re.compile(r"[,\s]+")
_UNRESERVED = "-_.~"


# --------------------------------------------------------------------------------------------
# Public values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """What the gateway's credential store returns for an access key id."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: datetime | None = None


@dataclass(frozen=True)
class Scope:
    """The credential scope a request claims; read, not verified."""

    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class SignedRequest:
    """The outcome of a successful ``verify``.

    ``signature``, ``timestamp``, ``scope`` and ``signing_key`` seed the verification of an
    aws-chunked body's chunk signatures; ``payload`` is the declared x-amz-content-sha256.
    """

    access_key_id: str
    region: str
    service: str
    signed_at: datetime
    presigned: bool
    session_token: str | None
    # What checks an aws-chunked body; not part of what the request *is* (equality).
    signature: str = field(default="", compare=False)
    timestamp: str = field(default="", compare=False)
    scope: Scope | None = field(default=None, compare=False)
    signing_key: bytes = field(default=b"", repr=False, compare=False)
    payload: str | None = field(default=None, compare=False)


class AuthKind(enum.Enum):
    MISSING = "missing"
    INCOMPLETE = "incomplete"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    SKEWED = "skewed"
    EXPIRED_PRESIGN = "expired_presign"
    EXPIRED_TOKEN = "expired_token"
    BAD_TOKEN = "bad_token"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

_MSG_MISSING = "Request is missing Authentication Token"
_MSG_MISSING_EC2 = (
    "The request must contain either a valid (registered) AWS access key ID or X.509 certificate."
)
_MSG_INVALID_TOKEN = "The security token included in the request is invalid."
_MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
_MSG_EC2_AUTH = "AWS was not able to validate the provided access credentials"
_MSG_REQUEST_EXPIRED = "Request has expired."
_MSG_S3_KEY = "The AWS Access Key Id you provided does not exist in our records."
_MSG_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)

# kind -> family -> (status, code, fixed message or None to use the failure's detail)
_Entry = tuple[int, str, str | None]
_TABLE: dict[AuthKind, dict[str, _Entry]] = {
    AuthKind.MISSING: {
        "json": (400, "MissingAuthenticationTokenException", _MSG_MISSING),
        "query": (403, "MissingAuthenticationToken", _MSG_MISSING),
        "ec2": (401, "MissingAuthenticationToken", _MSG_MISSING_EC2),
        "s3": (403, "AccessDenied", "Access Denied"),
    },
    AuthKind.INCOMPLETE: {
        "json": (400, "IncompleteSignatureException", None),
        "query": (400, "IncompleteSignature", None),
        "ec2": (400, "IncompleteSignature", None),
        "s3": (400, "AuthorizationHeaderMalformed", None),
    },
    AuthKind.UNKNOWN_KEY: {
        "json": (400, "UnrecognizedClientException", _MSG_INVALID_TOKEN),
        "query": (403, "InvalidClientTokenId", _MSG_INVALID_TOKEN),
        "ec2": (401, "AuthFailure", _MSG_EC2_AUTH),
        "s3": (403, "InvalidAccessKeyId", _MSG_S3_KEY),
    },
    AuthKind.BAD_SIGNATURE: {
        "json": (400, "InvalidSignatureException", None),
        "query": (403, "SignatureDoesNotMatch", None),
        "ec2": (401, "AuthFailure", _MSG_EC2_AUTH),
        "s3": (403, "SignatureDoesNotMatch", None),
    },
    AuthKind.SKEWED: {
        "json": (400, "InvalidSignatureException", None),
        "query": (403, "SignatureDoesNotMatch", None),
        "ec2": (400, "RequestExpired", _MSG_REQUEST_EXPIRED),
        "s3": (403, "RequestTimeTooSkewed", None),
    },
    AuthKind.EXPIRED_PRESIGN: {
        "json": (400, "RequestExpired", _MSG_REQUEST_EXPIRED),
        "query": (400, "RequestExpired", _MSG_REQUEST_EXPIRED),
        "ec2": (400, "RequestExpired", _MSG_REQUEST_EXPIRED),
        "s3": (403, "AccessDenied", "Request has expired"),
    },
    AuthKind.EXPIRED_TOKEN: {
        "json": (400, "ExpiredTokenException", _MSG_EXPIRED_TOKEN),
        "query": (403, "ExpiredToken", _MSG_EXPIRED_TOKEN),
        "ec2": (400, "RequestExpired", _MSG_REQUEST_EXPIRED),
        "s3": (400, "ExpiredToken", "The provided token has expired."),
    },
    AuthKind.BAD_TOKEN: {
        "json": (400, "UnrecognizedClientException", _MSG_INVALID_TOKEN),
        "query": (403, "InvalidClientTokenId", _MSG_INVALID_TOKEN),
        "ec2": (401, "AuthFailure", _MSG_EC2_AUTH),
        "s3": (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
    },
}

_DEFAULT_DETAIL: dict[AuthKind, str] = {
    AuthKind.MISSING: _MSG_MISSING,
    AuthKind.INCOMPLETE: "The request signature does not conform to AWS standards.",
    AuthKind.UNKNOWN_KEY: _MSG_INVALID_TOKEN,
    AuthKind.BAD_SIGNATURE: _MSG_SIGNATURE,
    AuthKind.SKEWED: _MSG_REQUEST_EXPIRED,
    AuthKind.EXPIRED_PRESIGN: _MSG_REQUEST_EXPIRED,
    AuthKind.EXPIRED_TOKEN: _MSG_EXPIRED_TOKEN,
    AuthKind.BAD_TOKEN: _MSG_INVALID_TOKEN,
}

# Protocol names as botocore spells them, folded into the three families.
_FAMILIES = {
    "json": "json",
    "rest-json": "json",
    "smithy-rpc-v2-cbor": "json",
    "query": "query",
    "rest-xml": "s3",
    "ec2": "ec2",
}


class AuthFailure(AwsError):
    """A request that failed SigV4 verification.

    ``kind`` says why; ``detail`` is the specific text (AWS's wording) where the kind has one.
    The error itself carries the JSON family's code, status and message; ``for_protocol`` gives
    the form another protocol family uses. ``canonical_request`` and ``string_to_sign`` are set
    on BAD_SIGNATURE for server-side logs only (AWS does not send them to the caller).
    """

    sender_fault = True

    def __init__(
        self,
        kind: AuthKind,
        detail: str | None = None,
        *,
        canonical_request: str | None = None,
        string_to_sign: str | None = None,
    ) -> None:
        self.kind = kind
        self.detail = detail if detail is not None else _DEFAULT_DETAIL[kind]
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        status, code, message = self._entry("json")
        super().__init__(message, code=code, status=status)

    def _entry(self, protocol: str) -> tuple[int, str, str]:
        family = _FAMILIES.get(protocol)
        if family is None:
            raise ValueError(f"unknown protocol family {protocol!r}")
        status, code, fixed = _TABLE[self.kind][family]
        return status, code, fixed if fixed is not None else self.detail

    def for_protocol(self, protocol: str) -> AwsError:
        """The error AWS sends for this failure in a protocol family: 'json', 'query', 'ec2'."""
        status, code, message = self._entry(protocol)
        return AwsError(message, code=code, status=status)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_failure,
            (self.kind, self.detail, self.canonical_request, self.string_to_sign),
        )

    def __repr__(self) -> str:
        return f"AuthFailure({self.kind.name}, {self.detail!r})"


def _rebuild_failure(
    kind: AuthKind, detail: str, canonical_request: str | None, string_to_sign: str | None
) -> AuthFailure:
    return AuthFailure(
        kind, detail, canonical_request=canonical_request, string_to_sign=string_to_sign
    )


# --------------------------------------------------------------------------------------------
# Reading the request
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """Everything the request says about its signature, checked for form only."""

    presigned: bool
    scope: Scope
    terminator: str
    signed_headers: str
    signature: str
    timestamp: str
    signed_at: datetime
    expires: int | None
    token: str | None


def _raw_pairs(raw_query: str) -> list[tuple[str, str]]:
    if not raw_query:
        return []
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return pairs


def _raw_query(req: HttpRequest) -> str:
    """The query string as received; rebuilt (RFC 3986 encoded) if only the parsed form is set."""
    if req.raw_query or not req.query:
        return req.raw_query
    return "&".join(
        f"{quote(key, safe=_UNRESERVED)}={quote(value, safe=_UNRESERVED)}"
        for key, values in req.query.items()
        for value in values
    )


def _decoded_pairs(raw_query: str) -> list[tuple[str, str]]:
    return [(unquote_plus(k), unquote_plus(v)) for k, v in _raw_pairs(raw_query) if k or v]


def _first(pairs: list[tuple[str, str]], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def _split_credential(credential: str) -> tuple[Scope, str] | None:
    parts = credential.split("/")
    if len(parts) != 5:
        return None
    key, date, region, service, terminator = parts
    return Scope(access_key_id=key, date=date, region=region, service=service), terminator


def _authorization_params(value: str) -> tuple[str, dict[str, str], str | None]:
    """Split an Authorization header into (algorithm, params, first bad token)."""
    head = value.strip().split(None, 1)
    algorithm = head[0] if head else ""
    rest = head[1] if len(head) > 1 else ""
    params: dict[str, str] = {}
    bad: str | None = None
    for token in _AUTH_TOKEN_SPLIT_RE.split(rest.strip()):
        if not token:
            continue
        name, eq, val = token.partition("=")
        if not eq:
            if bad is None:
                bad = token
            continue
        params.setdefault(name, val)
    return algorithm, params, bad


def _is_presigned(pairs: list[tuple[str, str]]) -> bool:
    return any(key in _PRESIGN_MARKERS for key, _ in pairs)


@dataclass(frozen=True)
class Authorization:
    """A request's SigV4 claim as written, read once and verified by nobody yet.

    ``header`` is the Authorization header (None without one), split into ``algorithm``,
    ``params`` and the first token that is not ``key=value`` (``bad``); ``query`` is the
    decoded query string, which carries the claim of a presigned request. ``scope`` is the
    credential scope either form names, or None when there is none or it is unreadable.
    The pipeline reads it once per request (:func:`read_authorization`) and hands it to
    :func:`verify`, so the header is split once.
    """

    header: str | None
    algorithm: str
    params: dict[str, str]
    bad: str | None
    query: list[tuple[str, str]]
    scope: Scope | None


def read_authorization(req: HttpRequest) -> Authorization:
    """The request's claim (see :class:`Authorization`), without verifying anything."""
    header = req.headers.get(_H_AUTHORIZATION)
    query = _decoded_pairs(_raw_query(req))
    algorithm, params, bad = _authorization_params(header) if header is not None else ("", {}, None)
    if header is not None:
        credential = params.get("Credential") if algorithm == ALGORITHM else None
    else:
        credential = _first(query, _Q_CREDENTIAL)
    split = _split_credential(credential) if credential is not None else None
    return Authorization(
        header=header,
        algorithm=algorithm,
        params=params,
        bad=bad,
        query=query,
        scope=split[0] if split is not None else None,
    )


def read_scope(req: HttpRequest) -> Scope | None:
    """The credential scope the request claims, without verifying anything.

    ``None`` when the request carries no readable SigV4 credential (no Authorization header or
    presigned query, or one too malformed to name a scope).
    """
    return read_authorization(req).scope


def _parse_timestamp(value: str) -> datetime:
    if _TIMESTAMP_RE.fullmatch(value):
        try:
            # The fields by position: strptime costs more than the rest of the header's reading.
            return datetime(
                int(value[0:4]), int(value[4:6]), int(value[6:8]),
                int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC,
            )  # fmt: skip
        except ValueError:
            pass
    raise AuthFailure(
        AuthKind.INCOMPLETE,
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
    )


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _scope_of(credential: str) -> tuple[Scope, str]:
    split = _split_credential(credential)
    if split is None:
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'",
        )
    return split


def _claim_from_header(req: HttpRequest, authorization: Authorization) -> _Claim:
    auth = authorization.header
    algorithm, params, bad = authorization.algorithm, authorization.params, authorization.bad
    if algorithm != ALGORITHM and algorithm.startswith("AWS4-") and not bad:
        raise AuthFailure(AuthKind.INCOMPLETE, f"Unsupported AWS 'algorithm': '{algorithm}'")
    if algorithm != ALGORITHM:
        params, bad = {}, None
    if bad is not None:
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            f"'{bad}' not a valid key=value pair (missing equal-sign) "
            f"in Authorization header: '{auth}'.",
        )
    amz_date = req.headers.get(_H_AMZ_DATE)
    http_date = req.headers.get(_H_DATE)
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if name not in params
    ]
    if amz_date is None and http_date is None:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if missing:
        raise AuthFailure(AuthKind.INCOMPLETE, " ".join([*missing, f"Authorization={auth}"]))
    scope, terminator = _scope_of(params["Credential"])
    if amz_date is not None:
        signed_at = _parse_timestamp(amz_date)
        timestamp = amz_date
    else:
        assert http_date is not None
        signed_at = _parse_http_date(http_date)
        timestamp = signed_at.strftime(TIMESTAMP_FORMAT)
    return _Claim(
        presigned=False,
        scope=scope,
        terminator=terminator,
        signed_headers=params["SignedHeaders"],
        signature=params["Signature"],
        timestamp=timestamp,
        signed_at=signed_at,
        expires=None,
        token=req.headers.get(_H_TOKEN),
    )


def _claim_from_query(req: HttpRequest, pairs: list[tuple[str, str]]) -> _Claim:
    values = {name: _first(pairs, name) for name in _PRESIGN_REQUIRED}
    if any(value is None for value in values.values()):
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters.",
        )
    present = {name: value for name, value in values.items() if value is not None}
    if present[_Q_ALGORITHM] != ALGORITHM:
        raise AuthFailure(AuthKind.INCOMPLETE, f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    raw_expires = present[_Q_EXPIRES]
    if not raw_expires.isdigit():
        raise AuthFailure(AuthKind.INCOMPLETE, "X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires > MAX_PRESIGN_EXPIRES:
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}",
        )
    if expires < 1:
        raise AuthFailure(AuthKind.INCOMPLETE, "X-Amz-Expires must be at least 1 second")
    scope, terminator = _scope_of(present[_Q_CREDENTIAL])
    timestamp = present[_Q_DATE]
    signed_at = _parse_timestamp(timestamp)
    token = _first(pairs, _Q_TOKEN)
    if token is None:
        token = req.headers.get(_H_TOKEN)
    return _Claim(
        presigned=True,
        scope=scope,
        terminator=terminator,
        signed_headers=present[_Q_SIGNED_HEADERS],
        signature=present[_Q_SIGNATURE],
        timestamp=timestamp,
        signed_at=signed_at,
        expires=expires,
        token=token,
    )


def _claim(req: HttpRequest, authorization: Authorization) -> _Claim:
    auth = authorization.header
    pairs = authorization.query
    presigned = _is_presigned(pairs)
    if auth is None and not presigned:
        raise AuthFailure(AuthKind.MISSING)
    if auth is not None and presigned:
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
        )
    claim = (
        _claim_from_header(req, authorization)
        if auth is not None
        else _claim_from_query(req, pairs)
    )
    signed = _signed_names(claim.signed_headers)
    if "host" not in signed and ":authority" not in signed:
        raise AuthFailure(
            AuthKind.INCOMPLETE,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    if claim.terminator != TERMINATOR:
        raise AuthFailure(
            AuthKind.BAD_SIGNATURE,
            "Credential should be scoped with a valid terminator: "
            f"'{TERMINATOR}', not '{claim.terminator}'.",
        )
    if claim.scope.date != claim.timestamp[:8]:
        raise AuthFailure(
            AuthKind.BAD_SIGNATURE,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{claim.scope.date}' != '{claim.timestamp[:8]}', "
            f"from '{claim.timestamp}'.",
        )
    return claim


# --------------------------------------------------------------------------------------------
# Canonical request
# --------------------------------------------------------------------------------------------


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal that also drops empty segments, as AWS expects."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + trail


def _canonical_paths(path: str) -> list[str]:
    raw = path or "/"
    # The last is S3's: the path as sent, neither normalised nor encoded again.
    candidates = [quote(_remove_dot_segments(raw), safe="/~"), quote(raw, safe="/~"), raw]
    return list(dict.fromkeys(candidates))


def _canonical_queries(raw_query: str, presigned: bool) -> list[str]:
    raw_pairs = _raw_pairs(raw_query)
    if presigned:
        raw_pairs = [(k, v) for k, v in raw_pairs if k != _Q_SIGNATURE]
    as_sent = "&".join(f"{k}={v}" for k, v in sorted(raw_pairs))
    encoded = [
        (quote(k, safe=_UNRESERVED), quote(v, safe=_UNRESERVED))
        for k, v in _decoded_pairs(raw_query)
        if not (presigned and k == _Q_SIGNATURE)
    ]
    reencoded = "&".join(f"{k}={v}" for k, v in sorted(encoded))
    return list(dict.fromkeys([as_sent, reencoded]))


def _header_value(req: HttpRequest, name: str) -> str:
    value = req.headers.get("host", req.host) if name == "host" else req.headers.get(name, "")
    return " ".join(value.split())


@lru_cache(maxsize=256)
def _signed_names(signed_headers: str) -> tuple[str, ...]:
    """``SignedHeaders``' names, lower case (a client sends the same list call after call)."""
    return tuple(name.strip().lower() for name in signed_headers.split(";"))


# Whitespace a header value's canonical form would change: a run, a tab or other blank, one
# at either end of the value.
_UNCANONICAL_SPACE = re.compile(r"[^\S\n]{2}|[^\S \n]|:[^\S\n]|[^\S\n]\n")


def _canonical_headers(req: HttpRequest, signed_headers: str) -> str:
    names = _signed_names(signed_headers)
    get = req.headers.get
    text = "".join([f"{name}:{get(name, '')}\n" for name in names])
    if "host" not in req.headers or _UNCANONICAL_SPACE.search(text):
        # Blanks to fold (or no Host header): value by value, as SigV4 says.
        return "".join(f"{name}:{_header_value(req, name)}\n" for name in names)
    return text


def _checked_content_hash(
    declared: str, body: bytes, *, streamed: bool = False, s3: bool = False
) -> str:
    if _SHA256_HEX_RE.fullmatch(declared):
        # A streamed body is checked as it arrives, before any of it is stored.
        if not streamed and declared.lower() != hashlib.sha256(body).hexdigest():
            raise AuthFailure(
                AuthKind.BAD_SIGNATURE,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        return declared
    if declared in (UNSIGNED_PAYLOAD, STREAMING_UNSIGNED_PAYLOAD_TRAILER) or (
        s3 and declared in _DECLARED_PAYLOADS
    ):
        return declared
    raise AuthFailure(
        AuthKind.INCOMPLETE,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "or a valid sha256 value.",
    )


def _payload_hashes(req: HttpRequest, claim: _Claim) -> list[str]:
    declared = req.headers.get(_H_CONTENT_SHA256)
    if declared is None and claim.presigned:
        declared = _first(_decoded_pairs(_raw_query(req)), _Q_CONTENT_SHA256)
    if declared is not None:
        return [
            _checked_content_hash(
                declared,
                req.body,
                streamed=req.stream is not None,
                s3=claim.scope.service == "s3",
            )
        ]
    body_hash = hashlib.sha256(req.body).hexdigest()
    return [body_hash, UNSIGNED_PAYLOAD] if claim.presigned else [body_hash]


def _canonical_requests(req: HttpRequest, claim: _Claim) -> Iterator[str]:
    headers = _canonical_headers(req, claim.signed_headers)
    payloads = _payload_hashes(req, claim)
    for path in _canonical_paths(req.path):
        for query in _canonical_queries(_raw_query(req), claim.presigned):
            for payload in payloads:
                yield "\n".join(
                    [req.method.upper(), path, query, headers, claim.signed_headers, payload]
                )


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _signing_key(secret: str, scope: Scope) -> bytes:
    return _derived_key(secret, scope.date, scope.region, scope.service)


@lru_cache(maxsize=256)
def _derived_key(secret: str, date: str, region: str, service: str) -> bytes:
    """A day's signing key, derived once (four HMACs) for every request of that day and key,
    as the SDKs cache it too."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def _string_to_sign(claim: _Claim, canonical_request: str) -> str:
    scope = claim.scope
    credential_scope = f"{scope.date}/{scope.region}/{scope.service}/{TERMINATOR}"
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, claim.timestamp, credential_scope, digest])


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fmt(moment: datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g}"


def _check_token(claim: _Claim, credential: Credential, now: datetime) -> None:
    presented = claim.token
    expected = credential.session_token
    if expected is None:
        if presented is not None:
            raise AuthFailure(AuthKind.BAD_TOKEN)
    elif presented is None or not hmac.compare_digest(
        presented.encode("utf-8"), expected.encode("utf-8")
    ):
        raise AuthFailure(AuthKind.BAD_TOKEN)
    if credential.expiration is not None and now >= _utc(credential.expiration):
        raise AuthFailure(AuthKind.EXPIRED_TOKEN)


def _check_clock(claim: _Claim, now: datetime, max_skew: timedelta) -> None:
    signed_at = claim.signed_at
    if signed_at - now > max_skew:
        raise AuthFailure(
            AuthKind.SKEWED,
            f"Signature not yet current: {_fmt(signed_at)} is still later than "
            f"{_fmt(now + max_skew)} ({_fmt(now)} + {_minutes(max_skew)} min.)",
        )
    if claim.expires is not None:
        if now > signed_at + timedelta(seconds=claim.expires):
            raise AuthFailure(AuthKind.EXPIRED_PRESIGN)
    elif now - signed_at > max_skew:
        raise AuthFailure(
            AuthKind.SKEWED,
            f"Signature expired: {_fmt(signed_at)} is now earlier than "
            f"{_fmt(now - max_skew)} ({_fmt(now)} - {_minutes(max_skew)} min.)",
        )


def verify(
    req: HttpRequest,
    lookup: Callable[[str], Credential | None],
    *,
    authorization: Authorization | None = None,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=5),
) -> SignedRequest:
    """Verify ``req``'s SigV4 signature; raise ``AuthFailure`` if it does not hold.

    ``lookup`` maps an access key id to its credential (``None``: unknown key). ``authorization``
    is the request's claim when the caller read it already. ``now`` defaults to the current UTC
    time; naive datetimes (here and in ``Credential.expiration``) are UTC.
    """
    moment = _utc(now) if now is not None else datetime.now(UTC)
    claim = _claim(req, authorization or read_authorization(req))
    credential = lookup(claim.scope.access_key_id)
    if credential is None:
        raise AuthFailure(AuthKind.UNKNOWN_KEY)
    _check_token(claim, credential, moment)
    _check_clock(claim, moment, max_skew)

    key = _signing_key(credential.secret_access_key, claim.scope)
    provided = claim.signature.encode("utf-8")
    first: tuple[str, str] | None = None
    for canonical in _canonical_requests(req, claim):
        to_sign = _string_to_sign(claim, canonical)
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode("ascii"), provided):
            return SignedRequest(
                access_key_id=claim.scope.access_key_id,
                region=claim.scope.region,
                service=claim.scope.service,
                signed_at=claim.signed_at,
                presigned=claim.presigned,
                session_token=claim.token,
                signature=claim.signature,
                timestamp=claim.timestamp,
                scope=claim.scope,
                signing_key=key,
                payload=canonical.rsplit("\n", 1)[-1],
            )
        if first is None:
            first = (canonical, to_sign)
    raise AuthFailure(
        AuthKind.BAD_SIGNATURE,
        canonical_request=first[0] if first else None,
        string_to_sign=first[1] if first else None,
    )
