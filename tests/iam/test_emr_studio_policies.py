"""The EMR Studio example user policies (basic, intermediate, advanced) from the EMR Management
Guide ("Configure EMR Studio user permissions"), as summarised in the project reference
(emr-studio-api.md §3.1), stored in tests/iam/policies/ with the placeholders filled in
(region us-east-1, account 000000000000, service role EMRStudio_Service_Role).

Each policy carries the common statements (AllowEMRBasicActions, the EMR on EKS actions, the
Secrets Manager, PassRole and S3 statements, and the Workspace-collaboration statement limited to
the Workspace's creator). Basic adds the Management Guide's security-group statements (Sids chosen
here: the reference gives their content, not their names); intermediate adds the cluster-template
statement; advanced adds RunJobFlow and PassRole on the default EMR roles.

The capability table of the same page says which tier may do what; every tier must allow exactly
its actions and nothing else from a universe of EMR and neighbouring actions.
"""

from __future__ import annotations

import json

import pytest

from emustudio.iam import (
    MANAGED_POLICY_MAX_SIZE,
    AuthzRequest,
    Policy,
    PolicySet,
    deny_message,
    evaluate,
    parse_policy,
)
from tests.iam.studio_policies import (
    ACCOUNT,
    ALICE,
    CAPABILITIES,
    EXPECTED,
    FRIENDLY,
    LOG_BUCKET,
    POLICIES,
    REGION,
    SERVICE_ROLE,
    STUDIO,
    TIERS,
    UNIVERSE,
    resource_for,
)


def load(tier: str) -> Policy:
    text = (POLICIES / f"emr_studio_{tier}.json").read_text()
    return parse_policy(
        text, managed=True, max_size=MANAGED_POLICY_MAX_SIZE, name=f"EMRStudio_{tier}"
    )


def allowed(policy: Policy, action: str, resource: str | None = None, **context: object) -> bool:
    request = AuthzRequest(action, resource or resource_for(action), ALICE, {**FRIENDLY, **context})
    return evaluate(request, PolicySet(identity=[policy])).allowed


@pytest.fixture(scope="module", params=TIERS)
def tier(request: pytest.FixtureRequest) -> tuple[str, Policy]:
    return request.param, load(request.param)


def test_fixtures_are_valid_managed_policies() -> None:
    for name in TIERS:
        document = json.loads((POLICIES / f"emr_studio_{name}.json").read_text())
        assert document["Version"] == "2012-10-17"
        sids = [s["Sid"] for s in document["Statement"]]
        assert "AllowPassingServiceRoleForWorkspaceCreation" in sids
        assert "AllowAddingTagsOnSecretsWithEMRStudioPrefix" in sids


def test_each_tier_allows_exactly_its_actions(tier: tuple[str, Policy]) -> None:
    name, policy = tier
    granted = {action for action in UNIVERSE if allowed(policy, action)}
    assert granted == EXPECTED[name]


def test_capability_table(tier: tuple[str, Policy]) -> None:
    name, policy = tier
    for capability, (tiers, actions) in CAPABILITIES.items():
        results = [allowed(policy, action) for action in actions]
        if name in tiers:
            assert all(results), capability
        else:
            assert not all(results), capability


def test_secret_creation_needs_tag_and_prefix(tier: tuple[str, Policy]) -> None:
    _, policy = tier
    assert allowed(policy, "secretsmanager:CreateSecret")
    untagged = {"aws:RequestTag/for-use-with-amazon-emr-managed-policies": None}
    assert not allowed(policy, "secretsmanager:CreateSecret", **untagged)
    assert not allowed(
        policy,
        "secretsmanager:CreateSecret",
        **{"aws:RequestTag/for-use-with-amazon-emr-managed-policies": "false"},
    )
    other = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod-db-AbCdEf"
    assert not allowed(policy, "secretsmanager:CreateSecret", other)
    assert not allowed(policy, "secretsmanager:TagResource", other)


def test_collaboration_only_on_own_workspaces(tier: tuple[str, Policy]) -> None:
    _, policy = tier
    someone_else = {"elasticmapreduce:ResourceTag/creatorUserId": "AIDABOBEXAMPLE"}
    untagged = {"elasticmapreduce:ResourceTag/creatorUserId": None}
    for action in CAPABILITIES["collaboration"][1]:
        assert allowed(policy, action)
        assert not allowed(policy, action, **someone_else)
        assert not allowed(policy, action, **untagged)
    # Workspace lifecycle actions are not tag-limited
    assert allowed(policy, "elasticmapreduce:StartEditor", **someone_else)


def test_pass_role_scope(tier: tuple[str, Policy]) -> None:
    name, policy = tier
    assert allowed(policy, "iam:PassRole", SERVICE_ROLE)
    assert not allowed(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")
    defaults = [
        f"arn:aws:iam::{ACCOUNT}:role/EMR_DefaultRole",
        f"arn:aws:iam::{ACCOUNT}:role/EMR_EC2_DefaultRole",
    ]
    for role in defaults:
        assert allowed(policy, "iam:PassRole", role) is (name == "advanced")


def test_s3_log_access_only(tier: tuple[str, Policy]) -> None:
    _, policy = tier
    assert allowed(policy, "s3:GetObject")
    assert not allowed(policy, "s3:GetObject", f"{LOG_BUCKET}/other-prefix/x")
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::notebooks/e-1/a.ipynb")
    assert allowed(policy, "s3:ListBucket", "arn:aws:s3:::any-bucket")
    assert not allowed(policy, "s3:PutObject", f"{LOG_BUCKET}/elasticmapreduce/x")


def test_basic_security_group_statements() -> None:
    policy = load("basic")
    vpc = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1"
    untagged_vpc = {"aws:ResourceTag/for-use-with-amazon-emr-managed-policies": None}
    assert allowed(policy, "ec2:CreateSecurityGroup", vpc)
    assert not allowed(policy, "ec2:CreateSecurityGroup", vpc, **untagged_vpc)
    group = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1"
    assert not allowed(policy, "ec2:CreateTags", group, **{"ec2:CreateAction": "RunInstances"})
    assert not allowed(policy, "ec2:CreateTags", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-1")


def test_denial_message_for_studio_presigned_url(tier: tuple[str, Policy]) -> None:
    _, policy = tier
    action = "elasticmapreduce:CreateStudioPresignedUrl"
    decision = evaluate(AuthzRequest(action, STUDIO, ALICE, FRIENDLY), PolicySet(identity=[policy]))
    assert deny_message(ALICE, action, STUDIO, decision) == (
        f"User: {ALICE} is not authorized to perform: {action} on resource: {STUDIO} "
        f"because no identity-based policy allows the {action} action"
    )


def test_adding_studio_access_by_arn() -> None:
    """Reference §3.4 pattern 1: the separate statement that assigns a user to a Studio."""
    access = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": ["elasticmapreduce:CreateStudioPresignedUrl"],
                "Resource": STUDIO,
            },
        }
    )
    policies = PolicySet(identity=[load("basic"), access])
    action = "elasticmapreduce:CreateStudioPresignedUrl"
    assert evaluate(AuthzRequest(action, STUDIO, ALICE, FRIENDLY), policies).allowed
    other = STUDIO.replace("es-A", "es-Z")
    assert not evaluate(AuthzRequest(action, other, ALICE, FRIENDLY), policies).allowed
