"""The demo's door to the console: an IAM user with a console password, an administrator.

`emustudio up` prints it beside alice's, so the console (``/console``) opens in the demo too:
``admin`` may do what the console's Studio administration asks (`ADMIN_STATEMENTS`: EMR, and
reading the VPCs, subnets, security groups, roles, policies and Identity Store users and groups
the forms pick from, passing the demo's roles to a Studio). The demo's ``StudioAdmin`` role gets
the same statements, so bob, federated, administers Studios too. Made once; a changed password
or policy stays the user's.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from emustudio.aws.errors import AwsError

CONSOLE_USER = "admin"
CONSOLE_PASSWORD = "Change-me-admin-1"
POLICY_NAME = "EmuStudioDemo"


class DemoCalls(Protocol):
    """What this uses of `emustudio.demo.Demo` (which hands itself over)."""

    account: str

    async def call(
        self, service: str, operation: str, params: dict[str, Any], *, audit: bool = True
    ) -> dict[str, Any]: ...


def admin_statements(account_id: str) -> list[dict[str, Any]]:
    role = f"arn:aws:iam::{account_id}:role"
    return [
        {"Effect": "Allow", "Action": "elasticmapreduce:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeAvailabilityZones",
                "iam:ListRoles",
                "iam:GetRole",
                "iam:ListPolicies",
                "identitystore:ListUsers",
                "identitystore:ListGroups",
                "identitystore:DescribeUser",
                "identitystore:DescribeGroup",
                "cloudtrail:LookupEvents",
            ],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": [f"{role}/EMRStudio_Service_Role", f"{role}/EMRStudio_User_Role"],
        },
    ]


async def ensure_console_admin(demo: DemoCalls) -> tuple[str, str]:
    """The console's demo user and its password (made when missing)."""
    try:
        await demo.call("iam", "GetUser", {"UserName": CONSOLE_USER}, audit=False)
        return CONSOLE_USER, CONSOLE_PASSWORD
    except AwsError as exc:
        if exc.code != "NoSuchEntity":
            raise
    await demo.call("iam", "CreateUser", {"UserName": CONSOLE_USER})
    await demo.call(
        "iam",
        "CreateLoginProfile",
        {"UserName": CONSOLE_USER, "Password": CONSOLE_PASSWORD, "PasswordResetRequired": False},
    )
    document = {"Version": "2012-10-17", "Statement": admin_statements(demo.account)}
    await demo.call(
        "iam",
        "PutUserPolicy",
        {
            "UserName": CONSOLE_USER,
            "PolicyName": POLICY_NAME,
            "PolicyDocument": json.dumps(document),
        },
    )
    return CONSOLE_USER, CONSOLE_PASSWORD
