"""A platform engineer sets up VPC pieces with boto3 and the AWS CLI; subnets are Docker networks."""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from emustudio.testing.vpc import random_block


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def network_of(docker_client: docker.DockerClient, subnet_id: str) -> Any:
    found = docker_client.networks.list(filters={"label": [f"emustudio.subnet-id={subnet_id}"]})
    return found[0] if found else None


def assert_holds(net: Any, cidr: str) -> None:
    """The network plays a subnet of ``cidr``: on that CIDR, or on the free block it was
    remapped to when another gateway on this Docker host holds it (labelled both ways)."""
    labels = net.attrs["Labels"]
    assert labels["emustudio.cidr"] == cidr
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == labels["emustudio.docker-cidr"]
    if labels["emustudio.docker-cidr"] != cidr:
        assert labels["emustudio.docker-cidr"].startswith("10.")


def test_the_default_vpc_has_one_subnet_per_zone_each_a_docker_network(
    ec2: Any, gateway: GatewayProcess, docker_client: docker.DockerClient
) -> None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["172.31.0.0/16"]
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("us-east-1a", "172.31.0.0/20"),
        ("us-east-1b", "172.31.16.0/20"),
        ("us-east-1c", "172.31.32.0/20"),
    ]
    assert all(s["DefaultForAz"] for s in subnets)
    for subnet in subnets:
        net = network_of(docker_client, subnet["SubnetId"])
        assert net is not None
        assert_holds(net, subnet["CidrBlock"])
        assert net.attrs["Labels"]["emustudio.vpc-id"] == vpc_id
        assert net.attrs["Labels"]["emustudio.availability-zone"] == subnet["AvailabilityZone"]
        assert net.attrs["Labels"]["emustudio.instance"] == gateway.instance_id
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    assert len(groups) == 1


def test_availability_zones_are_a_b_c(ec2: Any) -> None:
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert {z["State"] for z in zones} == {"available"}


def test_a_subnet_is_a_network_with_its_cidr_and_goes_with_it(
    ec2: Any, docker_client: docker.DockerClient
) -> None:
    cidr = random_block()
    prefix = cidr.rsplit(".", 2)[0]
    vpc = ec2.create_vpc(
        CidrBlock=cidr,
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}],
    )["Vpc"]
    assert vpc["State"] == "available" and vpc["Tags"] == [{"Key": "Name", "Value": "lab"}]
    subnet = ec2.create_subnet(
        VpcId=vpc["VpcId"], CidrBlock=f"{prefix}.8.0/24", AvailabilityZone="us-east-1b"
    )["Subnet"]
    assert subnet["AvailableIpAddressCount"] == 251
    assert subnet["SubnetArn"].endswith(f":subnet/{subnet['SubnetId']}")
    net = network_of(docker_client, subnet["SubnetId"])
    assert_holds(net, f"{prefix}.8.0/24")
    assert net.attrs["Labels"]["emustudio.availability-zone"] == "us-east-1b"
    assert net.attrs["Labels"]["emustudio.vpc-id"] == vpc["VpcId"]

    with pytest.raises(ClientError) as exc:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert error_of(exc) == (
        "DependencyViolation",
        f"The vpc '{vpc['VpcId']}' has dependencies and cannot be deleted.",
    )
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert network_of(docker_client, subnet["SubnetId"]) is None
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])
    assert error_of(exc) == (
        "InvalidVpcID.NotFound",
        f"The vpc ID '{vpc['VpcId']}' does not exist",
    )


@pytest.mark.parametrize(
    ("cidr", "code"),
    [
        ("10.0.0.0/8", "InvalidVpc.Range"),
        ("10.0.0.0/29", "InvalidVpc.Range"),
        ("not-a-cidr", "InvalidParameterValue"),
    ],
)
def test_bad_vpc_cidrs_are_refused(ec2: Any, cidr: str, code: str) -> None:
    before = len(ec2.describe_vpcs()["Vpcs"])
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc(CidrBlock=cidr)
    assert error_of(exc)[0] == code
    assert len(ec2.describe_vpcs()["Vpcs"]) == before


