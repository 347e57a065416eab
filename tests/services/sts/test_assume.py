"""STS as boto3 sees it: caller identity, AssumeRole's trust and identity rules, durations,
session policies and tags, role chaining, GetSessionToken, the SAML core, expiry and restarts.

Callers other than root need the policy authorizer, so these tests run against the in-process
IAM/STS gateway of ``tests/services/iam/support.py`` (wired as ``emustudio up`` wires them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from emustudio.aws.http import HttpRequest
from emustudio.aws.sigv4 import AuthFailure, AuthKind, verify
from emustudio.services.sts import StsCredentials
from emustudio.services.sts.credentials import EXPIRED_KEPT_SECONDS
from emustudio.services.sts.saml import SamlAssertion, SamlSession
from tests.services.iam.support import (
    ACCOUNT,
    InProcessGateway,
    allow,
    doc,
    error_of,
    status_of,
    trust,
    user_with_key,
)

ASSUME = allow("sts:AssumeRole")


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    gateway = InProcessGateway().start()
    try:
        yield gateway
    finally:
        gateway.close()


@pytest.fixture(scope="module")
def iam(gw: InProcessGateway) -> Any:
    return gw.client("iam")


@pytest.fixture(scope="module")
def sts(gw: InProcessGateway) -> Any:
    return gw.client("sts")


def role(iam: Any, name: str, trust_policy: str, *policies: str, **kw: Any) -> str:
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy, **kw)["Role"][
        "Arn"
    ]
    for i, policy in enumerate(policies):
        iam.put_role_policy(RoleName=name, PolicyName=f"rp{i}", PolicyDocument=policy)
    return arn


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def test_caller_identity_of_root_and_of_a_user(gw: InProcessGateway, iam: Any, sts: Any) -> None:
    me = sts.get_caller_identity()
    assert (me["Account"], me["Arn"], me["UserId"]) == (
        ACCOUNT,
        f"arn:aws:iam::{ACCOUNT}:root",
        ACCOUNT,
    )
    key = user_with_key(iam, "ident", doc(allow("iam:GetUser")))
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key["AccessKeyId"])
    assert len(key["SecretAccessKey"]) == 40
    as_user = gw.client_for("sts", key).get_caller_identity()
    user = iam.get_user(UserName="ident")["User"]
    assert (as_user["Arn"], as_user["UserId"]) == (user_arn("ident"), user["UserId"])
    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", user["UserId"])
    # GetUser without a name is the caller.
    assert gw.client_for("iam", key).get_user()["User"]["UserName"] == "ident"


def test_assume_role_by_a_trust_policy_naming_the_user(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "direct")  # no identity policy at all
    arn = role(iam, "DirectRole", trust({"AWS": user_arn("direct")}))
    out = gw.client_for("sts", key).assume_role(RoleArn=arn, RoleSessionName="s-1")
    creds, who = out["Credentials"], out["AssumedRoleUser"]
    role_id = iam.get_role(RoleName="DirectRole")["Role"]["RoleId"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", creds["AccessKeyId"])
    assert len(creds["SecretAccessKey"]) == 40 and creds["SessionToken"]
    left = creds["Expiration"] - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    assert who == {
        "AssumedRoleId": f"{role_id}:s-1",
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/DirectRole/s-1",
    }
    assert "PackedPolicySize" not in out
    me = gw.client_for("sts", creds).get_caller_identity()
    assert (me["Arn"], me["UserId"], me["Account"]) == (who["Arn"], f"{role_id}:s-1", ACCOUNT)
    assert iam.get_role(RoleName="DirectRole")["Role"]["RoleLastUsed"]["Region"] == "us-east-1"


def test_trust_naming_the_account_needs_the_callers_identity_policy(
    gw: InProcessGateway, iam: Any
) -> None:
    arn = role(iam, "AccountRole", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    bare = gw.client_for("sts", user_with_key(iam, "bare"))
    with pytest.raises(ClientError) as exc:
        bare.assume_role(RoleArn=arn, RoleSessionName="x1")
    assert error_of(exc) == (
        "AccessDenied",
        f"User: {user_arn('bare')} is not authorized to perform: sts:AssumeRole on resource: {arn}",
    )
    assert status_of(exc) == 403
    allowed = gw.client_for("sts", user_with_key(iam, "allowed", doc(allow("sts:AssumeRole", arn))))
    assert allowed.assume_role(RoleArn=arn, RoleSessionName="x2")["Credentials"]
    # An identity policy alone is not enough when the trust policy names someone else.
    iam.create_user(UserName="direct-other")
    other = role(iam, "OtherRole", trust({"AWS": user_arn("direct-other")}))
    with pytest.raises(ClientError) as exc:
        gw.client_for("sts", user_with_key(iam, "eager", doc(allow("sts:AssumeRole")))).assume_role(
            RoleArn=other, RoleSessionName="x3"
        )
    assert error_of(exc)[0] == "AccessDenied"
    assert "sts:AssumeRole on resource: " + other in error_of(exc)[1]


def test_missing_role_and_root_are_refused(gw: InProcessGateway, iam: Any, sts: Any) -> None:
    key = user_with_key(iam, "seeker", doc(ASSUME))
    missing = f"arn:aws:iam::{ACCOUNT}:role/NoSuchRole"
    with pytest.raises(ClientError) as exc:
        gw.client_for("sts", key).assume_role(RoleArn=missing, RoleSessionName="s1")
    assert error_of(exc) == (
        "AccessDenied",
        f"User: {user_arn('seeker')} is not authorized to perform: sts:AssumeRole on resource:"
        f" {missing}",
    )
    arn = role(iam, "RootTrusting", trust({"AWS": ACCOUNT}))
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    assert error_of(exc) == ("AccessDenied", "Roles may not be assumed by root accounts.")


def test_duration_limits(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "timer")
    short = role(iam, "ShortRole", trust({"AWS": user_arn("timer")}))
    long_ = role(iam, "LongRole", trust({"AWS": user_arn("timer")}), MaxSessionDuration=43200)
    client = gw.client_for("sts", key)
    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=short, RoleSessionName="s1", DurationSeconds=3601)
    assert error_of(exc) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )
    unchecked = gw.client_for("sts", key, parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        unchecked.assume_role(RoleArn=short, RoleSessionName="s1", DurationSeconds=899)
    assert error_of(exc)[0] == "ValidationError"
    assert "durationSeconds" in error_of(exc)[1]
    out = client.assume_role(RoleArn=long_, RoleSessionName="s1", DurationSeconds=43200)
    left = out["Credentials"]["Expiration"] - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)
    out = client.assume_role(RoleArn=short, RoleSessionName="s2", DurationSeconds=900)
    assert out["Credentials"]["Expiration"] - datetime.now(UTC) <= timedelta(seconds=900)
    with pytest.raises(ClientError) as exc:
        unchecked.assume_role(RoleArn=short, RoleSessionName="not valid!")
    assert error_of(exc)[0] == "ValidationError"


def test_role_chaining_is_limited_to_an_hour(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "chainer")
    first = role(iam, "ChainA", trust({"AWS": user_arn("chainer")}), doc(ASSUME))
    second = role(iam, "ChainB", trust({"AWS": first}), MaxSessionDuration=7200)
    creds = gw.client_for("sts", key).assume_role(RoleArn=first, RoleSessionName="aa")
    chained = gw.client_for("sts", creds["Credentials"])
    with pytest.raises(ClientError) as exc:
        chained.assume_role(RoleArn=second, RoleSessionName="bb", DurationSeconds=7200)
    assert error_of(exc) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by"
        " role chaining.",
    )
    out = chained.assume_role(RoleArn=second, RoleSessionName="bb")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ChainB/bb"


def test_session_policies_narrow_the_role(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "narrow")
    arn = role(
        iam,
        "WideRole",
        trust({"AWS": user_arn("narrow")}),
        doc(allow(["iam:ListUsers", "iam:ListRoles"])),
    )
    client = gw.client_for("sts", key)
    out = client.assume_role(RoleArn=arn, RoleSessionName="nn", Policy=doc(allow("iam:ListRoles")))
    assert 0 < out["PackedPolicySize"] <= 100
    session_iam = gw.client_for("iam", out["Credentials"])
    session_iam.list_roles()
    with pytest.raises(ClientError) as exc:
        session_iam.list_users()
    assert error_of(exc)[0] == "AccessDenied"
    assert "because no session policy allows the iam:ListUsers action" in error_of(exc)[1]

    managed = iam.create_policy(
        PolicyName="OnlyListUsers", PolicyDocument=doc(allow("iam:ListUsers"))
    )
    out = client.assume_role(
        RoleArn=arn, RoleSessionName="mm", PolicyArns=[{"arn": managed["Policy"]["Arn"]}]
    )
    session_iam = gw.client_for("iam", out["Credentials"])
    session_iam.list_users()
    with pytest.raises(ClientError):
        session_iam.list_roles()

    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=arn, RoleSessionName="mm", Policy='{"Statement": []}')
    assert error_of(exc) == ("MalformedPolicyDocument", "Syntax errors in policy.")
    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=arn, RoleSessionName="mm", Policy="x" * 2049)
    assert error_of(exc)[0] == "ValidationError"
    missing = f"arn:aws:iam::{ACCOUNT}:policy/Nope"
    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=arn, RoleSessionName="mm", PolicyArns=[{"arn": missing}])
    assert error_of(exc)[0] == "MalformedPolicyDocument"


def test_session_tags_need_tag_session_and_become_principal_tags(
    gw: InProcessGateway, iam: Any
) -> None:
    key = user_with_key(iam, "tagger")
    by_tag = doc(
        {
            "Effect": "Allow",
            "Action": "iam:ListRoles",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}},
        }
    )
    plain = role(iam, "NoTagRole", trust({"AWS": user_arn("tagger")}), by_tag)
    client = gw.client_for("sts", key)
    tags = [{"Key": "team", "Value": "data"}]
    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=plain, RoleSessionName="tt", Tags=tags)
    assert error_of(exc) == (
        "AccessDenied",
        f"User: {user_arn('tagger')} is not authorized to perform: sts:TagSession on resource:"
        f" {plain}",
    )
    tagging = role(
        iam,
        "TagRole",
        trust({"AWS": user_arn("tagger")}, action=["sts:AssumeRole", "sts:TagSession"]),
        by_tag,
        Tags=[{"Key": "team", "Value": "other"}],
    )
    # Without the session tag the role's own tag (team=other) applies: denied.
    untagged = client.assume_role(RoleArn=tagging, RoleSessionName="uu")
    with pytest.raises(ClientError):
        gw.client_for("iam", untagged["Credentials"]).list_roles()
    tagged = client.assume_role(
        RoleArn=tagging, RoleSessionName="tt", Tags=tags, TransitiveTagKeys=["team"]
    )
    assert tagged["PackedPolicySize"] > 0
    gw.client_for("iam", tagged["Credentials"]).list_roles()
    with pytest.raises(ClientError) as exc:
        client.assume_role(
            RoleArn=tagging, RoleSessionName="tt", Tags=tags, TransitiveTagKeys=["dept"]
        )
    assert error_of(exc)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        client.assume_role(
            RoleArn=tagging,
            RoleSessionName="tt",
            Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}],
        )
    assert error_of(exc) == (
        "InvalidParameterValue",
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    )


def test_external_id_condition(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "vendor")
    arn = role(
        iam,
        "VendorRole",
        trust(
            {"AWS": user_arn("vendor")},
            Condition={"StringEquals": {"sts:ExternalId": "s3cr3t-id"}},
        ),
    )
    client = gw.client_for("sts", key)
    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=arn, RoleSessionName="vv")
    assert error_of(exc)[0] == "AccessDenied"
    with pytest.raises(ClientError):
        client.assume_role(RoleArn=arn, RoleSessionName="vv", ExternalId="wrong-id")
    assert client.assume_role(RoleArn=arn, RoleSessionName="vv", ExternalId="s3cr3t-id")


def test_get_session_token(gw: InProcessGateway, iam: Any, sts: Any) -> None:
    key = user_with_key(iam, "tokener")
    out = gw.client_for("sts", key).get_session_token(DurationSeconds=900)["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", out["AccessKeyId"])
    session = gw.client_for("sts", out)
    assert session.get_caller_identity()["Arn"] == user_arn("tokener")
    with pytest.raises(ClientError) as exc:
        session.get_session_token()
    assert error_of(exc) == (
        "AccessDenied",
        "Cannot call GetSessionToken with session credentials",
    )
    root_session = sts.get_session_token(DurationSeconds=7200)["Credentials"]
    assert root_session["Expiration"] - datetime.now(UTC) <= timedelta(hours=1)
    assert gw.client_for("sts", root_session).get_caller_identity()["Arn"].endswith(":root")


def test_deleted_or_inactive_keys_are_refused(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "revoked")
    client = gw.client_for("sts", key)
    client.get_caller_identity()
    iam.update_access_key(UserName="revoked", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        client.get_caller_identity()
    assert error_of(exc) == (
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )
    iam.update_access_key(UserName="revoked", AccessKeyId=key["AccessKeyId"], Status="Active")
    client.get_caller_identity()
    iam.delete_access_key(UserName="revoked", AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        client.get_caller_identity()
    assert error_of(exc)[0] == "InvalidClientTokenId"


# --- the SAML core ---------------------------------------------------------------------------

METADATA = (
    '<?xml version="1.0"?>'
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
    ' entityID="https://idp.example.com/saml">'
    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
    ' Location="https://idp.example.com/sso"/>'
    "</md:IDPSSODescriptor></md:EntityDescriptor>"
)
METADATA = METADATA + "<!--" + "padding " * 120 + "-->"
AUD = "https://signin.aws.amazon.com/saml"
ATTR = "https://aws.amazon.com/SAML/Attributes/"


def test_assume_role_with_a_verified_saml_assertion(gw: InProcessGateway, iam: Any) -> None:
    provider = iam.create_saml_provider(Name="CorpIdP", SAMLMetadataDocument=METADATA)[
        "SAMLProviderArn"
    ]
    assert provider == f"arn:aws:iam::{ACCOUNT}:saml-provider/CorpIdP"
    arn = role(
        iam,
        "SamlRole",
        trust(
            {"Federated": provider},
            action=["sts:AssumeRoleWithSAML", "sts:TagSession"],
            Condition={"StringEquals": {"saml:aud": AUD}},
        ),
        doc(allow("iam:ListRoles")),
    )
    attributes = {
        ATTR + "RoleSessionName": ["alice@example.com"],
        ATTR + "PrincipalTag:team": ["data"],
        ATTR + "TransitiveTagKeys": ["team"],
        "urn:oid:0.9.2342.19200300.100.1.1": ["alice"],
    }
    # As sign-in hands them over: the AWS attributes read and checked.
    session = SamlSession(
        role_session_name="alice@example.com",
        principal_tags={"team": "data"},
        transitive_tag_keys=("team",),
    )

    def assume(audience: str = AUD, duration: int | None = None) -> Any:
        facts = SamlAssertion(
            subject="alice",
            audience=audience,
            issuer="https://idp.example.com/saml",
            attributes=attributes,
            session=session,
        )
        return gw.sts.assume_role_with_saml_assertion(
            role_arn=arn, provider_arn=provider, facts=facts, duration_seconds=duration
        )

    out = gw.run(assume())
    assert out["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/SamlRole/alice@example.com"
    )
    assert out["Audience"] == AUD and out["Subject"] == "alice"
    assert out["NameQualifier"] and out["SubjectType"] == "persistent"
    creds = {
        "AccessKeyId": out["Credentials"]["AccessKeyId"],
        "SecretAccessKey": out["Credentials"]["SecretAccessKey"],
        "SessionToken": out["Credentials"]["SessionToken"],
    }
    me = gw.client_for("sts", creds).get_caller_identity()
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"]
    gw.client_for("iam", creds).list_roles()
    principal = gw.sts.credentials.lookup(creds["AccessKeyId"])[1]  # type: ignore[index]
    assert principal.federated and dict(principal.session_tags) == {"team": "data"}

    with pytest.raises(Exception) as denied:
        gw.run(assume(audience="https://elsewhere.example.com"))
    assert str(denied.value) == "Not authorized to perform sts:AssumeRoleWithSAML"
    with pytest.raises(Exception) as denied:
        gw.run(assume(duration=7200))
    assert "MaxSessionDuration" in str(denied.value)


# --- expiry and restarts ---------------------------------------------------------------------


def signed_request(creds: dict[str, Any]) -> HttpRequest:
    request = AWSRequest(
        method="POST",
        url="http://localhost/",
        data="Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    boto = BotoCredentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    SigV4Auth(boto, "sts", "us-east-1").add_auth(request)
    return HttpRequest.build("POST", "/", dict(request.headers), request.body)


def test_expired_session_credentials_are_refused(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "expiring")
    arn = role(iam, "ExpiringRole", trust({"AWS": user_arn("expiring")}))
    creds = gw.client_for("sts", key).assume_role(
        RoleArn=arn, RoleSessionName="ee", DurationSeconds=900
    )["Credentials"]
    request = signed_request(creds)
    source = gw.sts.credentials

    def lookup(key_id: str) -> Any:
        found = source.lookup(key_id)
        return found[0] if found else None

    assert verify(request, lookup).access_key_id == creds["AccessKeyId"]
    later = creds["Expiration"] + timedelta(seconds=1)
    with pytest.raises(AuthFailure) as failure:
        verify(request, lookup, now=later, max_skew=timedelta(days=1))
    assert failure.value.kind is AuthKind.EXPIRED_TOKEN

    # A day after expiry a session is forgotten: its key is then simply unknown.
    clock = [creds["Expiration"].timestamp() + EXPIRED_KEPT_SECONDS + 1]
    copy = StsCredentials(clock=lambda: clock[0])
    copy.add(*source.lookup(creds["AccessKeyId"]))  # type: ignore[misc]
    assert copy.lookup(creds["AccessKeyId"]) is None


def test_restart_keeps_users_keys_and_unexpired_sessions() -> None:
    gw = InProcessGateway().start()
    try:
        iam = gw.client("iam")
        key = user_with_key(iam, "keeper")
        arn = role(iam, "KeptRole", trust({"AWS": user_arn("keeper")}))
        creds = gw.client_for("sts", key).assume_role(RoleArn=arn, RoleSessionName="kk")
        gw.restart()
        assert gw.client_for("sts", key).get_caller_identity()["Arn"] == user_arn("keeper")
        me = gw.client_for("sts", creds["Credentials"]).get_caller_identity()
        assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/KeptRole/kk"
    finally:
        gw.close()


def test_role_arns_with_and_without_the_path(gw: InProcessGateway, iam: Any) -> None:
    key = user_with_key(iam, "pather")
    arn = role(iam, "PathRole", trust({"AWS": user_arn("pather")}), Path="/svc/")
    assert arn == f"arn:aws:iam::{ACCOUNT}:role/svc/PathRole"
    client = gw.client_for("sts", key)
    for given in (arn, f"arn:aws:iam::{ACCOUNT}:role/PathRole"):
        assert client.assume_role(RoleArn=given, RoleSessionName="pp")["AssumedRoleUser"][
            "Arn"
        ] == (f"arn:aws:sts::{ACCOUNT}:assumed-role/PathRole/pp")
    wrong = f"arn:aws:iam::{ACCOUNT}:role/other/PathRole"
    with pytest.raises(ClientError) as exc:
        client.assume_role(RoleArn=wrong, RoleSessionName="pp")
    assert error_of(exc)[1].endswith(f"sts:AssumeRole on resource: {wrong}")
