"""Managed policies and their versions, attachments, inline policies, AWS managed policies,
document validation (a refused write changes nothing) and documents on the wire."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from emustudio.testing.gateway import ROOT_KEY, ROOT_SECRET, GatewayProcess, aws_cli
from tests.services.iam.support import ACCOUNT, allow, doc, error_of, status_of

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.fixture(scope="module")
def iam(gateway: GatewayProcess) -> Any:
    return gateway.client("iam")


def policy_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy{path}{name}"


def test_life_of_a_managed_policy(iam: Any) -> None:
    document = doc(allow("s3:GetObject", "arn:aws:s3:::bucket/*"))
    created = iam.create_policy(
        PolicyName="Reader", Path="/team/", PolicyDocument=document, Description="reads"
    )["Policy"]
    arn = policy_arn("Reader", "/team/")
    assert created["Arn"] == arn and created["PolicyId"].startswith("ANPA")
    assert (created["DefaultVersionId"], created["AttachmentCount"]) == ("v1", 0)
    assert created["IsAttachable"] is True
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="reader", PolicyDocument=document)
    assert error_of(exc) == (
        "EntityAlreadyExists",
        "A policy called reader already exists. Duplicate names are not allowed.",
    )
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["Description"] == "reads" and got["Path"] == "/team/"
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == json.loads(document)  # boto3 decodes the URL-encoded JSON
    assert version["IsDefaultVersion"] is True

    for n in range(2, 6):
        out = iam.create_policy_version(
            PolicyArn=arn, PolicyDocument=doc(allow(f"s3:Get{n}")), SetAsDefault=(n == 3)
        )["PolicyVersion"]
        assert out["VersionId"] == f"v{n}"
    with pytest.raises(ClientError) as exc:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document)
    assert error_of(exc) == (
        "LimitExceeded",
        "A managed policy can have up to 5 versions. Before you create a new version, you must"
        " delete an existing version.",
    )
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [
        ("v5", False),
        ("v4", False),
        ("v3", True),
        ("v2", False),
        ("v1", False),
    ]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    with pytest.raises(ClientError) as exc:
        iam.delete_policy_version(PolicyArn=arn, VersionId="v3")
    assert error_of(exc) == ("DeleteConflict", "Cannot delete the default version of a policy.")
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error_of(exc) == (
        "DeleteConflict",
        "This policy has more than one version. Before you delete a policy, you must delete the"
        " policy's versions. The default version is deleted with the policy.",
    )
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v5")
    for v in ("v1", "v2", "v3", "v4"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    with pytest.raises(ClientError) as exc:
        iam.get_policy_version(PolicyArn=arn, VersionId="v1")
    assert error_of(exc) == (
        "NoSuchEntity",
        f"Policy {arn} version v1 does not exist or is not attachable.",
    )
    iam.create_user(UserName="holder")
    iam.attach_user_policy(UserName="holder", PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error_of(exc) == ("DeleteConflict", "Cannot delete a policy attached to entities.")
    assert status_of(exc) == 409
    iam.detach_user_policy(UserName="holder", PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=arn)
    assert error_of(exc) == ("NoSuchEntity", f"Policy {arn} was not found.")
    assert status_of(exc) == 404


MALFORMED = [
    ("not json", "{not json", "Syntax errors in policy."),
    (
        "bad effect",
        doc({"Effect": "Permit", "Action": "s3:*", "Resource": "*"}),
        "Syntax errors in policy.",
    ),
    (
        "no action",
        doc({"Effect": "Allow", "Resource": "*"}),
        "Policy statement must contain actions.",
    ),
    (
        "unknown field",
        doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Extra": 1}),
        "Syntax errors in policy.",
    ),
    (
        "no version",
        doc(allow("s3:*"), version=None),
        "Policy document must be version 2012-10-17 or greater.",
    ),
    (
        "principal",
        doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}),
        "Policy document should not specify a principal.",
    ),
]


@pytest.mark.parametrize(("label", "document", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_documents_are_refused_and_change_nothing(
    iam: Any, label: str, document: str, message: str
) -> None:
    name = f"bad-{label.replace(' ', '-')}"
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName=name, PolicyDocument=document)
    assert error_of(exc) == ("MalformedPolicyDocument", message)
    assert status_of(exc) == 400
    local = iam.list_policies(Scope="Local")["Policies"]
    assert name not in {p["PolicyName"] for p in local}
    with pytest.raises(ClientError):
        iam.get_policy(PolicyArn=policy_arn(name))


def test_oversize_and_malformed_writes_leave_the_old_state(iam: Any) -> None:
    big = doc(allow([f"s3:Action{i:04d}" for i in range(400)]))
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="huge", PolicyDocument=big)
    assert error_of(exc) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144")
    good = doc(allow("s3:GetObject"))
    arn = iam.create_policy(PolicyName="stable", PolicyDocument=good)["Policy"]["Arn"]
    with pytest.raises(ClientError):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument="{", SetAsDefault=True)
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v1"]

    iam.create_user(UserName="inliner")
    iam.put_user_policy(UserName="inliner", PolicyName="keep", PolicyDocument=good)
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(
            UserName="inliner", PolicyName="keep", PolicyDocument=doc({"Effect": "Allow"})
        )
    assert error_of(exc)[0] == "MalformedPolicyDocument"
    kept = iam.get_user_policy(UserName="inliner", PolicyName="keep")["PolicyDocument"]
    assert kept == json.loads(good)


def test_inline_policies_of_users_groups_and_roles(iam: Any) -> None:
    document = doc(allow("ec2:Describe*"))
    iam.create_user(UserName="in-user")
    iam.create_group(GroupName="in-group")
    iam.create_role(
        RoleName="in-role",
        AssumeRolePolicyDocument=doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ),
    )
    for kind, member, name in (
        ("user", "UserName", "in-user"),
        ("group", "GroupName", "in-group"),
        ("role", "RoleName", "in-role"),
    ):
        cap = kind.capitalize()
        put = getattr(iam, f"put_{kind}_policy")
        get = getattr(iam, f"get_{kind}_policy")
        put(**{member: name, "PolicyName": "b", "PolicyDocument": document})
        put(**{member: name, "PolicyName": "a", "PolicyDocument": document})
        got = get(**{member: name, "PolicyName": "a"})
        assert (got[member], got["PolicyName"], got["PolicyDocument"]) == (
            name,
            "a",
            json.loads(document),
        )
        listed = getattr(iam, f"list_{kind}_policies")(**{member: name})
        assert listed["PolicyNames"] == ["a", "b"] and listed["IsTruncated"] is False
        getattr(iam, f"delete_{kind}_policy")(**{member: name, "PolicyName": "a"})
        with pytest.raises(ClientError) as exc:
            get(**{member: name, "PolicyName": "a"})
        assert error_of(exc) == ("NoSuchEntity", f"The {kind} policy with name a cannot be found.")
        assert cap


def test_inline_quota_is_per_user(iam: Any) -> None:
    iam.create_user(UserName="quota")
    actions = [f"s3:Act{i:03d}" for i in range(90)]  # about 1.2 KB
    iam.put_user_policy(UserName="quota", PolicyName="one", PolicyDocument=doc(allow(actions)))
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName="quota", PolicyName="two", PolicyDocument=doc(allow(actions)))
    assert error_of(exc) == (
        "LimitExceeded",
        "Maximum policy size of 2048 bytes exceeded for user quota",
    )
    # Replacing the same policy is measured without its old text.
    iam.put_user_policy(UserName="quota", PolicyName="one", PolicyDocument=doc(allow(actions)))
    assert iam.list_user_policies(UserName="quota")["PolicyNames"] == ["one"]


def test_attachments(iam: Any) -> None:
    iam.create_user(UserName="att-user")
    iam.create_group(GroupName="att-group")
    arn = iam.create_policy(PolicyName="Attached", PolicyDocument=doc(allow("s3:*")))["Policy"][
        "Arn"
    ]
    missing = policy_arn("Missing")
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName="att-user", PolicyArn=missing)
    assert error_of(exc) == (
        "NoSuchEntity",
        f"Policy {missing} does not exist or is not attachable.",
    )
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName="att-nobody", PolicyArn=arn)
    assert error_of(exc) == ("NoSuchEntity", "The user with name att-nobody cannot be found.")
    iam.attach_user_policy(UserName="att-user", PolicyArn=arn)
    iam.attach_user_policy(UserName="att-user", PolicyArn=ADMIN)
    iam.attach_group_policy(GroupName="att-group", PolicyArn=arn)
    attached = iam.list_attached_user_policies(UserName="att-user")["AttachedPolicies"]
    assert attached == [
        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN},
        {"PolicyName": "Attached", "PolicyArn": arn},
    ]
    assert iam.list_attached_group_policies(GroupName="att-group")["AttachedPolicies"] == [
        {"PolicyName": "Attached", "PolicyArn": arn}
    ]
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    assert [u["UserName"] for u in entities["PolicyUsers"]] == ["att-user"]
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == ["att-group"]
    assert entities["PolicyRoles"] == []
    only_attached = {p["PolicyName"] for p in iam.list_policies(OnlyAttached=True)["Policies"]}
    assert {"Attached", "AdministratorAccess"} <= only_attached
    local = {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}
    assert "Attached" in local and "AdministratorAccess" not in local
    aws = {p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert "AdministratorAccess" in aws and "Attached" not in aws
    assert iam.get_policy(PolicyArn=ADMIN)["Policy"]["AttachmentCount"] >= 1

    iam.detach_user_policy(UserName="att-user", PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.detach_user_policy(UserName="att-user", PolicyArn=arn)
    assert error_of(exc) == ("NoSuchEntity", f"Policy {arn} was not found.")

    for i in range(9):
        extra = iam.create_policy(PolicyName=f"Extra{i}", PolicyDocument=doc(allow("s3:*")))
        iam.attach_user_policy(UserName="att-user", PolicyArn=extra["Policy"]["Arn"])
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName="att-user", PolicyArn=arn)
    assert error_of(exc) == ("LimitExceeded", "Cannot exceed quota for PoliciesPerUser: 10")


def test_aws_managed_policies_are_read_only(iam: Any) -> None:
    policy = iam.get_policy(PolicyArn=ADMIN)["Policy"]
    assert (policy["PolicyId"], policy["DefaultVersionId"]) == ("ANPAIWMBCKSKIEE64ZLYK", "v1")
    version = iam.get_policy_version(PolicyArn=ADMIN, VersionId="v1")["PolicyVersion"]
    assert version["Document"]["Statement"] == [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=ADMIN)
    assert error_of(exc)[0] == "AccessDenied"


def test_documents_travel_url_encoded(gateway: GatewayProcess, iam: Any) -> None:
    document = doc(allow("s3:GetObject", "arn:aws:s3:::b/a key*"))
    arn = iam.create_policy(PolicyName="Encoded", PolicyDocument=document)["Policy"]["Arn"]
    body = f"Action=GetPolicyVersion&Version=2010-05-08&PolicyArn={arn}&VersionId=v1"
    request = AWSRequest(
        method="POST",
        url=gateway.endpoint_url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(BotoCredentials(ROOT_KEY, ROOT_SECRET), "iam", "us-east-1").add_auth(request)
    raw = urllib.request.Request(
        request.url, data=body.encode(), headers=dict(request.headers), method="POST"
    )
    with urllib.request.urlopen(raw, timeout=10) as response:
        xml = response.read().decode()
    assert "<Document>%7B%22Version%22%3A%20%222012-10-17%22" in xml
    assert "a%20key%2A" in xml

    out = json.loads(
        aws_cli(
            gateway, "iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v1"
        ).stdout
    )
    assert out["PolicyVersion"]["Document"] == json.loads(document)