def test_subnet_cidr_rules(ec2: Any, docker_client: docker.DockerClient) -> None:
    cidr = random_block()
    prefix = cidr.rsplit(".", 2)[0]
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{prefix}.0.0/24")
    with pytest.raises(ClientError) as exc:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{prefix}.0.128/25")
    assert error_of(exc) == (
        "InvalidSubnet.Conflict",
        f"The CIDR '{prefix}.0.128/25' conflicts with another subnet",
    )
    with pytest.raises(ClientError) as exc:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="192.168.77.0/24")
    assert error_of(exc) == ("InvalidSubnet.Range", "The CIDR '192.168.77.0/24' is invalid.")
    with pytest.raises(ClientError) as exc:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{prefix}.1.0/24", AvailabilityZone="us-east-1z")
    assert error_of(exc)[0] == "InvalidParameterValue"
    assert "us-east-1a, us-east-1b, us-east-1c" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        ec2.create_subnet(VpcId="vpc-0000000000000dead", CidrBlock=f"{prefix}.1.0/24")
    assert error_of(exc) == (
        "InvalidVpcID.NotFound",
        "The vpc ID 'vpc-0000000000000dead' does not exist",
    )
    with pytest.raises(ClientError) as exc:
        ec2.describe_subnets(SubnetIds=["subnet-0000000000000dead"])
    assert error_of(exc) == (
        "InvalidSubnetID.NotFound",
        "The subnet ID 'subnet-0000000000000dead' does not exist",
    )
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert [s["CidrBlock"] for s in subnets] == [f"{prefix}.0.0/24"]
    # Refused requests made no networks.
    ours = docker_client.networks.list(filters={"label": [f"emustudio.vpc-id={vpc_id}"]})
    assert len(ours) == 1


def test_security_groups_and_their_rules(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock=random_block())["Vpc"]["VpcId"]
    ws = ec2.create_security_group(GroupName="ws", Description="Workspace", VpcId=vpc_id)
    engine = ec2.create_security_group(GroupName="engine", Description="Engine", VpcId=vpc_id)
    with pytest.raises(ClientError) as exc:
        ec2.create_security_group(GroupName="ws", Description="again", VpcId=vpc_id)
    assert error_of(exc) == (
        "InvalidGroup.Duplicate",
        f"The security group 'ws' already exists for VPC '{vpc_id}'",
    )
    # The rules EMR Studio documents: Workspace -> engine on TCP 18888.
    out = ec2.authorize_security_group_egress(
        GroupId=ws["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 18888,
                "ToPort": 18888,
                "UserIdGroupPairs": [{"GroupId": engine["GroupId"]}],
            }
        ],
    )
    assert out["Return"] is True
    assert out["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"] == engine["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=engine["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 18888,
                "ToPort": 18888,
                "UserIdGroupPairs": [{"GroupId": ws["GroupId"]}],
            }
        ],
    )
    with pytest.raises(ClientError) as exc:
        ec2.authorize_security_group_ingress(
            GroupId=engine["GroupId"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 18888,
                    "ToPort": 18888,
                    "UserIdGroupPairs": [{"GroupId": ws["GroupId"]}],
                }
            ],
        )
    assert error_of(exc)[0] == "InvalidPermission.Duplicate"
    group = ec2.describe_security_groups(GroupIds=[engine["GroupId"]])["SecurityGroups"][0]
    assert group["IpPermissions"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 18888,
            "ToPort": 18888,
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": ws["GroupId"], "UserId": "000000000000"}],
        }
    ]
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=ws["GroupId"])
    assert error_of(exc) == (
        "DependencyViolation",
        f"resource {ws['GroupId']} has a dependent object",
    )
    ec2.revoke_security_group_ingress(
        GroupId=engine["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 18888,
                "ToPort": 18888,
                "UserIdGroupPairs": [{"GroupId": ws["GroupId"]}],
            }
        ],
    )
    with pytest.raises(ClientError) as exc:
        ec2.revoke_security_group_ingress(
            GroupId=engine["GroupId"], IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0"
        )
    assert error_of(exc)[0] == "InvalidPermission.NotFound"
    with pytest.raises(ClientError) as exc:  # the Workspace group's egress still names it
        ec2.delete_security_group(GroupId=engine["GroupId"])
    assert error_of(exc)[0] == "DependencyViolation"
    rule_id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    ec2.revoke_security_group_egress(GroupId=ws["GroupId"], SecurityGroupRuleIds=[rule_id])
    ec2.delete_security_group(GroupId=engine["GroupId"])
    default = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"][0]
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert error_of(exc)[0] == "CannotDelete"
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupIds=["sg-0000000000000dead"])
    assert error_of(exc) == (
        "InvalidGroup.NotFound",
        "The security group 'sg-0000000000000dead' does not exist",
    )


