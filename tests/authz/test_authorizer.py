"""Access control as an identity engineer checks it: real IAM users, real policies, real calls.

Every call here goes through the gateway's pipeline with the user's own access key, and the
answer is what AWS would give: allowed, or the service's refusal naming the user, the action,
the resource and why.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args

# Every refusal provoked here must show up in CloudTrail (see conftest.py).
pytestmark = pytest.mark.usefixtures("denied_calls_are_audited")

POLICIES = Path(__file__).parents[1] / "iam" / "policies"
ACCOUNT = "000000000000"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


class Users:
    """Creates IAM users with policies and hands out clients signed with their keys."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.iam = gateway.client("iam")

    def create(
        self, policy: dict[str, Any] | None = None, *, tags: dict[str, str] | None = None
    ) -> tuple[str, dict[str, str]]:
        name = "user-" + secrets.token_hex(3)
        self.iam.create_user(
            UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        )
        if policy is not None:
            self.iam.put_user_policy(
                UserName=name, PolicyName="inline", PolicyDocument=json.dumps(policy)
            )
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        return name, {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }

    def client(self, service: str, creds: dict[str, str]) -> Any:
        return self.gateway.client(service, **creds)


@pytest.fixture(scope="module")
def users(gateway: GatewayProcess) -> Users:
    return Users(gateway)


@pytest.fixture(scope="module")
def net(ec2: Any) -> StudioNetwork:
    return make_studio_network(ec2, subnets=2)


@pytest.fixture(scope="module")
def studios(emr: Any, net: StudioNetwork) -> Iterator[dict[str, str]]:
    made = {
        team: emr.create_studio(
            **studio_args(net, Name=f"{team}-studio", Tags=[{"Key": "team", "Value": team}])
        )["StudioId"]
        for team in ("data", "ml")
    }
    yield made


def allow(actions: list[str], resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource, **extra}],
    }


def test_a_user_with_no_policy_is_refused_with_aws_message(
    users: Users, studios: dict[str, str]
) -> None:
    name, creds = users.create()
    emr = users.client("emr", creds)
    studio_arn = f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studios['data']}"
    with pytest.raises(ClientError) as exc:
        emr.describe_studio(StudioId=studios["data"])
    assert error_of(exc) == (
        "AccessDeniedException",
        f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized to perform:"
        f" elasticmapreduce:DescribeStudio on resource: {studio_arn} because no identity-based"
        " policy allows the elasticmapreduce:DescribeStudio action",
    )
    # GetCallerIdentity is never refused.
    assert users.client("sts", creds).get_caller_identity()["Arn"].endswith(f":user/{name}")


def test_ec2_refuses_in_its_own_words(users: Users) -> None:
    _, creds = users.create(allow(["ec2:DescribeVpcs"]))
    ec2 = users.client("ec2", creds)
    assert ec2.describe_vpcs()["Vpcs"]
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc(CidrBlock="10.77.0.0/16")
    code, message = error_of(exc)
    assert code == "UnauthorizedOperation"
    assert message.startswith("You are not authorized to perform this operation. User: ")
    assert "ec2:CreateVpc" in message


