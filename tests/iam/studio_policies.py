"""The EMR Studio example user policies' expectations: the capability table of the EMR Management
Guide's "Configure EMR Studio user permissions" per tier, the universe of actions checked, and
the resource each action is authorized against. Shared by tests/iam/test_emr_studio_policies.py
(the policy engine alone) and tests/authz/test_studio_user_policies.py (through the gateway).
"""

from __future__ import annotations

from pathlib import Path

from emustudio.iam import tag_context

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
