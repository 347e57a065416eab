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
from pathlib import Path

import pytest

from emustudio.iam import (
    MANAGED_POLICY_MAX_SIZE,
    AuthzRequest,
    Policy,
    PolicySet,
    deny_message,
    evaluate,
    parse_policy,
    tag_context,
)

POLICIES = Path(__file__).parent / "policies"
ACCOUNT = "000000000000"
REGION = "us-east-1"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
USER_ID = "AIDAALICEEXAMPLE"
SERVICE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/EMRStudio_Service_Role"
EDITOR = f"arn:aws:elasticmapreduce:{REGION}:{ACCOUNT}:editor/e-ABCDEFGHIJKLMNOPQRSTUVWXY"
STUDIO = f"arn:aws:elasticmapreduce:{REGION}:{ACCOUNT}:studio/es-ABCDEFGHIJKLMNOPQRSTUVWXY"
LOG_BUCKET = f"arn:aws:s3:::aws-logs-{ACCOUNT}-{REGION}"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:emr-studio-repo-AbCdEf"
TIERS = ("basic", "intermediate", "advanced")

# ---- the capability table: capability -> (tiers with "Yes", actions)
CAPABILITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "create and delete Workspaces": (
        TIERS,
        (
            "elasticmapreduce:CreateEditor",
            "elasticmapreduce:DescribeEditor",
            "elasticmapreduce:ListEditors",
            "elasticmapreduce:DeleteEditor",
        ),
    ),
    "collaboration": (
        TIERS,
        (
            "elasticmapreduce:UpdateEditor",
            "elasticmapreduce:PutWorkspaceAccess",
            "elasticmapreduce:DeleteWorkspaceAccess",
            "elasticmapreduce:ListWorkspaceAccessIdentities",
        ),
    ),
    "list S3 buckets, read container logs": (
        TIERS,
        ("s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject"),
    ),
    "access Workspaces": (
        TIERS,
        (
            "elasticmapreduce:DescribeEditor",
            "elasticmapreduce:ListEditors",
            "elasticmapreduce:StartEditor",
            "elasticmapreduce:StopEditor",
            "elasticmapreduce:OpenEditorInConsole",
        ),
    ),
    "attach EMR on EC2 clusters": (
        TIERS,
        (
            "elasticmapreduce:AttachEditor",
            "elasticmapreduce:DetachEditor",
            "elasticmapreduce:ListClusters",
            "elasticmapreduce:DescribeCluster",
            "elasticmapreduce:ListInstanceGroups",
            "elasticmapreduce:ListBootstrapActions",
        ),
    ),
    "attach EMR on EKS clusters": (
        TIERS,
        (
            "elasticmapreduce:AttachEditor",
            "elasticmapreduce:DetachEditor",
            "emr-containers:ListVirtualClusters",
            "emr-containers:DescribeVirtualCluster",
            "emr-containers:ListManagedEndpoints",
            "emr-containers:DescribeManagedEndpoint",
            "emr-containers:CreateAccessTokenForManagedEndpoint",
        ),
    ),
    "persistent application UIs": (
        TIERS,
        (
            "elasticmapreduce:CreatePersistentAppUI",
            "elasticmapreduce:DescribePersistentAppUI",
            "elasticmapreduce:GetPersistentAppUIPresignedURL",
            "elasticmapreduce:ListClusters",
            "elasticmapreduce:ListSteps",
            "elasticmapreduce:DescribeCluster",
            "s3:ListBucket",
            "s3:GetObject",
        ),
    ),
    "on-cluster application UIs": (TIERS, ("elasticmapreduce:GetOnClusterAppUIPresignedURL",)),
    "Spark History Server for EMR on EKS": (
        TIERS,
        (
            "elasticmapreduce:CreatePersistentAppUI",
            "elasticmapreduce:DescribePersistentAppUI",
            "elasticmapreduce:GetPersistentAppUIPresignedURL",
            "emr-containers:ListVirtualClusters",
            "emr-containers:DescribeVirtualCluster",
            "emr-containers:ListJobRuns",
            "emr-containers:DescribeJobRun",
            "s3:ListBucket",
            "s3:GetObject",
        ),
    ),
    "create and delete Git repositories": (
        TIERS,
        (
            "elasticmapreduce:CreateRepository",
            "elasticmapreduce:DeleteRepository",
            "elasticmapreduce:ListRepositories",
            "elasticmapreduce:DescribeRepository",
            "secretsmanager:CreateSecret",
            "secretsmanager:ListSecrets",
            "secretsmanager:TagResource",
        ),
    ),
    "link Git repositories": (
        TIERS,
        (
            "elasticmapreduce:LinkRepository",
            "elasticmapreduce:UnlinkRepository",
            "elasticmapreduce:ListRepositories",
            "elasticmapreduce:DescribeRepository",
        ),
    ),
    "create clusters from templates": (
        ("intermediate", "advanced"),
        (
            "servicecatalog:SearchProducts",
            "servicecatalog:DescribeProduct",
            "servicecatalog:DescribeProductView",
            "servicecatalog:DescribeProvisioningParameters",
            "servicecatalog:ProvisionProduct",
            "servicecatalog:UpdateProvisionedProduct",
            "servicecatalog:ListProvisioningArtifacts",
            "servicecatalog:DescribeRecord",
            "servicecatalog:ListLaunchPaths",
            "cloudformation:DescribeStackResources",
            "elasticmapreduce:ListClusters",
            "elasticmapreduce:DescribeCluster",
        ),
    ),
    "create clusters from a configuration": (
        ("advanced",),
        (
            "elasticmapreduce:RunJobFlow",
            "iam:PassRole",
            "elasticmapreduce:ListClusters",
            "elasticmapreduce:DescribeCluster",
        ),
    ),
    "open a Studio in IAM mode": ((), ("elasticmapreduce:CreateStudioPresignedUrl",)),
}