def test_abac_a_user_opens_only_studios_of_their_team(
    users: Users, studios: dict[str, str]
) -> None:
    policy = allow(
        ["elasticmapreduce:DescribeStudio"],
        f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/*",
        Condition={
            "StringEquals": {"elasticmapreduce:ResourceTag/team": "${aws:PrincipalTag/team}"}
        },
    )
    _, creds = users.create(policy, tags={"team": "data"})
    emr = users.client("emr", creds)
    assert emr.describe_studio(StudioId=studios["data"])["Studio"]["Name"] == "data-studio"
    with pytest.raises(ClientError) as exc:
        emr.describe_studio(StudioId=studios["ml"])
    assert error_of(exc)[0] == "AccessDeniedException"


def test_an_explicit_deny_beats_any_allow(users: Users, studios: dict[str, str]) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "elasticmapreduce:*", "Resource": "*"},
            {
                "Sid": "NoMl",
                "Effect": "Deny",
                "Action": "elasticmapreduce:DescribeStudio",
                "Resource": f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studios['ml']}",
            },
        ],
    }
    _, creds = users.create(policy)
    emr = users.client("emr", creds)
    assert emr.describe_studio(StudioId=studios["data"])
    with pytest.raises(ClientError) as exc:
        emr.describe_studio(StudioId=studios["ml"])
    code, message = error_of(exc)
    assert code == "AccessDeniedException"
    assert message.endswith("with an explicit deny in an identity-based policy")


def test_creating_a_studio_needs_pass_role(users: Users, net: StudioNetwork) -> None:
    _, creds = users.create(allow(["elasticmapreduce:CreateStudio"]))
    emr = users.client("emr", creds)
    with pytest.raises(ClientError) as exc:
        emr.create_studio(**studio_args(net))
    code, message = error_of(exc)
    assert code == "AccessDeniedException"
    assert (
        "iam:PassRole on resource: arn:aws:iam::000000000000:role/EMRStudio_Service_Role" in message
    )
    _, creds = users.create(
        allow(["elasticmapreduce:CreateStudio", "elasticmapreduce:DeleteStudio", "iam:PassRole"])
    )
    emr = users.client("emr", creds)
    studio_id = emr.create_studio(**studio_args(net))["StudioId"]
    emr.delete_studio(StudioId=studio_id)


def test_request_tags_condition_on_create(users: Users, net: StudioNetwork) -> None:
    policy = allow(
        ["elasticmapreduce:CreateStudio", "iam:PassRole", "elasticmapreduce:DeleteStudio"],
        Condition={"StringEqualsIfExists": {"aws:RequestTag/team": "data"}},
    )
    _, creds = users.create(policy)
    emr = users.client("emr", creds)
    with pytest.raises(ClientError):
        emr.create_studio(**studio_args(net, Tags=[{"Key": "team", "Value": "ml"}]))
    studio_id = emr.create_studio(**studio_args(net, Tags=[{"Key": "team", "Value": "data"}]))[
        "StudioId"
    ]
    emr.delete_studio(StudioId=studio_id)


def test_a_session_policy_narrows_an_assumed_role(
    gateway: GatewayProcess, users: Users, studios: dict[str, str]
) -> None:
    iam = gateway.client("iam")
    role = "studio-admin-" + secrets.token_hex(3)
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=role,
        PolicyName="all-emr",
        PolicyDocument=json.dumps(allow(["elasticmapreduce:*"])),
    )
    _, creds = users.create(allow(["sts:AssumeRole"], f"arn:aws:iam::{ACCOUNT}:role/{role}"))
    sts = users.client("sts", creds)
    narrowed = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
        RoleSessionName="narrow",
        Policy=json.dumps(allow(["elasticmapreduce:ListStudios"])),
    )["Credentials"]
    emr = gateway.client(
        "emr",
        aws_access_key_id=narrowed["AccessKeyId"],
        aws_secret_access_key=narrowed["SecretAccessKey"],
        aws_session_token=narrowed["SessionToken"],
    )
    assert emr.list_studios()["Studios"]
    with pytest.raises(ClientError) as exc:
        emr.describe_studio(StudioId=studios["data"])
    code, message = error_of(exc)
    assert code == "AccessDeniedException"
    assert f"assumed-role/{role}/narrow" in message
    assert message.endswith(
        "because no session policy allows the elasticmapreduce:DescribeStudio action"
    )


def test_simulate_principal_policy_agrees_with_real_calls(
    gateway: GatewayProcess, users: Users, studios: dict[str, str]
) -> None:
    policy = allow(
        ["elasticmapreduce:DescribeStudio", "elasticmapreduce:ListStudios"],
        f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studios['data']}",
    )
    name, creds = users.create(policy)
    emr = users.client("emr", creds)
    iam = gateway.client("iam")
    for studio_id in studios.values():
        arn = f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studio_id}"
        simulated = iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/{name}",
            ActionNames=["elasticmapreduce:DescribeStudio"],
            ResourceArns=[arn],
        )["EvaluationResults"][0]["EvalDecision"]
        try:
            emr.describe_studio(StudioId=studio_id)
            real = "allowed"
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDeniedException"
            real = "implicitDeny"
        assert simulated == real, studio_id
