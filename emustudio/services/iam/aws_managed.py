"""AWS managed policies every account sees (``arn:aws:iam::aws:policy/...``).

A small built-in set, with the ids, default versions and documents AWS publishes: enough for the
usual ``AttachUserPolicy(PolicyArn=".../AdministratorAccess")``. They cannot be changed or
deleted; attaching them is recorded like any attachment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class AwsManagedPolicy:
    name: str
    id: str
    version: str
    description: str
    document: str
    created: float
    updated: float
    path: str = "/"

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::aws:policy{self.path}{self.name}"


def _when(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=4)


_POLICIES = (
    AwsManagedPolicy(
        name="AdministratorAccess",
        id="ANPAIWMBCKSKIEE64ZLYK",
        version="v1",
        description="Provides full access to AWS services and resources.",
        document=_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        created=_when("2015-02-06T18:39:46"),
        updated=_when("2015-02-06T18:39:46"),
    ),
    AwsManagedPolicy(
        name="PowerUserAccess",
        id="ANPAJYRXTHIB4FOVS3ZXS",
        version="v5",
        description=(
            "Provides full access to AWS services and resources, but does not allow management"
            " of Users and groups."
        ),
        document=_doc(
            {
                "Effect": "Allow",
                "NotAction": ["iam:*", "organizations:*", "account:*"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "iam:CreateServiceLinkedRole",
                    "iam:DeleteServiceLinkedRole",
                    "iam:ListRoles",
                    "organizations:DescribeOrganization",
                    "account:ListRegions",
                    "account:GetAccountInformation",
                ],
                "Resource": "*",
            },
        ),
        created=_when("2015-02-06T18:39:47"),
        updated=_when("2023-07-06T22:04:19"),
    ),
    AwsManagedPolicy(
        name="IAMFullAccess",
        id="ANPAI7XKCFMBPM3QQRRVQ",
        version="v2",
        description="Provides full access to IAM via the AWS Management Console.",
        document=_doc(
            {
                "Effect": "Allow",
                "Action": [
                    "iam:*",
                    "organizations:DescribeAccount",
                    "organizations:DescribeOrganization",
                    "organizations:DescribeOrganizationalUnit",
                    "organizations:DescribePolicy",
                    "organizations:ListChildren",
                    "organizations:ListParents",
                    "organizations:ListPoliciesForTarget",
                    "organizations:ListRoots",
                    "organizations:ListPolicies",
                    "organizations:ListTargetsForPolicy",
                ],
                "Resource": "*",
            }
        ),
        created=_when("2015-02-06T18:40:38"),
        updated=_when("2019-06-21T19:40:00"),
    ),
    AwsManagedPolicy(
        name="IAMReadOnlyAccess",
        id="ANPAJKSO7NDY4T57MWDSQ",
        version="v4",
        description="Provides read only access to IAM via the AWS Management Console.",
        document=_doc(
            {
                "Effect": "Allow",
                "Action": [
                    "iam:GenerateCredentialReport",
                    "iam:GenerateServiceLastAccessedDetails",
                    "iam:Get*",
                    "iam:List*",
                    "iam:SimulateCustomPolicy",
                    "iam:SimulatePrincipalPolicy",
                ],
                "Resource": "*",
            }
        ),
        created=_when("2015-02-06T18:40:39"),
        updated=_when("2018-01-25T19:11:27"),
    ),
)

AWS_MANAGED: dict[str, AwsManagedPolicy] = {p.arn: p for p in _POLICIES}