# ---- the EMR action catalogue (reference §3.3) plus the other services' actions around it
EMR_ACTIONS = [
    "AddInstanceFleet",
    "AddInstanceGroups",
    "AddJobFlowSteps",
    "AttachEditor",
    "CancelSteps",
    "CreateEditor",
    "CreatePersistentAppUI",
    "CreateRepository",
    "CreateSecurityConfiguration",
    "CreateStudio",
    "CreateStudioPresignedUrl",
    "CreateStudioSessionMapping",
    "DeleteEditor",
    "DeleteRepository",
    "DeleteSecurityConfiguration",
    "DeleteStudio",
    "DeleteStudioSessionMapping",
    "DetachEditor",
    "GetOnClusterAppUIPresignedURL",
    "GetPersistentAppUIPresignedURL",
    "LinkRepository",
    "ModifyCluster",
    "ModifyInstanceFleet",
    "ModifyInstanceGroups",
    "OpenEditorInConsole",
    "PutAutoScalingPolicy",
    "RemoveAutoScalingPolicy",
    "PutAutoTerminationPolicy",
    "RemoveAutoTerminationPolicy",
    "PutManagedScalingPolicy",
    "RemoveManagedScalingPolicy",
    "RunJobFlow",
    "SetTerminationProtection",
    "StartEditor",
    "StartNotebookExecution",
    "StopEditor",
    "StopNotebookExecution",
    "TerminateJobFlows",
    "UnlinkRepository",
    "UpdateEditor",
    "UpdateRepository",
    "UpdateStudio",
    "UpdateStudioSessionMapping",
    "AddTags",
    "RemoveTags",
    "DeleteWorkspaceAccess",
    "PutBlockPublicAccessConfiguration",
    "PutWorkspaceAccess",
    "DescribeCluster",
    "DescribeEditor",
    "DescribeJobFlows",
    "DescribeNotebookExecution",
    "DescribePersistentAppUI",
    "DescribeReleaseLabel",
    "DescribeRepository",
    "DescribeSecurityConfiguration",
    "DescribeStep",
    "DescribeStudio",
    "GetAutoTerminationPolicy",
    "GetBlockPublicAccessConfiguration",
    "GetManagedScalingPolicy",
    "GetStudioSessionMapping",
    "ListBootstrapActions",
    "ListInstanceFleets",
    "ListInstanceGroups",
    "ListInstances",
    "ListSteps",
    "ListClusters",
    "ListEditors",
    "ListNotebookExecutions",
    "ListReleaseLabels",
    "ListRepositories",
    "ListSecurityConfigurations",
    "ListStudioSessionMappings",
    "ListStudios",
    "ListWorkspaceAccessIdentities",
    "ViewEventsFromAllClustersInConsole",
]
OTHER_ACTIONS = {
    action
    for _, actions in CAPABILITIES.values()
    for action in actions
    if not action.startswith("elasticmapreduce:")
} | {
    "s3:PutObject",
    "s3:DeleteObject",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DeleteSecret",
    "iam:CreateRole",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:RunInstances",
    "emr-containers:StartJobRun",
    "emr-containers:DeleteVirtualCluster",
    "servicecatalog:TerminateProvisionedProduct",
    "cloudformation:CreateStack",
    "sts:AssumeRole",
}
UNIVERSE = sorted({f"elasticmapreduce:{a}" for a in EMR_ACTIONS} | OTHER_ACTIONS)

