"""Create an IAM-mode EMR Studio with boto3, as on AWS: a VPC, a subnet in each of two
Availability Zones, the Workspace and engine security groups, then the Studio.

    python examples/boto3/create_studio.py            # prints the Studio's id and URL

Against emustudio (``emustudio up`` or ``docker compose``) at ``EMUSTUDIO_ENDPOINT``
(default http://localhost:8080) with the root credentials (test / test unless changed).
Without ``--endpoint-url`` and with real credentials, the same calls create a Studio on AWS.
"""

from __future__ import annotations

import json
import os

import boto3

ENDPOINT = os.environ.get("EMUSTUDIO_ENDPOINT", "http://localhost:8080")
session = boto3.Session(
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
)
ec2 = session.client("ec2", endpoint_url=ENDPOINT)
emr = session.client("emr", endpoint_url=ENDPOINT)
sts = session.client("sts", endpoint_url=ENDPOINT)

account = sts.get_caller_identity()["Account"]
zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]

vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnet_ids = [
    ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"][
        "SubnetId"
    ]
    for i, zone in enumerate(zones, start=1)
]
workspace_sg = ec2.create_security_group(
    GroupName="emr-studio-workspace", Description="EMR Studio Workspaces", VpcId=vpc_id
)["GroupId"]
engine_sg = ec2.create_security_group(
    GroupName="emr-studio-engine", Description="EMR Studio engine", VpcId=vpc_id
)["GroupId"]
# As the EMR Studio guide has it: Workspaces reach the engine on 18888, nothing else.
ec2.authorize_security_group_ingress(
    GroupId=engine_sg,
    IpPermissions=[
        {
            "IpProtocol": "tcp",
            "FromPort": 18888,
            "ToPort": 18888,
            "UserIdGroupPairs": [{"GroupId": workspace_sg}],
        }
    ],
)

studio = emr.create_studio(
    Name="analytics",
    Description="Created by examples/boto3/create_studio.py",
    AuthMode="IAM",
    VpcId=vpc_id,
    SubnetIds=subnet_ids,
    ServiceRole=f"arn:aws:iam::{account}:role/EMRStudio_Service_Role",
    WorkspaceSecurityGroupId=workspace_sg,
    EngineSecurityGroupId=engine_sg,
    DefaultS3Location="s3://emustudio/analytics",
    Tags=[{"Key": "team", "Value": "data"}],
)
described = emr.describe_studio(StudioId=studio["StudioId"])["Studio"]
print(
    json.dumps(
        {
            "StudioId": described["StudioId"],
            "Url": described["Url"],
            "VpcId": vpc_id,
            "SubnetIds": subnet_ids,
        },
        indent=2,
    )
)
