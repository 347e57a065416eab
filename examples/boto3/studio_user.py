"""An IAM user who may sign in to one Studio and work with its Workspaces, and nothing else.

    python examples/boto3/studio_user.py STUDIO_ID    # prints the user, password and sign-in URL

Open the URL, sign in with the user name and password: the Studio's Workspace list. The same
user's access key is refused everywhere the policy does not reach, as on AWS.
"""

from __future__ import annotations

import json
import os
import secrets
import sys

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("EMUSTUDIO_ENDPOINT", "http://localhost:8080")
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
root = boto3.Session(
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    region_name=REGION,
)
studio_id = sys.argv[1]
emr, iam = root.client("emr", endpoint_url=ENDPOINT), root.client("iam", endpoint_url=ENDPOINT)
studio = emr.describe_studio(StudioId=studio_id)["Studio"]
account = studio["StudioArn"].split(":")[4]

policy = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "SignInToThisStudio",
            "Effect": "Allow",
            "Action": [
                "elasticmapreduce:CreateStudioPresignedUrl",
                "elasticmapreduce:DescribeStudio",
            ],
            "Resource": studio["StudioArn"],
        },
        {
            "Sid": "WorkWithWorkspaces",
            "Effect": "Allow",
            "Action": [
                "elasticmapreduce:CreateEditor",
                "elasticmapreduce:DescribeEditor",
                "elasticmapreduce:ListEditors",
                "elasticmapreduce:StartEditor",
                "elasticmapreduce:StopEditor",
                "elasticmapreduce:DeleteEditor",
                "elasticmapreduce:OpenEditorInConsole",
            ],
            "Resource": "*",
        },
    ],
}
user = "analyst-" + secrets.token_hex(3)
password = "Analyst-" + secrets.token_urlsafe(9)
iam.create_user(UserName=user)
iam.create_login_profile(UserName=user, Password=password)
iam.put_user_policy(UserName=user, PolicyName="studio", PolicyDocument=json.dumps(policy))
key = iam.create_access_key(UserName=user)["AccessKey"]

as_user = boto3.Session(
    aws_access_key_id=key["AccessKeyId"],
    aws_secret_access_key=key["SecretAccessKey"],
    region_name=REGION,
).client("emr", endpoint_url=ENDPOINT)
assert as_user.describe_studio(StudioId=studio_id)["Studio"]["StudioId"] == studio_id
try:
    as_user.list_studios()
    refused = "nothing (unexpected)"
except ClientError as exc:
    refused = exc.response["Error"]["Code"]

print(
    json.dumps(
        {
            "UserName": user,
            "Password": password,
            "SignInUrl": studio["Url"],
            "ListStudiosAsThisUser": refused,
        },
        indent=2,
    )
)