EMR_BASIC_ACTIONS = {
    f"elasticmapreduce:{a}"
    for a in [
        "CreateEditor",
        "DescribeEditor",
        "ListEditors",
        "StartEditor",
        "StopEditor",
        "DeleteEditor",
        "OpenEditorInConsole",
        "AttachEditor",
        "DetachEditor",
        "CreateRepository",
        "DescribeRepository",
        "DeleteRepository",
        "ListRepositories",
        "LinkRepository",
        "UnlinkRepository",
        "DescribeCluster",
        "ListInstanceGroups",
        "ListBootstrapActions",
        "ListClusters",
        "ListSteps",
        "CreatePersistentAppUI",
        "DescribePersistentAppUI",
        "GetPersistentAppUIPresignedURL",
        "GetOnClusterAppUIPresignedURL",
        "UpdateEditor",
        "PutWorkspaceAccess",
        "DeleteWorkspaceAccess",
        "ListWorkspaceAccessIdentities",
    ]
}
COMMON = EMR_BASIC_ACTIONS | {
    "emr-containers:DescribeVirtualCluster",
    "emr-containers:ListVirtualClusters",
    "emr-containers:DescribeManagedEndpoint",
    "emr-containers:ListManagedEndpoints",
    "emr-containers:CreateAccessTokenForManagedEndpoint",
    "emr-containers:DescribeJobRun",
    "emr-containers:ListJobRuns",
    "secretsmanager:ListSecrets",
    "secretsmanager:CreateSecret",
    "secretsmanager:TagResource",
    "iam:PassRole",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:GetObject",
}
TEMPLATES = set(CAPABILITIES["create clusters from templates"][1]) - EMR_BASIC_ACTIONS
EXPECTED = {
    "basic": COMMON | {"ec2:CreateSecurityGroup", "ec2:CreateTags"},
    "intermediate": COMMON | TEMPLATES,
    "advanced": COMMON | TEMPLATES | {"elasticmapreduce:RunJobFlow"},
}

# What every request carries: the caller owns the Workspace, and tags the things it creates.
FRIENDLY = {
    "aws:userid": USER_ID,
    "aws:username": "alice",
    "ec2:CreateAction": "CreateSecurityGroup",
    **tag_context(
        service="elasticmapreduce",
        resource_tags={
            "creatorUserId": USER_ID,
            "for-use-with-amazon-emr-managed-policies": "true",
        },
        request_tags={"for-use-with-amazon-emr-managed-policies": "true"},
    ),
}


def resource_for(action: str) -> str:
    """The resource each action is authorized against (``*`` where it has none)."""
    if action == "s3:GetObject" or action.startswith(("s3:Put", "s3:Delete")):
        return (
            f"{LOG_BUCKET}/elasticmapreduce/j-1ABCDEFGHIJKL/node/i-1/applications/spark/stderr.gz"
        )
    if action == "s3:ListAllMyBuckets":
        return "arn:aws:s3:::*"
    if action.startswith("s3:"):
        return LOG_BUCKET
    if action.startswith("secretsmanager:") and action != "secretsmanager:ListSecrets":
        return SECRET
    if action == "iam:PassRole":
        return SERVICE_ROLE
    if action == "ec2:CreateSecurityGroup":
        return f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1"
    if action == "ec2:CreateTags":
        return f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1"
    if (
        action.startswith("elasticmapreduce:") and "Editor" in action
    ) or "WorkspaceAccess" in action:
        return EDITOR
    return "*"


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
