"""Policies AWS documents for its services' roles, as data (pure: no I/O, no other room).

``studio_service_policy``: the EMR Studio guide's service-role policy ("Create an EMR Studio
service role"). EMR Studio, acting as the role, reads clusters, makes network interfaces tagged
``for-use-with-amazon-emr-managed-policies=true`` in subnets and security groups that carry the
same tag, manages those interfaces and the EMR-tagged groups, reads EC2, Git secrets tagged for
EMR, the identities of collaborators, and the Workspaces' S3 location.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EMR_SERVICE", "EMR_TAG", "STUDIO_SERVICE_TRUST", "studio_service_policy"]

EMR_SERVICE = "elasticmapreduce.amazonaws.com"
EMR_TAG = "for-use-with-amazon-emr-managed-policies"
_TAGGED = {"StringEquals": {f"aws:ResourceTag/{EMR_TAG}": "true"}}
_REQUEST_TAGGED = {"StringEquals": {f"aws:RequestTag/{EMR_TAG}": "true"}}

STUDIO_SERVICE_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": EMR_SERVICE},
            "Action": "sts:AssumeRole",
        }
    ],
}


def studio_service_policy(*, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The guide's service-role policy; ``without`` leaves out the statements of those Sids
    (a test of a role that misses a permission)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "AllowEMRReadOnlyActions",
         "Action": ["elasticmapreduce:ListInstances", "elasticmapreduce:DescribeCluster",
                    "elasticmapreduce:ListSteps"],
         "Resource": "*"},
        {"Sid": "AllowEC2ENIActionsWithEMRTags",
         "Action": ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"],
         "Resource": ["arn:aws:ec2:*:*:network-interface/*"], "Condition": _TAGGED},
        {"Sid": "AllowEC2ENIAttributeAction",
         "Action": ["ec2:ModifyNetworkInterfaceAttribute"],
         "Resource": ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:network-interface/*",
                      "arn:aws:ec2:*:*:security-group/*"]},
        {"Sid": "AllowEC2SecurityGroupActionsWithEMRTags",
         "Action": ["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteNetworkInterfacePermission"],
         "Resource": "*", "Condition": _TAGGED},
        {"Sid": "AllowDefaultEC2SecurityGroupsCreationWithEMRTags",
         "Action": ["ec2:CreateSecurityGroup"],
         "Resource": ["arn:aws:ec2:*:*:security-group/*"], "Condition": _REQUEST_TAGGED},
        {"Sid": "AllowDefaultEC2SecurityGroupsCreationInVPCWithEMRTags",
         "Action": ["ec2:CreateSecurityGroup"],
         "Resource": ["arn:aws:ec2:*:*:vpc/*"], "Condition": _TAGGED},
        {"Sid": "AllowAddingEMRTagsDuringDefaultSecurityGroupCreation",
         "Action": ["ec2:CreateTags"], "Resource": "arn:aws:ec2:*:*:security-group/*",
         "Condition": {"StringEquals": {f"aws:RequestTag/{EMR_TAG}": "true",
                                        "ec2:CreateAction": "CreateSecurityGroup"}}},
        {"Sid": "AllowEC2ENICreationWithEMRTags",
         "Action": ["ec2:CreateNetworkInterface"],
         "Resource": ["arn:aws:ec2:*:*:network-interface/*"], "Condition": _REQUEST_TAGGED},
        {"Sid": "AllowEC2ENICreationInSubnetAndSecurityGroupWithEMRTags",
         "Action": ["ec2:CreateNetworkInterface"],
         "Resource": ["arn:aws:ec2:*:*:subnet/*", "arn:aws:ec2:*:*:security-group/*"],
         "Condition": _TAGGED},
        {"Sid": "AllowAddingTagsDuringEC2ENICreation",
         "Action": ["ec2:CreateTags"], "Resource": "arn:aws:ec2:*:*:network-interface/*",
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}}},
        {"Sid": "AllowEC2ReadOnlyActions",
         "Action": ["ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeTags", "ec2:DescribeInstances", "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs"],
         "Resource": "*"},
        {"Sid": "AllowSecretsManagerReadOnlyActionsWithEMRTags",
         "Action": ["secretsmanager:GetSecretValue"],
         "Resource": "arn:aws:secretsmanager:*:*:secret:*", "Condition": _TAGGED},
        {"Sid": "AllowWorkspaceCollaboration",
         "Action": ["iam:GetUser", "iam:GetRole", "iam:ListUsers", "iam:ListRoles",
                    "sso:GetManagedApplicationInstance", "sso-directory:SearchUsers"],
         "Resource": "*"},
        {"Sid": "AllowS3ForWorkspaces",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:GetEncryptionConfiguration",
                    "s3:ListBucket", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::*"},
    ]  # fmt: skip
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", **s} for s in statements if s["Sid"] not in without],
    }
