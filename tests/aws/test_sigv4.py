"""SigV4 verification against requests signed by botocore, boto3 and the AWS CLI."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import boto3
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from botocore import UNSIGNED
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.utils import percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emustudio.aws.errors import AwsError
from emustudio.aws.http import HttpRequest
from emustudio.aws.sigv4 import (
    AuthFailure,
    AuthKind,
    Credential,
    Scope,
    SignedRequest,
    read_scope,
    verify,
)

SIGNED_AT = datetime(2026, 11, 28, 12, 0, 0)  # naive UTC, as botocore's clock returns it
NOW = SIGNED_AT.replace(tzinfo=UTC)
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEMP_AKID = "ASIAEXAMPLE"
TEMP_SECRET = "tempsecret/with+chars"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDH+token=="
ENDPOINT = "http://emustudio.local:8080"

JSON_TYPE = "application/x-amz-json-1.1"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def store(**extra: Credential) -> Callable[[str], Credential | None]:
    creds = {
        AKID: Credential(AKID, SECRET),
        TEMP_AKID: Credential(
            TEMP_AKID, TEMP_SECRET, session_token=TOKEN, expiration=NOW + timedelta(hours=1)
        ),
        **extra,
    }
    return creds.get


LOOKUP = store()


# --------------------------------------------------------------------------------------------
# Building and signing requests with botocore
# --------------------------------------------------------------------------------------------


def botocreds(akid: str = AKID, secret: str = SECRET, token: str | None = None) -> Credentials:
    return Credentials(akid, secret, token)


def sign(
    request: AWSRequest,
    service: str,
    *,
    creds: Credentials | None = None,
    region: str = "us-east-1",
    at: datetime = SIGNED_AT,
    presign: int | None = None,
) -> AWSRequest:
    signer = (
        SigV4Auth(creds or botocreds(), service, region)
        if presign is None
        else SigV4QueryAuth(creds or botocreds(), service, region, expires=presign)
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        signer.add_auth(request)
    return request


def to_http(request: AWSRequest) -> HttpRequest:
    """The request as the gateway sees it after the wire: Host added, body as bytes."""
    prepared = request.prepare()
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
    headers.setdefault("Host", urlsplit(prepared.url).netloc)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return HttpRequest.build(prepared.method, prepared.url, headers, body)


def json_request(
    body: bytes = b'{"StudioId": "es-1"}', target: str = "DescribeStudio"
) -> AWSRequest:
    headers = {"X-Amz-Target": f"ElasticMapReduce.{target}", "Content-Type": JSON_TYPE}
    return AWSRequest("POST", f"{ENDPOINT}/", data=body, headers=headers)


def form_request(params: dict[str, str]) -> AWSRequest:
    # As botocore's query serializer hands it over: a dict, form-encoded when prepared.
    return AWSRequest("POST", f"{ENDPOINT}/", data=params, headers={"Content-Type": FORM_TYPE})


def iam_request() -> AWSRequest:
    return form_request({"Action": "ListUsers", "Version": "2010-05-08", "PathPrefix": "/a b/"})


def ec2_request() -> AWSRequest:
    return form_request(
        {"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": "i-0123"}
    )


def rest_json_request() -> AWSRequest:
    url = f"{ENDPOINT}/virtualclusters/vc%201/jobruns?maxResults=10&states=RUNNING"
    return AWSRequest("GET", url, headers={"Content-Type": "application/json"})


def signed(request: AWSRequest, service: str = "elasticmapreduce", **kw: Any) -> HttpRequest:
    return to_http(sign(request, service, **kw))


def replace(req: HttpRequest, **changes: Any) -> HttpRequest:
    values: dict[str, Any] = {
        "method": req.method,
        "path": req.path,
        "headers": dict(req.headers),
        "body": req.body,
        "query": req.query,
        "raw_query": req.raw_query,
        "host": req.host,
    }
    values.update(changes)
    return HttpRequest(**values)


def with_headers(req: HttpRequest, **headers: str | None) -> HttpRequest:
    merged = dict(req.headers)
    for name, value in headers.items():
        key = name.replace("_", "-").lower()
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return replace(req, headers=merged)


def failure(req: HttpRequest, **kw: Any) -> AuthFailure:
    kw.setdefault("now", NOW)
    with pytest.raises(AuthFailure) as info:
        verify(req, kw.pop("lookup", LOOKUP), **kw)
    return info.value


# --------------------------------------------------------------------------------------------
# Success
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "service"),
    [
        (json_request, "elasticmapreduce"),
        (iam_request, "iam"),
        (ec2_request, "ec2"),
        (rest_json_request, "emr-containers"),
    ],
)
def test_botocore_header_signatures_verify(make: Callable[[], AWSRequest], service: str) -> None:
    req = signed(make(), service, region="eu-west-3")
    result = verify(req, LOOKUP, now=NOW)
    assert result == SignedRequest(
        access_key_id=AKID,
        region="eu-west-3",
        service=service,
        signed_at=NOW,
        presigned=False,
        session_token=None,
    )


def test_now_defaults_to_the_clock_and_naive_now_is_utc() -> None:
    fresh = signed(json_request(), at=datetime.now(UTC).replace(tzinfo=None))
    assert verify(fresh, LOOKUP).access_key_id == AKID
    assert verify(signed(json_request()), LOOKUP, now=SIGNED_AT).signed_at == NOW


def test_date_header_instead_of_x_amz_date() -> None:
    request = json_request()
    request.headers["Date"] = "placeholder"  # botocore then signs with Date, no X-Amz-Date
    req = signed(request)
    assert "x-amz-date" not in req.headers
    assert req.headers["date"].endswith("-0000")
    assert verify(req, LOOKUP, now=NOW).signed_at == NOW


def test_x_amz_date_wins_over_date() -> None:
    req = with_headers(signed(json_request()), Date="Mon, 01 Jan 2001 00:00:00 GMT")
    assert verify(req, LOOKUP, now=NOW).signed_at == NOW


def test_unsigned_extra_headers_do_not_matter() -> None:
    req = with_headers(
        signed(json_request()), User_Agent="aws-cli/9", Amz_Sdk_Invocation_Id="x", Accept="*/*"
    )
    verify(req, LOOKUP, now=NOW)


def test_header_values_are_trimmed_and_collapsed() -> None:
    request = json_request()
    request.headers["X-Custom"] = "  a   b \t c  "
    req = signed(request)
    assert "x-custom" in req.headers["authorization"]
    verify(with_headers(req, X_Custom="a b c"), LOOKUP, now=NOW)


def test_presigned_query_verifies() -> None:
    request = AWSRequest(
        "GET", f"{ENDPOINT}/", params={"Action": "GetCallerIdentity", "Version": "2011-06-15"}
    )
    req = signed(request, "sts", presign=900)
    assert "authorization" not in req.headers
    assert "X-Amz-Signature=" in req.raw_query
    result = verify(req, LOOKUP, now=NOW + timedelta(seconds=900))
    assert result.presigned and result.service == "sts" and result.session_token is None


def test_presigned_post_body_moves_into_query() -> None:
    req = signed(iam_request(), "iam", presign=60)
    assert req.body == b""
    assert "PathPrefix=%2Fa%20b%2F" in req.raw_query
    assert verify(req, LOOKUP, now=NOW).presigned


def test_presigned_unsigned_payload_is_accepted() -> None:
    # An S3-style presigner signs UNSIGNED-PAYLOAD instead of the body hash.
    class UnsignedPayloadQueryAuth(SigV4QueryAuth):  # type: ignore[misc]
        def payload(self, request: AWSRequest) -> str:
            return "UNSIGNED-PAYLOAD"

    request = AWSRequest("GET", f"{ENDPOINT}/thing", params={"a": "1"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        UnsignedPayloadQueryAuth(botocreds(), "execute-api", "us-east-1", expires=60).add_auth(
            request
        )
    assert verify(to_http(request), LOOKUP, now=NOW).service == "execute-api"


def test_unsigned_payload_header_is_honoured() -> None:
    request = json_request()
    request.url = "https://emustudio.local/"
    request.context["payload_signing_enabled"] = False
    req = signed(request)
    assert req.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    verify(req, LOOKUP, now=NOW)
    verify(replace(req, body=b"anything"), LOOKUP, now=NOW)


def test_content_sha256_header_is_used_and_checked() -> None:
    request = json_request(b"{}")
    request.headers["X-Amz-Content-SHA256"] = (
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256(b"{}")
    )
    req = signed(request)
    verify(req, LOOKUP, now=NOW)
    upper = with_headers(req, X_Amz_Content_Sha256=req.headers["x-amz-content-sha256"].upper())
    assert failure(upper).kind is AuthKind.BAD_SIGNATURE  # the canonical form uses it verbatim
    tampered = failure(replace(req, body=b"[]"))
    assert tampered.kind is AuthKind.BAD_SIGNATURE
    assert "x-amz-content-sha256" in tampered.detail
    junk = failure(with_headers(req, X_Amz_Content_Sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD"))
    assert junk.kind is AuthKind.INCOMPLETE


SPECIAL_PATHS = [
    "/",
    "/a b/c",
    "/%E2%9C%93/caf%C3%A9",
    "/a%2Fb/c",
    "/a/./b/../c//d/",
    "/~user/$!'()*+,;=:@/",
    "/v1/studios/es-ABC%20DEF/",
    "/%7Etilde/%2b",
]


@pytest.mark.parametrize("path", SPECIAL_PATHS)
def test_special_paths(path: str) -> None:
    req = signed(AWSRequest("GET", f"{ENDPOINT}{path}"), "emr-containers")
    assert req.path.startswith("/")
    verify(req, LOOKUP, now=NOW)


SPECIAL_QUERIES = [
    {"a": "b"},
    {"key with space": "value with space", "plus": "1+1=2"},
    {"unicode": "çé✓😀", "日本": "語"},
    {"empty": "", "slash": "/a/b/", "tilde": "~x~"},
    {"reserved": "!*'();:@&=+$,/?#[]", "z": "last", "A": "first"},
    {"X-Amz-Meta": "not auth", "Action": "List"},
]


@pytest.mark.parametrize("params", SPECIAL_QUERIES)
def test_special_query_strings_in_url_and_in_params(params: dict[str, str]) -> None:
    in_url = AWSRequest("GET", f"{ENDPOINT}/p?{percent_encode_sequence(params)}")
    verify(signed(in_url, "emr-containers"), LOOKUP, now=NOW)
    in_params = AWSRequest("GET", f"{ENDPOINT}/p", params=params)  # form-encoded on the wire
    verify(signed(in_params, "emr-containers"), LOOKUP, now=NOW)


def test_raw_query_oddities_as_botocore_signs_them() -> None:
    req = signed(AWSRequest("GET", f"{ENDPOINT}/p?flag&a=b=c&&z=%7e&b=2&b=1"), "emr-containers")
    verify(req, LOOKUP, now=NOW)


def test_parsed_query_alone_is_enough() -> None:
    # A gateway that fills only ``query`` still verifies: the raw form is rebuilt from it.
    request = AWSRequest("GET", f"{ENDPOINT}/p", params={"q": "a b/c", "r": "é"})
    req = signed(request, "emr-containers")
    verify(replace(req, raw_query=""), LOOKUP, now=NOW)
    presigned = signed(AWSRequest("GET", f"{ENDPOINT}/p", params={"q": "1"}), "s", presign=9)
    parsed_only = replace(presigned, raw_query="")
    assert read_scope(parsed_only) == Scope(AKID, "20261128", "us-east-1", "s")
    assert verify(parsed_only, LOOKUP, now=NOW).presigned


def test_other_sdks_spec_encoding_of_the_query() -> None:
    # Spec-style signers (Go/Java/JS SDKs) re-encode decoded values; the wire may use '+'.
    request = AWSRequest("GET", f"{ENDPOINT}/p", params={"q": "a b", "r": "x~y"})
    req = signed(request, "emr-containers")
    assert "q=a+b" in req.raw_query
    spec_wire = replace(req, raw_query=req.raw_query.replace("q=a+b", "q=a%20b"))
    verify(spec_wire, LOOKUP, now=NOW)


# --------------------------------------------------------------------------------------------
# Tampering and bad keys
# --------------------------------------------------------------------------------------------


def test_tampered_body_fails() -> None:
    req = signed(json_request())
    bad = failure(replace(req, body=req.body + b" "))
    assert bad.kind is AuthKind.BAD_SIGNATURE
    assert bad.detail.startswith("The request signature we calculated does not match")
    assert bad.canonical_request is not None and bad.canonical_request.startswith("POST\n/\n")
    assert bad.string_to_sign is not None and bad.string_to_sign.startswith("AWS4-HMAC-SHA256\n")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: with_headers(r, X_Amz_Target="ElasticMapReduce.DeleteStudio"),
        lambda r: with_headers(r, Content_Type="application/json"),
        lambda r: with_headers(r, Host="other.local:8080"),
        lambda r: with_headers(r, X_Amz_Date="20261128T120001Z"),
        lambda r: replace(r, method="PUT"),
        lambda r: replace(r, path="/other"),
        lambda r: replace(r, raw_query="extra=1"),
        lambda r: with_headers(
            r, Authorization=r.headers["authorization"].replace("us-east-1", "us-east-2")
        ),
        lambda r: with_headers(
            r,
            Authorization=r.headers["authorization"].replace(
                "elasticmapreduce", "elasticmapreducx"
            ),
        ),
        lambda r: with_headers(
            r,
            Authorization=r.headers["authorization"].replace(
                "SignedHeaders=", "SignedHeaders=user-agent;"
            ),
        ),
    ],
    ids=[
        "target",
        "content-type",
        "host",
        "date",
        "method",
        "path",
        "query",
        "region",
        "service",
        "signed-headers",
    ],
)
def test_tampered_request_fails(mutate: Callable[[HttpRequest], HttpRequest]) -> None:
    assert failure(mutate(signed(json_request()))).kind is AuthKind.BAD_SIGNATURE


def test_tampered_presigned_query_fails() -> None:
    req = signed(iam_request(), "iam", presign=60)
    changed = req.raw_query.replace("Action=ListUsers", "Action=DeleteUser")
    assert failure(replace(req, raw_query=changed)).kind is AuthKind.BAD_SIGNATURE
    added = replace(req, raw_query=req.raw_query + "&UserName=root")
    assert failure(added).kind is AuthKind.BAD_SIGNATURE
    longer = req.raw_query.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    assert failure(replace(req, raw_query=longer)).kind is AuthKind.BAD_SIGNATURE


def test_signature_case_and_garbage() -> None:
    req = signed(json_request())
    auth = req.headers["authorization"]
    sig = auth.rsplit("Signature=", 1)[1]
    for other in (sig.upper(), sig[:-1], sig + "0", "é" * 64, ""):
        bad = with_headers(req, Authorization=auth.replace(sig, other))
        assert failure(bad).kind is AuthKind.BAD_SIGNATURE


def test_wrong_secret() -> None:
    req = signed(json_request(), creds=botocreds(AKID, "not-the-secret"))
    assert failure(req).kind is AuthKind.BAD_SIGNATURE


def test_unknown_key() -> None:
    req = signed(json_request(), creds=botocreds("AKIDUNKNOWN", SECRET))
    bad = failure(req)
    assert bad.kind is AuthKind.UNKNOWN_KEY
    assert (bad.code, bad.status) == ("UnrecognizedClientException", 400)


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------


def test_skew_within_limits_passes() -> None:
    req = signed(json_request())
    for delta in (timedelta(0), timedelta(minutes=5), -timedelta(minutes=5)):
        verify(req, LOOKUP, now=NOW + delta)


def test_signature_expired_message() -> None:
    bad = failure(signed(json_request()), now=NOW + timedelta(minutes=5, seconds=1))
    assert bad.kind is AuthKind.SKEWED
    assert bad.detail == (
        "Signature expired: 20261128T120000Z is now earlier than 20261128T120001Z "
        "(20261128T120501Z - 5 min.)"
    )
    assert bad.for_protocol("json").code == "InvalidSignatureException"
    assert bad.for_protocol("query").code == "SignatureDoesNotMatch"
    assert bad.for_protocol("ec2").code == "RequestExpired"


def test_signature_not_yet_current_message() -> None:
    bad = failure(
        signed(json_request()), now=NOW - timedelta(minutes=20), max_skew=timedelta(minutes=15)
    )
    assert bad.kind is AuthKind.SKEWED
    assert bad.detail == (
        "Signature not yet current: 20261128T120000Z is still later than 20261128T115500Z "
        "(20261128T114000Z + 15 min.)"
    )


def test_presign_expiry() -> None:
    req = signed(iam_request(), "iam", presign=60)
    verify(req, LOOKUP, now=NOW + timedelta(seconds=60))
    verify(req, LOOKUP, now=NOW + timedelta(seconds=59, minutes=0))
    bad = failure(req, now=NOW + timedelta(seconds=61))
    assert bad.kind is AuthKind.EXPIRED_PRESIGN
    assert bad.for_protocol("query").message == "Request has expired."
    week = signed(iam_request(), "iam", presign=604800)
    verify(week, LOOKUP, now=NOW + timedelta(days=7))  # older than the skew, still valid


def test_presign_from_the_future_is_skewed() -> None:
    req = signed(iam_request(), "iam", presign=3600)
    verify(req, LOOKUP, now=NOW - timedelta(minutes=4))
    bad = failure(req, now=NOW - timedelta(minutes=6))
    assert bad.kind is AuthKind.SKEWED
    assert bad.detail.startswith("Signature not yet current: 20261128T120000Z")


def test_scope_date_must_match_the_request_date() -> None:
    req = signed(json_request())
    auth = req.headers["authorization"].replace("/20261128/", "/20261127/")
    bad = failure(with_headers(req, Authorization=auth))
    assert bad.kind is AuthKind.BAD_SIGNATURE
    assert bad.detail == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261127' != '20261128', from '20261128T120000Z'."
    )
    presigned = signed(iam_request(), "iam", presign=60)
    query = presigned.raw_query.replace("%2F20261128%2F", "%2F20261127%2F")
    assert failure(replace(presigned, raw_query=query)).kind is AuthKind.BAD_SIGNATURE


def test_bad_terminator() -> None:
    req = signed(json_request())
    auth = req.headers["authorization"].replace("/aws4_request", "/aws5_request")
    bad = failure(with_headers(req, Authorization=auth))
    assert bad.kind is AuthKind.BAD_SIGNATURE
    assert "valid terminator: 'aws4_request', not 'aws5_request'" in bad.detail


# --------------------------------------------------------------------------------------------
# Session tokens
# --------------------------------------------------------------------------------------------


def temp_creds(token: str | None = TOKEN) -> Credentials:
    return botocreds(TEMP_AKID, TEMP_SECRET, token)


def test_session_token_header_and_presigned() -> None:
    req = signed(json_request(), creds=temp_creds())
    assert req.headers["x-amz-security-token"] == TOKEN
    assert verify(req, LOOKUP, now=NOW).session_token == TOKEN
    presigned = signed(iam_request(), "iam", creds=temp_creds(), presign=60)
    assert "X-Amz-Security-Token=" in presigned.raw_query
    assert verify(presigned, LOOKUP, now=NOW).session_token == TOKEN


def test_session_token_missing() -> None:
    bad = failure(signed(json_request(), creds=temp_creds(None)))
    assert bad.kind is AuthKind.BAD_TOKEN
    assert bad.for_protocol("query").code == "InvalidClientTokenId"


def test_session_token_wrong() -> None:
    bad = failure(signed(json_request(), creds=temp_creds(TOKEN + "x")))
    assert bad.kind is AuthKind.BAD_TOKEN
    presigned = signed(iam_request(), "iam", creds=temp_creds("other"), presign=60)
    assert failure(presigned).kind is AuthKind.BAD_TOKEN


def test_session_token_for_a_permanent_key() -> None:
    bad = failure(signed(json_request(), creds=botocreds(AKID, SECRET, "unexpected")))
    assert bad.kind is AuthKind.BAD_TOKEN


def test_session_token_expired() -> None:
    req = signed(json_request(), creds=temp_creds())  # the credential expires at NOW + 1h
    verify(req, LOOKUP, now=NOW + timedelta(minutes=59), max_skew=timedelta(hours=2))
    bad = failure(req, now=NOW + timedelta(hours=1))
    assert bad.kind is AuthKind.EXPIRED_TOKEN  # reported before the (also) stale signature
    assert bad.message == "The security token included in the request is expired"
    assert (bad.code, bad.status) == ("ExpiredTokenException", 400)
    query = bad.for_protocol("query")
    assert (query.code, query.status) == ("ExpiredToken", 403)
    naive = store(**{TEMP_AKID: Credential(TEMP_AKID, TEMP_SECRET, TOKEN, SIGNED_AT)})
    assert failure(req, lookup=naive).kind is AuthKind.EXPIRED_TOKEN
    wrong_and_expired = signed(json_request(), creds=temp_creds("forged"))
    assert failure(wrong_and_expired, lookup=naive).kind is AuthKind.BAD_TOKEN


# --------------------------------------------------------------------------------------------
# Missing and incomplete signatures
# --------------------------------------------------------------------------------------------


def test_missing_authentication() -> None:
    req = to_http(json_request())
    assert read_scope(req) is None
    bad = failure(req)
    assert bad.kind is AuthKind.MISSING
    assert (bad.code, bad.status, bad.message) == (
        "MissingAuthenticationTokenException",
        400,
        "Request is missing Authentication Token",
    )
    # A SigV2-style query is not SigV4 either.
    assert failure(replace(req, raw_query="AWSAccessKeyId=AKID&Signature=x")).kind is (
        AuthKind.MISSING
    )


def auth_of(req: HttpRequest) -> str:
    return req.headers["authorization"]


INCOMPLETE_CASES: list[tuple[str, Callable[[HttpRequest], HttpRequest], str]] = [
    (
        "basic",
        lambda r: with_headers(r, Authorization="Basic dXNlcjpwYXNz", X_Amz_Date=None),
        "Authorization header requires 'Credential' parameter. Authorization header requires "
        "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=Basic dXNlcjpwYXNz",
    ),
    (
        "no-signature",
        lambda r: with_headers(r, Authorization=auth_of(r).split(", Signature=")[0]),
        "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20261128/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target",
    ),
    (
        "no-date",
        lambda r: with_headers(r, X_Amz_Date=None),
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    ),
    (
        "missing-equal-sign",
        lambda r: with_headers(
            r, Authorization=auth_of(r).replace("Credential=AKIDEXAMPLE/", "Credential=AKID /")
        ),
        "'/20261128/us-east-1/elasticmapreduce/aws4_request' not a valid key=value pair "
        "(missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=AKID /",
    ),
    (
        "short-credential",
        lambda r: with_headers(
            r, Authorization=auth_of(r).replace("/us-east-1/elasticmapreduce", "/us-east-1")
        ),
        "Credential must have exactly 5 slash-delimited elements, "
        "e.g. keyid/date/region/service/term, got "
        "'AKIDEXAMPLE/20261128/us-east-1/aws4_request'",
    ),
    (
        "host-not-signed",
        lambda r: with_headers(r, Authorization=auth_of(r).replace(";host;", ";")),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    ),
    (
        "bad-x-amz-date",
        lambda r: with_headers(r, X_Amz_Date="2026-11-28T12:00:00Z"),
        "Date must be in ISO-8601 'basic format'. Got '2026-11-28T12:00:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
    ),
    (
        "bad-date-header",
        lambda r: with_headers(r, X_Amz_Date=None, Date="yesterday"),
        "Date must be in ISO-8601 'basic format'. Got 'yesterday'.",
    ),
    (
        "sigv4a",
        lambda r: with_headers(
            r, Authorization=auth_of(r).replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")
        ),
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'",
    ),
    (
        "both-mechanisms",
        lambda r: replace(r, raw_query="X-Amz-Signature=abc"),
        "Only one auth mechanism allowed",
    ),
    (
        "bad-content-sha256",
        lambda r: with_headers(r, X_Amz_Content_Sha256="nope"),
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [case[1:] for case in INCOMPLETE_CASES],
    ids=[case[0] for case in INCOMPLETE_CASES],
)
def test_incomplete_header_signatures(
    mutate: Callable[[HttpRequest], HttpRequest], message: str
) -> None:
    bad = failure(mutate(signed(json_request())))
    assert bad.kind is AuthKind.INCOMPLETE
    assert message in bad.detail
    assert bad.code == "IncompleteSignatureException"
    assert bad.for_protocol("query").code == "IncompleteSignature"
    assert bad.for_protocol("ec2").message == bad.detail


def drop_param(name: str) -> Callable[[HttpRequest], HttpRequest]:
    def mutate(req: HttpRequest) -> HttpRequest:
        kept = [p for p in req.raw_query.split("&") if not p.startswith(f"{name}=")]
        return replace(req, raw_query="&".join(kept))

    return mutate


def set_param(name: str, value: str) -> Callable[[HttpRequest], HttpRequest]:
    def mutate(req: HttpRequest) -> HttpRequest:
        pairs = [
            f"{name}={value}" if p.startswith(f"{name}=") else p for p in req.raw_query.split("&")
        ]
        return replace(req, raw_query="&".join(pairs))

    return mutate


PRESIGN_INCOMPLETE: list[tuple[str, Callable[[HttpRequest], HttpRequest], str]] = [
    *[
        (f"no-{name}", drop_param(name), "Query-string authentication version 4 requires")
        for name in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
    ],
    (
        "algorithm",
        set_param("X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
        'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
    ),
    ("expires-nan", set_param("X-Amz-Expires", "soon"), "X-Amz-Expires should be a number"),
    (
        "expires-big",
        set_param("X-Amz-Expires", "604801"),
        "X-Amz-Expires must be less than a week (in seconds) that is 604800",
    ),
    ("expires-zero", set_param("X-Amz-Expires", "0"), "X-Amz-Expires must be at least 1"),
    ("date", set_param("X-Amz-Date", "20261128"), "Date must be in ISO-8601 'basic format'"),
    (
        "credential",
        set_param("X-Amz-Credential", "AKIDEXAMPLE%2F20261128"),
        "Credential must have exactly 5 slash-delimited elements",
    ),
    (
        "host-not-signed",
        set_param("X-Amz-SignedHeaders", "content-type"),
        "'Host' or ':authority' must be a 'SignedHeader'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [case[1:] for case in PRESIGN_INCOMPLETE],
    ids=[case[0] for case in PRESIGN_INCOMPLETE],
)
def test_incomplete_presigned(mutate: Callable[[HttpRequest], HttpRequest], message: str) -> None:
    bad = failure(mutate(signed(iam_request(), "iam", presign=60)))
    assert bad.kind is AuthKind.INCOMPLETE
    assert message in bad.detail


# --------------------------------------------------------------------------------------------
# read_scope
# --------------------------------------------------------------------------------------------


def test_read_scope() -> None:
    expected = Scope(AKID, "20261128", "eu-west-1", "elasticmapreduce")
    assert read_scope(signed(json_request(), region="eu-west-1")) == expected
    presigned = signed(iam_request(), "iam", region="eu-west-1", presign=60)
    assert read_scope(presigned) == Scope(AKID, "20261128", "eu-west-1", "iam")
    # Read, not verified: a wrong signature still names its scope.
    wrong = signed(json_request(), region="eu-west-1", creds=botocreds(AKID, "nope"))
    assert read_scope(wrong) == expected
    req = signed(json_request())
    for auth in ("Basic abc", "AWS4-HMAC-SHA256 Credential=AKID/2026", "AWS4-HMAC-SHA256"):
        assert read_scope(with_headers(req, Authorization=auth)) is None
    assert read_scope(to_http(json_request())) is None


# --------------------------------------------------------------------------------------------
# Error table, as botocore reads it
# --------------------------------------------------------------------------------------------

EXPECTED_TABLE: dict[AuthKind, dict[str, tuple[int, str]]] = {
    AuthKind.MISSING: {
        "json": (400, "MissingAuthenticationTokenException"),
        "query": (403, "MissingAuthenticationToken"),
        "ec2": (401, "MissingAuthenticationToken"),
    },
    AuthKind.INCOMPLETE: {
        "json": (400, "IncompleteSignatureException"),
        "query": (400, "IncompleteSignature"),
        "ec2": (400, "IncompleteSignature"),
    },
    AuthKind.UNKNOWN_KEY: {
        "json": (400, "UnrecognizedClientException"),
        "query": (403, "InvalidClientTokenId"),
        "ec2": (401, "AuthFailure"),
    },
    AuthKind.BAD_SIGNATURE: {
        "json": (400, "InvalidSignatureException"),
        "query": (403, "SignatureDoesNotMatch"),
        "ec2": (401, "AuthFailure"),
    },
    AuthKind.SKEWED: {
        "json": (400, "InvalidSignatureException"),
        "query": (403, "SignatureDoesNotMatch"),
        "ec2": (400, "RequestExpired"),
    },
    AuthKind.EXPIRED_PRESIGN: {
        "json": (400, "RequestExpired"),
        "query": (400, "RequestExpired"),
        "ec2": (400, "RequestExpired"),
    },
    AuthKind.EXPIRED_TOKEN: {
        "json": (400, "ExpiredTokenException"),
        "query": (403, "ExpiredToken"),
        "ec2": (400, "RequestExpired"),
    },
    AuthKind.BAD_TOKEN: {
        "json": (400, "UnrecognizedClientException"),
        "query": (403, "InvalidClientTokenId"),
        "ec2": (401, "AuthFailure"),
    },
}


def serialize(error: AwsError, family: str) -> tuple[int, dict[str, str], bytes]:
    """Minimal AWS error bodies per protocol family (test-only; the real serializers live
    with the protocols)."""
    if family == "json":
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        return error.status, {"Content-Type": JSON_TYPE, "x-amzn-RequestId": "rid"}, body
    message = error.message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if family == "query":
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{error.code}</Code><Message>{message}</Message></Error>"
            "<RequestId>rid</RequestId></ErrorResponse>"
        )
    else:
        xml = (
            f"<Response><Errors><Error><Code>{error.code}</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>rid</RequestID></Response>"
        )
    return error.status, {"Content-Type": "text/xml"}, xml.encode()


@pytest.mark.parametrize("kind", list(AuthKind))
@pytest.mark.parametrize("family", ["json", "query", "ec2"])
def test_error_table_parses_in_botocore(kind: AuthKind, family: str) -> None:
    error = AuthFailure(kind, "some detail").for_protocol(family)
    assert type(error) is AwsError
    assert (error.status, error.code) == EXPECTED_TABLE[kind][family]
    assert error.message
    status, headers, body = serialize(error, family)
    parsed = create_parser(family).parse(
        {"status_code": status, "headers": headers, "body": body}, None
    )
    assert parsed["Error"]["Code"] == error.code
    assert parsed["Error"]["Message"] == error.message


def test_failures_copy_and_pickle() -> None:
    bad = AuthFailure(AuthKind.SKEWED, "late", canonical_request="c", string_to_sign="s")
    for clone in (copy.copy(bad), pickle.loads(pickle.dumps(bad))):
        assert isinstance(clone, AuthFailure)
        assert (clone.kind, clone.detail, clone.code, clone.status) == (
            AuthKind.SKEWED,
            "late",
            "InvalidSignatureException",
            400,
        )
        assert (clone.canonical_request, clone.string_to_sign) == ("c", "s")


def test_for_protocol_aliases_and_unknowns() -> None:
    bad = AuthFailure(AuthKind.BAD_SIGNATURE)
    assert bad.for_protocol("rest-json").code == "InvalidSignatureException"
    assert bad.for_protocol("rest-xml").code == "SignatureDoesNotMatch"
    assert bad.for_protocol("json").message.startswith("The request signature we calculated")
    with pytest.raises(ValueError):
        bad.for_protocol("soap")
    assert repr(bad).startswith("AuthFailure(BAD_SIGNATURE")
    assert AuthFailure(AuthKind.INCOMPLETE, "x").for_protocol("ec2").message == "x"
    assert AuthFailure(AuthKind.UNKNOWN_KEY, "x").for_protocol("ec2").message == (
        "AWS was not able to validate the provided access credentials"
    )


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

segment_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=12)
raw_segment = st.text(
    alphabet="abcXYZ019-._~!$&'()*+,;=:@", min_size=1, max_size=8
) | st.sampled_from([".", ".."])
path_segment = segment_text.map(lambda s: quote(s, safe="")) | raw_segment
paths = st.lists(path_segment, max_size=6).map(lambda segs: "/" + "/".join(segs))
# A client's own parameters never use the X-Amz-* names SigV4 reserves for itself.
params = st.dictionaries(
    segment_text.filter(lambda k: bool(k) and not k.lower().startswith("x-amz-")),
    segment_text,
    max_size=6,
)
bodies = st.binary(max_size=256)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    method=methods,
    path=paths,
    query=params,
    body=bodies,
    in_url=st.booleans(),
    token=st.booleans(),
)
def test_property_botocore_header_signatures_verify(
    method: str, path: str, query: dict[str, str], body: bytes, in_url: bool, token: bool
) -> None:
    url = f"{ENDPOINT}{path}"
    if in_url and query:
        request = AWSRequest(method, f"{url}?{percent_encode_sequence(query)}", data=body)
    else:
        request = AWSRequest(method, url, data=body, params=query)
    creds = temp_creds() if token else None
    req = signed(request, "emr-containers", creds=creds)
    result = verify(req, LOOKUP, now=NOW)
    assert result.session_token == (TOKEN if token else None)
    if req.body:
        index = len(req.body) // 2
        flipped = bytearray(req.body)
        flipped[index] ^= 0x01
        with pytest.raises(AuthFailure) as info:
            verify(replace(req, body=bytes(flipped)), LOOKUP, now=NOW)
        assert info.value.kind is AuthKind.BAD_SIGNATURE


@PROPERTY_SETTINGS
@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_property_any_single_byte_change_to_the_body_fails(
    body: bytes, data: st.DataObject
) -> None:
    req = signed(json_request(body))
    verify(req, LOOKUP, now=NOW)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    replacement = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != body[index]), label="byte"
    )
    changed = bytearray(body)
    changed[index] = replacement
    with pytest.raises(AuthFailure) as info:
        verify(replace(req, body=bytes(changed)), LOOKUP, now=NOW)
    assert info.value.kind is AuthKind.BAD_SIGNATURE


@PROPERTY_SETTINGS
@given(path=paths, query=params, expires=st.integers(min_value=1, max_value=604800))
def test_property_presigned_urls_verify(path: str, query: dict[str, str], expires: int) -> None:
    request = AWSRequest("GET", f"{ENDPOINT}{path}", params=query)
    req = signed(request, "execute-api", presign=expires)
    assert verify(req, LOOKUP, now=NOW + timedelta(seconds=expires)).presigned
    with pytest.raises(AuthFailure) as info:
        verify(req, LOOKUP, now=NOW + timedelta(seconds=expires + 1))
    assert info.value.kind is AuthKind.EXPIRED_PRESIGN


# --------------------------------------------------------------------------------------------
# End to end: boto3 and the AWS CLI against a tiny Tornado server
# --------------------------------------------------------------------------------------------

FAMILY_OF_SERVICE = {"elasticmapreduce": "json", "iam": "query", "ec2": "ec2"}

SUCCESS_BODIES = {
    "json": (JSON_TYPE, b'{"Studios": []}'),
    "query": (
        "text/xml",
        b"<ListUsersResponse><ListUsersResult><Users/><IsTruncated>false</IsTruncated>"
        b"</ListUsersResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
        b"</ListUsersResponse>",
    ),
    "ec2": (
        "text/xml",
        b"<DescribeRegionsResponse><requestId>rid</requestId><regionInfo/>"
        b"</DescribeRegionsResponse>",
    ),
}


@dataclass
class TinyServer:
    """Verifies every request; answers failures in the protocol family of the scope's service."""

    credentials: dict[str, Credential] = field(default_factory=dict)
    clock_offset: timedelta = timedelta(0)
    port: int = 0
    seen: list[HttpRequest] = field(default_factory=list)
    session: Any = None

    def handle(self, req: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        self.seen.append(req)
        scope = read_scope(req)
        if scope is not None:
            family = FAMILY_OF_SERVICE.get(scope.service, "json")
        elif "x-amz-target" in req.headers:
            family = "json"
        else:
            family = "ec2" if b"Version=2016-11-15" in req.body else "query"
        try:
            verify(req, self.credentials.get, now=datetime.now(UTC) + self.clock_offset)
        except AuthFailure as failure:
            return serialize(failure.for_protocol(family), family)
        content_type, body = SUCCESS_BODIES[family]
        return 200, {"Content-Type": content_type}, body


class _Handler(tornado.web.RequestHandler):
    def initialize(self, server: TinyServer) -> None:
        self.server = server

    async def _any(self) -> None:
        r = self.request
        req = HttpRequest(
            method=r.method or "GET",
            path=r.path,
            headers={k.lower(): v for k, v in r.headers.items()},
            body=r.body,
            query={k: [v.decode() for v in vs] for k, vs in r.query_arguments.items()},
            raw_query=r.query,
            host=r.host,
        )
        status, headers, body = self.server.handle(req)
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        self.finish(body)

    get = post = put = delete = _any


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyServer]:
    home = tmp_path_factory.mktemp("aws-home")
    isolated = {
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    state = TinyServer()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        state.port = sockets[0].getsockname()[1]
        app = tornado.web.Application([(r".*", _Handler, {"server": state})])
        http = tornado.httpserver.HTTPServer(app)
        http.add_sockets(sockets)
        holder["loop"], holder["http"] = loop, http
        ready.set()
        loop.run_forever()
        http.stop()
        loop.run_until_complete(http.close_all_connections())
        loop.close()

    thread = threading.Thread(target=run, name="sigv4-tiny-server", daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        with mock.patch.dict(os.environ, isolated):
            # One session for every client, so service models load once.
            state.session = boto3.session.Session(region_name="us-east-1")
            yield state
    finally:
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(10)


@pytest.fixture
def tiny(server: TinyServer) -> TinyServer:
    server.credentials = {
        AKID: Credential(AKID, SECRET),
        TEMP_AKID: Credential(TEMP_AKID, TEMP_SECRET, TOKEN),
    }
    server.clock_offset = timedelta(0)
    server.seen.clear()
    return server


def client(
    tiny: TinyServer,
    service: str,
    *,
    akid: str = AKID,
    secret: str = SECRET,
    token: str | None = None,
    unsigned: bool = False,
) -> Any:
    config = Config(
        retries={"total_max_attempts": 1},
        signature_version=UNSIGNED if unsigned else None,
    )
    return tiny.session.client(
        service,
        endpoint_url=f"http://127.0.0.1:{tiny.port}",
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=config,
    )


def call(tiny: TinyServer, service: str, **kw: Any) -> Any:
    c = client(tiny, service, **kw)
    operation = {"emr": "list_studios", "iam": "list_users", "ec2": "describe_regions"}[service]
    return getattr(c, operation)()


def error_code(tiny: TinyServer, service: str, **kw: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(tiny, service, **kw)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("service", ["emr", "iam", "ec2"])
def test_e2e_boto3_success(tiny: TinyServer, service: str) -> None:
    result = call(tiny, service)
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
    result = call(tiny, service, akid=TEMP_AKID, secret=TEMP_SECRET, token=TOKEN)
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tiny.seen[-1].headers["x-amz-security-token"] == TOKEN


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("emr", ("InvalidSignatureException", 400)),
        ("iam", ("SignatureDoesNotMatch", 403)),
        ("ec2", ("AuthFailure", 401)),
    ],
)
def test_e2e_boto3_wrong_secret(tiny: TinyServer, service: str, expected: tuple[str, int]) -> None:
    assert error_code(tiny, service, secret="wrong") == expected


def test_e2e_boto3_failure_kinds(tiny: TinyServer) -> None:
    assert error_code(tiny, "emr", akid="AKIDNOBODY") == ("UnrecognizedClientException", 400)
    assert error_code(tiny, "iam", akid="AKIDNOBODY") == ("InvalidClientTokenId", 403)
    assert error_code(tiny, "emr", unsigned=True) == ("MissingAuthenticationTokenException", 400)
    assert error_code(tiny, "iam", unsigned=True) == ("MissingAuthenticationToken", 403)
    assert error_code(tiny, "ec2", unsigned=True) == ("MissingAuthenticationToken", 401)
    temp = {"akid": TEMP_AKID, "secret": TEMP_SECRET}
    assert error_code(tiny, "emr", **temp) == ("UnrecognizedClientException", 400)
    assert error_code(tiny, "iam", **temp, token="bad") == ("InvalidClientTokenId", 403)
    tiny.credentials[TEMP_AKID] = Credential(
        TEMP_AKID, TEMP_SECRET, TOKEN, expiration=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert error_code(tiny, "emr", **temp, token=TOKEN) == ("ExpiredTokenException", 400)
    assert error_code(tiny, "iam", **temp, token=TOKEN) == ("ExpiredToken", 403)
    assert error_code(tiny, "ec2", **temp, token=TOKEN) == ("RequestExpired", 400)
    tiny.clock_offset = timedelta(minutes=10)
    assert error_code(tiny, "emr") == ("InvalidSignatureException", 400)
    assert error_code(tiny, "iam") == ("SignatureDoesNotMatch", 403)
    assert error_code(tiny, "ec2") == ("RequestExpired", 400)


def run_cli(tiny: TinyServer, tmp_path: Path, secret: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": AKID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "emr",
            "list-studios",
            "--endpoint-url",
            f"http://127.0.0.1:{tiny.port}",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_e2e_aws_cli(tiny: TinyServer, tmp_path: Path) -> None:
    good = run_cli(tiny, tmp_path, SECRET)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {"Studios": []}
    bad = run_cli(tiny, tmp_path, "wrong")
    assert bad.returncode != 0
    assert "InvalidSignatureException" in bad.stderr
    assert "ListStudios" in bad.stderr
