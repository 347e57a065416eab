"""The EMR Studio example user policies (basic, intermediate, advanced) as managed policies of
real IAM users: IAM's simulator and real calls through the gateway give the documented answers."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess
from tests.iam.studio_policies import EXPECTED, TIERS, UNIVERSE, resource_for

# Every refusal provoked here must show up in CloudTrail (see conftest.py).
pytestmark = pytest.mark.usefixtures("denied_calls_are_audited")

POLICIES = Path(__file__).parents[1] / "iam" / "policies"
ACCOUNT = "000000000000"


def context_entries(user_id: str) -> list[dict[str, Any]]:
    """What the Studio's requests carry, as simulator context entries."""
    strings = {
        "aws:userid": user_id,
        "ec2:CreateAction": "CreateSecurityGroup",
        "elasticmapreduce:ResourceTag/creatorUserId": user_id,
        "aws:ResourceTag/creatorUserId": user_id,
        "aws:ResourceTag/for-use-with-amazon-emr-managed-policies": "true",
        "aws:RequestTag/for-use-with-amazon-emr-managed-policies": "true",
    }
    return [
        {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
        for k, v in strings.items()
    ]


@pytest.fixture(scope="module")
def tier_users(gateway: GatewayProcess) -> dict[str, dict[str, str]]:
    iam = gateway.client("iam")
    users = {}
    for tier in TIERS:
        arn = iam.create_policy(
            PolicyName=f"EMRStudio_{tier.title()}_User_Policy",
            PolicyDocument=(POLICIES / f"emr_studio_{tier}.json").read_text(),
        )["Policy"]["Arn"]
        name = f"{tier}-{secrets.token_hex(2)}"
        user = iam.create_user(UserName=name)["User"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        users[tier] = {
            "name": name,
            "arn": user["Arn"],
            "id": user["UserId"],
            "key": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
        }
    return users


@pytest.mark.parametrize("tier", TIERS)
def test_the_simulator_grants_each_tier_exactly_its_actions(
    gateway: GatewayProcess, tier_users: dict[str, dict[str, str]], tier: str
) -> None:
    iam = gateway.client("iam")
    user = tier_users[tier]
    granted = set()
    for action in sorted(UNIVERSE):
        result = iam.simulate_principal_policy(
            PolicySourceArn=user["arn"],
            ActionNames=[action],
            ResourceArns=[resource_for(action)],
            ContextEntries=context_entries(user["id"]),
        )["EvaluationResults"][0]
        if result["EvalDecision"] == "allowed":
            granted.add(action)
    assert granted == EXPECTED[tier]


@pytest.mark.parametrize("tier", TIERS)
def test_real_calls_follow_the_tier(
    gateway: GatewayProcess, tier_users: dict[str, dict[str, str]], tier: str
) -> None:
    user = tier_users[tier]
    emr = gateway.client(
        "emr",
        aws_access_key_id=user["key"],
        aws_secret_access_key=user["secret"],
        config=Config(retries={"max_attempts": 1}),
    )
    # Every tier may list clusters.
    assert "Clusters" in emr.list_clusters()
    # No tier may create a Studio.
    with pytest.raises(ClientError) as exc:
        emr.list_studios()
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    # Only advanced users create clusters from a configuration.
    with pytest.raises(ClientError) as exc:
        emr.run_job_flow(
            Name="spark",
            ReleaseLabel="emr-7.1.0",
            Instances={"InstanceCount": 1},
            ServiceRole="EMR_DefaultRole",
            JobFlowRole="EMR_EC2_DefaultRole",
        )
    # The advanced user is authorized, and this bare request then fails EMR's own validation.
    expected = "ValidationException" if tier == "advanced" else "AccessDeniedException"
    assert exc.value.response["Error"]["Code"] == expected


def test_the_aws_cli_simulates_the_same(
    gateway: GatewayProcess, tier_users: dict[str, dict[str, str]]
) -> None:
    user = tier_users["basic"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            user["arn"],
            "--action-names",
            "elasticmapreduce:CreateEditor",
            "elasticmapreduce:RunJobFlow",
            "--endpoint-url",
            gateway.endpoint_url,
            "--output",
            "json",
        ],
        env=gateway.cli_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    decisions = {
        r["EvalActionName"]: r["EvalDecision"] for r in json.loads(out.stdout)["EvaluationResults"]
    }
    assert decisions == {
        "elasticmapreduce:CreateEditor": "allowed",
        "elasticmapreduce:RunJobFlow": "implicitDeny",
    }
