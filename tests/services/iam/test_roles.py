"""Roles and trust policies, permissions boundaries, SAML providers and the policy simulator."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from tests.services.iam.support import ACCOUNT, allow, doc, error_of, status_of, trust

EC2_TRUST = trust({"Service": "ec2.amazonaws.com"})


@pytest.fixture(scope="module")
def iam(gateway: GatewayProcess) -> Any:
    return gateway.client("iam")


def test_life_of_a_role(iam: Any, gateway: GatewayProcess) -> None:
    created = iam.create_role(
        RoleName="Worker",
        Path="/service/",
        AssumeRolePolicyDocument=EC2_TRUST,
        Description="runs things",
        MaxSessionDuration=7200,
        Tags=[{"Key": "env", "Value": "dev"}],
    )["Role"]
    assert re.fullmatch(r"AROA[A-Z0-9]{17}", created["RoleId"])
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/service/Worker"
    assert created["AssumeRolePolicyDocument"] == json.loads(EC2_TRUST)
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="worker", AssumeRolePolicyDocument=EC2_TRUST)
    assert error_of(exc) == ("EntityAlreadyExists", "Role with name worker already exists.")

    role = iam.get_role(RoleName="Worker")["Role"]
    assert (role["MaxSessionDuration"], role["Description"]) == (7200, "runs things")
    assert role["Tags"] == [{"Key": "env", "Value": "dev"}] and role["RoleLastUsed"] == {}
    assert "Worker" in {r["RoleName"] for r in iam.list_roles(PathPrefix="/service/")["Roles"]}

    iam.update_role(RoleName="Worker", Description="still runs", MaxSessionDuration=43200)
    new_trust = trust({"AWS": ACCOUNT})
    iam.update_assume_role_policy(RoleName="Worker", PolicyDocument=new_trust)
    role = iam.get_role(RoleName="Worker")["Role"]
    assert (role["Description"], role["MaxSessionDuration"]) == ("still runs", 43200)
    assert role["AssumeRolePolicyDocument"] == json.loads(new_trust)

    iam.tag_role(RoleName="Worker", Tags=[{"Key": "owner", "Value": "me"}])
    iam.untag_role(RoleName="Worker", TagKeys=["env"])
    assert iam.list_role_tags(RoleName="Worker")["Tags"] == [{"Key": "owner", "Value": "me"}]

    iam.put_role_policy(RoleName="Worker", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    iam.attach_role_policy(RoleName="Worker", PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName="Worker")
    assert error_of(exc) == ("DeleteConflict", "Cannot delete entity, must delete policies first.")
    iam.delete_role_policy(RoleName="Worker", PolicyName="p")
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName="Worker")
    assert error_of(exc) == (
        "DeleteConflict",
        "Cannot delete entity, must detach all policies first.",
    )
    iam.detach_role_policy(RoleName="Worker", PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")
    iam.delete_role(RoleName="Worker")
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName="Worker")
    assert error_of(exc) == ("NoSuchEntity", "The role with name Worker cannot be found.")
    assert status_of(exc) == 404

    out = json.loads(
        aws_cli(
            gateway,
            "iam",
            "create-role",
            "--role-name",
            "CliRole",
            "--assume-role-policy-document",
            EC2_TRUST,
        ).stdout
    )
    assert out["Role"]["AssumeRolePolicyDocument"] == json.loads(EC2_TRUST)


TRUST_ERRORS = [
    (
        "no principal",
        doc({"Effect": "Allow", "Action": "sts:AssumeRole"}),
        "MalformedPolicyDocument",
        "Missing required field Principal",
    ),
    (
        "resource",
        doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ACCOUNT},
                "Action": "sts:AssumeRole",
                "Resource": "*",
            }
        ),
        "MalformedPolicyDocument",
        "Has prohibited field Resource",
    ),
    (
        "not sts",
        trust({"AWS": ACCOUNT}, action="s3:GetObject"),
        "MalformedPolicyDocument",
        "AssumeRole policy may only specify STS AssumeRole actions.",
    ),
    (
        "unknown user",
        trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/ghost"}),
        "MalformedPolicyDocument",
        f'Invalid principal in policy: "AWS":"arn:aws:iam::{ACCOUNT}:user/ghost"',
    ),
    ("bad json", "{", "MalformedPolicyDocument", "Syntax errors in policy."),
    (
        "oversize",
        trust({"Service": [f"s{i:03d}.amazonaws.com" for i in range(120)]}),
        "LimitExceeded",
        "Cannot exceed quota for ACLSizePerRole: 2048",
    ),
]


@pytest.mark.parametrize(
    ("label", "document", "code", "message"), TRUST_ERRORS, ids=[t[0] for t in TRUST_ERRORS]
)
def test_trust_policies_are_validated(
    iam: Any, label: str, document: str, code: str, message: str
) -> None:
    name = "Bad-" + label.replace(" ", "-")
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)
    assert error_of(exc) == (code, message)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=name)
    assert error_of(exc)[0] == "NoSuchEntity"


def test_max_session_duration_range(gateway: GatewayProcess) -> None:
    unchecked = gateway.client("iam", config=Config(parameter_validation=False))
    for value in (3599, 43201):
        with pytest.raises(ClientError) as exc:
            unchecked.create_role(
                RoleName="Odd", AssumeRolePolicyDocument=EC2_TRUST, MaxSessionDuration=value
            )
        code, message = error_of(exc)
        assert code == "ValidationError" and "maxSessionDuration" in message


def test_permissions_boundaries(iam: Any) -> None:
    boundary = iam.create_policy(PolicyName="Boundary", PolicyDocument=doc(allow("s3:*")))[
        "Policy"
    ]["Arn"]
    iam.create_role(
        RoleName="Bounded", AssumeRolePolicyDocument=EC2_TRUST, PermissionsBoundary=boundary
    )
    iam.create_user(UserName="bounded-user")
    iam.put_user_permissions_boundary(UserName="bounded-user", PermissionsBoundary=boundary)
    expected = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary}
    assert iam.get_role(RoleName="Bounded")["Role"]["PermissionsBoundary"] == expected
    assert iam.get_user(UserName="bounded-user")["User"]["PermissionsBoundary"] == expected
    assert iam.get_policy(PolicyArn=boundary)["Policy"]["PermissionsBoundaryUsageCount"] == 2
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=boundary)
    assert error_of(exc)[0] == "DeleteConflict"
    iam.delete_role_permissions_boundary(RoleName="Bounded")
    iam.delete_user_permissions_boundary(UserName="bounded-user")
    assert "PermissionsBoundary" not in iam.get_role(RoleName="Bounded")["Role"]
    iam.delete_policy(PolicyArn=boundary)


METADATA = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
    ' entityID="https://idp.example.com/saml" validUntil="2040-01-01T00:00:00Z">'
    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"'
    ' Location="https://idp.example.com/sso"/>'
    "</md:IDPSSODescriptor></md:EntityDescriptor>"
    "<!-- " + "x" * 1000 + " -->"
)


def test_saml_providers(iam: Any) -> None:
    arn = iam.create_saml_provider(Name="Okta", SAMLMetadataDocument=METADATA)["SAMLProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"
    got = iam.get_saml_provider(SAMLProviderArn=arn)
    assert got["SAMLMetadataDocument"] == METADATA
    assert got["ValidUntil"].year == 2040 and got["CreateDate"]
    assert arn in {p["Arn"] for p in iam.list_saml_providers()["SAMLProviderList"]}
    not_saml = "<html>" + "y" * 1000 + "</html>"
    for bad in (not_saml, "z" * 1001, '<!DOCTYPE x [<!ENTITY a "b">]>' + METADATA):
        with pytest.raises(ClientError) as exc:
            iam.create_saml_provider(Name="Broken", SAMLMetadataDocument=bad)
        assert error_of(exc) == ("InvalidInput", "Could not parse metadata")
        with pytest.raises(ClientError) as exc:
            iam.update_saml_provider(SAMLProviderArn=arn, SAMLMetadataDocument=bad)
    assert iam.get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"] == METADATA
    with pytest.raises(ClientError) as exc:
        iam.create_saml_provider(Name="Okta", SAMLMetadataDocument=METADATA)
    assert error_of(exc)[0] == "EntityAlreadyExists"
    iam.delete_saml_provider(SAMLProviderArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_saml_provider(SAMLProviderArn=arn)
    assert error_of(exc) == ("NoSuchEntity", f"Manifest not found for arn {arn}")


def test_simulate_custom_policy(iam: Any) -> None:
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Read", "Effect": "Allow", "Action": "s3:Get*", "Resource": "*"},
                {
                    "Sid": "NoSecrets",
                    "Effect": "Deny",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::secrets/*",
                },
                {
                    "Sid": "Tagged",
                    "Effect": "Allow",
                    "Action": "ec2:StartInstances",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ops"}},
                },
            ],
        },
        indent=2,
    )
    out = iam.simulate_custom_policy(
        PolicyInputList=[document],
        ActionNames=["s3:GetObject", "s3:PutObject"],
        ResourceArns=["arn:aws:s3:::public/a", "arn:aws:s3:::secrets/b"],
    )
    decisions = {
        (r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"]
        for r in out["EvaluationResults"]
    }
    assert decisions == {
        ("s3:GetObject", "arn:aws:s3:::public/a"): "allowed",
        ("s3:GetObject", "arn:aws:s3:::secrets/b"): "explicitDeny",
        ("s3:PutObject", "arn:aws:s3:::public/a"): "implicitDeny",
        ("s3:PutObject", "arn:aws:s3:::secrets/b"): "implicitDeny",
    }
    allowed = out["EvaluationResults"][0]["MatchedStatements"]
    assert allowed == [
        {
            "SourcePolicyId": "PolicyInputList.1",
            "SourcePolicyType": "none",
            "StartPosition": {"Line": 4, "Column": 5},
            "EndPosition": {"Line": 9, "Column": 6},
        }
    ]
    tagged = iam.simulate_custom_policy(
        PolicyInputList=[document], ActionNames=["ec2:StartInstances"]
    )
    assert tagged["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    assert tagged["EvaluationResults"][0]["MissingContextValues"] == ["aws:PrincipalTag/team"]
    tagged = iam.simulate_custom_policy(
        PolicyInputList=[document],
        ActionNames=["ec2:StartInstances"],
        ContextEntries=[
            {
                "ContextKeyName": "aws:PrincipalTag/team",
                "ContextKeyValues": ["ops"],
                "ContextKeyType": "string",
            }
        ],
    )
    assert tagged["EvaluationResults"][0]["EvalDecision"] == "allowed"
    bounded = iam.simulate_custom_policy(
        PolicyInputList=[document],
        PermissionsBoundaryPolicyInputList=[doc(allow("ec2:*"))],
        ActionNames=["s3:GetObject"],
    )["EvaluationResults"][0]
    assert bounded["EvalDecision"] == "implicitDeny"
    assert bounded["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    paged = iam.simulate_custom_policy(
        PolicyInputList=[document], ActionNames=["s3:GetObject", "s3:GetBucketAcl"], MaxItems=1
    )
    assert len(paged["EvaluationResults"]) == 1 and paged["IsTruncated"] is True
    with pytest.raises(ClientError) as exc:
        iam.simulate_custom_policy(PolicyInputList=["{"], ActionNames=["s3:GetObject"])
    assert error_of(exc) == ("InvalidInput", "Syntax errors in policy.")


def test_simulate_principal_policy(iam: Any) -> None:
    iam.create_user(UserName="sim-user")
    iam.create_group(GroupName="sim-group")
    iam.add_user_to_group(GroupName="sim-group", UserName="sim-user")
    iam.put_group_policy(
        GroupName="sim-group", PolicyName="GroupRead", PolicyDocument=doc(allow("s3:GetObject"))
    )
    iam.attach_user_policy(
        UserName="sim-user", PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess"
    )
    source = f"arn:aws:iam::{ACCOUNT}:user/sim-user"
    results = iam.simulate_principal_policy(
        PolicySourceArn=source, ActionNames=["s3:GetObject", "iam:ListUsers", "iam:CreateUser"]
    )["EvaluationResults"]
    by_action = {r["EvalActionName"]: r for r in results}
    assert by_action["s3:GetObject"]["EvalDecision"] == "allowed"
    assert by_action["s3:GetObject"]["MatchedStatements"][0]["SourcePolicyId"] == "GroupRead"
    assert by_action["s3:GetObject"]["MatchedStatements"][0]["SourcePolicyType"] == "group"
    assert by_action["iam:ListUsers"]["MatchedStatements"][0]["SourcePolicyType"] == "aws-managed"
    assert by_action["iam:CreateUser"]["EvalDecision"] == "implicitDeny"
    # Extra policies join the principal's own.
    results = iam.simulate_principal_policy(
        PolicySourceArn=source,
        ActionNames=["iam:CreateUser"],
        PolicyInputList=[doc(allow("iam:CreateUser"))],
    )["EvaluationResults"]
    assert results[0]["EvalDecision"] == "allowed"
    with pytest.raises(ClientError) as exc:
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/sim-ghost", ActionNames=["s3:GetObject"]
        )
    assert error_of(exc) == ("NoSuchEntity", "The user with name sim-ghost cannot be found.")