def test_tags_with_filters(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock=random_block())["Vpc"]["VpcId"]
    ec2.create_tags(
        Resources=[vpc_id], Tags=[{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "dev"}]
    )
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:team", "Values": ["da*"]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [vpc_id]
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["Tags"]
    assert sorted((t["Key"], t["Value"], t["ResourceType"]) for t in tags) == [
        ("env", "dev", "vpc"),
        ("team", "data", "vpc"),
    ]
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "env", "Value": "prod"}])  # value differs
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "team"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("env", "dev")]
    with pytest.raises(ClientError) as exc:
        ec2.create_tags(Resources=["vpc-0000000000000dead"], Tags=[{"Key": "a", "Value": "b"}])
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs(Filters=[{"Name": "colour", "Values": ["blue"]}])
    assert error_of(exc) == ("InvalidParameterValue", "The filter 'colour' is invalid")


def test_describe_pages_with_next_token(ec2: Any) -> None:
    seen: list[str] = []
    for page in ec2.get_paginator("describe_subnets").paginate(PaginationConfig={"PageSize": 5}):
        seen.extend(s["SubnetId"] for s in page["Subnets"])
    assert len(seen) == len(set(seen)) == len(ec2.describe_subnets()["Subnets"])


def test_the_aws_cli_builds_a_vpc(
    gateway: GatewayProcess, docker_client: docker.DockerClient
) -> None:
    cidr = random_block()
    prefix = cidr.rsplit(".", 2)[0]
    vpc = json.loads(aws_cli(gateway, "ec2", "create-vpc", "--cidr-block", cidr).stdout)["Vpc"]
    subnet = json.loads(
        aws_cli(
            gateway,
            "ec2",
            "create-subnet",
            "--vpc-id",
            vpc["VpcId"],
            "--cidr-block",
            f"{prefix}.3.0/24",
            "--availability-zone",
            "us-east-1c",
        ).stdout
    )["Subnet"]
    listed = json.loads(
        aws_cli(
            gateway, "ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc['VpcId']}"
        ).stdout
    )["Subnets"]
    assert [s["SubnetId"] for s in listed] == [subnet["SubnetId"]]
    assert network_of(docker_client, subnet["SubnetId"]) is not None
    failed = aws_cli(gateway, "ec2", "delete-vpc", "--vpc-id", vpc["VpcId"], check=False)
    assert failed.returncode != 0
    assert "DependencyViolation" in failed.stderr


def test_dry_run_answers_what_the_policy_decides(ec2: Any, emu_iam_user: Any, network: Any) -> None:
    """DryRun checks the permission and makes nothing: DryRunOperation when allowed,
    UnauthorizedOperation when not (EMR Studio's service-role check at attach asks this way)."""
    tagged = {"Condition": {"StringEquals": {
        "aws:ResourceTag/for-use-with-amazon-emr-managed-policies": "true"}}}  # fmt: skip
    user = emu_iam_user(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ec2:CreateNetworkInterface",
                    "Resource": "arn:aws:ec2:*:*:network-interface/*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["ec2:CreateNetworkInterface", "ec2:CreateVpc"],
                    "Resource": ["arn:aws:ec2:*:*:subnet/*", "arn:aws:ec2:*:*:security-group/*"],
                    **tagged,
                },
            ],
        }
    ).client("ec2")
    args = {"SubnetId": network.subnet_ids[0], "Groups": [network.engine_sg], "DryRun": True}
    for client in (ec2, user):
        with pytest.raises(ClientError) as exc:
            client.create_network_interface(**args)
        assert error_of(exc) == (
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
    untagged = ec2.create_security_group(
        GroupName="untagged", Description="no EMR tag", VpcId=network.vpc_id
    )["GroupId"]
    with pytest.raises(ClientError) as exc:
        user.create_network_interface(**(args | {"Groups": [untagged]}))
    code, message = error_of(exc)
    assert code == "UnauthorizedOperation"
    assert (
        f"ec2:CreateNetworkInterface on resource: arn:aws:ec2:us-east-1:000000000000:security-group/{untagged}"
        in message
    )
    with pytest.raises(ClientError) as exc:
        user.create_vpc(CidrBlock=random_block(), DryRun=True)
    assert error_of(exc)[0] == "UnauthorizedOperation"
    assert ec2.describe_security_groups(GroupIds=[untagged])["SecurityGroups"]


def test_an_operation_emustudio_does_not_answer_is_not_implemented(ec2: Any) -> None:
    """The gateway keeps only its own operations' shapes in memory: another operation is still
    parsed from EC2's model and answered NotImplemented, and the served ones go on working."""
    with pytest.raises(ClientError) as exc:
        ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    assert error_of(exc)[0] == "NotImplemented"
    assert "DescribeInstances" in error_of(exc)[1]
    assert ec2.describe_vpcs()["Vpcs"]
