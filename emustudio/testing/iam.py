"""IAM helpers of the project's own tests and benchmarks: policy statements, roles with a trust
policy, and IAM users with console passwords, made as root through boto3."""

from __future__ import annotations

import json
import secrets
from typing import Any

from emustudio.testing.gateway import GatewayProcess

__all__ = [
    "ACCOUNT",
    "EMR_SERVICE",
    "PASSWORD",
    "Users",
    "allow",
    "create_role",
    "deny",
    "editor_arn",
    "identity_store_of",
    "studio_arn",
]

ACCOUNT = "000000000000"
PASSWORD = "Correct-Horse-9-Battery"
EMR_SERVICE = {"Service": "elasticmapreduce.amazonaws.com"}


def studio_arn(studio_id: str) -> str:
    return f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studio_id}"


def editor_arn(editor_id: str) -> str:
    return f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:editor/{editor_id}"


class Users:
    """IAM users with console passwords and inline policies, made as root through boto3."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.iam = gateway.client("iam")

    def create(self, *statements: dict[str, Any], password: str = PASSWORD) -> str:
        name = "web-" + secrets.token_hex(4)
        self.iam.create_user(UserName=name)
        self.iam.create_login_profile(UserName=name, Password=password)
        if statements:
            self.iam.put_user_policy(
                UserName=name,
                PolicyName="studio",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
            )
        return name


def allow(
    actions: str | list[str], resource: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def create_role(
    iam: Any,
    name: str,
    principal: dict[str, str],
    actions: str | list[str],
    *statements: dict[str, Any],
    condition: dict[str, Any] | None = None,
) -> str:
    """A role ``principal`` may assume with ``actions``, with ``statements`` as its inline
    policy; its ARN."""
    trust: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions}
    if condition is not None:
        trust["Condition"] = condition
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
    )["Role"]["Arn"]
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="permissions",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )
    return str(arn)


def deny(actions: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resource}


def identity_store_of(gateway: GatewayProcess) -> str:
    """The Identity Store of the gateway's IAM Identity Center instance, found as AWS's guide
    finds it: ``aws sso-admin list-instances``."""
    instances = gateway.client("sso-admin").list_instances()["Instances"]
    return str(instances[0]["IdentityStoreId"])
