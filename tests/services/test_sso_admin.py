"""IAM Identity Center's admin API: the instance that names the Identity Store, and the
applications and assignments SSO-mode Studios imply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli
from emustudio.testing.iam import identity_store_of
from emustudio.testing.vpc import StudioNetwork, studio_args

USER_ROLE = "arn:aws:iam::000000000000:role/EMRStudio_User_Role"
POLICY = "arn:aws:iam::000000000000:policy/EMRStudio_Basic"


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    """A gateway of its own: it reads the account's whole Identity Store and applications."""
    return {}


@pytest.fixture(scope="module")
def sso(gateway: GatewayProcess) -> Any:
    return gateway.client("sso-admin")


def test_list_instances_names_the_identity_store(gateway: GatewayProcess, sso: Any) -> None:
    listed = json.loads(aws_cli(gateway, "sso-admin", "list-instances").stdout)["Instances"]
    assert len(listed) == 1
    instance = listed[0]
    assert instance["InstanceArn"].startswith("arn:aws:sso:::instance/ssoins-")
    assert instance["IdentityStoreId"].startswith("d-")
    assert instance["OwnerAccountId"] == "000000000000"
    # The store it names is the one the Identity Store API answers for.
    users = gateway.client("identitystore").list_users(IdentityStoreId=instance["IdentityStoreId"])
    assert users["Users"] == []
    described = sso.describe_instance(InstanceArn=instance["InstanceArn"])
    assert described["IdentityStoreId"] == instance["IdentityStoreId"]
    assert described["Status"] == "ACTIVE"
    with pytest.raises(ClientError) as info:
        sso.describe_instance(InstanceArn="arn:aws:sso:::instance/ssoins-0000000000000000")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_sso_studio_is_an_application_with_its_mappings_assigned(
    gateway: GatewayProcess, sso: Any, emr: Any, network: StudioNetwork
) -> None:
    instance_arn = sso.list_instances()["Instances"][0]["InstanceArn"]
    with pytest.raises(ClientError) as info:
        emr.create_studio(
            **studio_args(
                network,
                Name="wrong-instance",
                AuthMode="SSO",
                UserRole=USER_ROLE,
                IdcInstanceArn="arn:aws:sso:::instance/ssoins-1111111111111111",
            )
        )
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    studio_id = emr.create_studio(
        **studio_args(
            network,
            Name="sso-studio",
            AuthMode="SSO",
            UserRole=USER_ROLE,
            IdcInstanceArn=instance_arn,
            IdcUserAssignment="REQUIRED",
        )
    )["StudioId"]
    apps = sso.list_applications(InstanceArn=instance_arn)["Applications"]
    assert [a["Name"] for a in apps] == ["sso-studio"]
    app_arn = apps[0]["ApplicationArn"]
    assert sso.describe_application(ApplicationArn=app_arn)["Status"] == "ENABLED"
    assert sso.list_application_assignments(ApplicationArn=app_arn)["ApplicationAssignments"] == []
    user_id = gateway.client("identitystore").create_user(
        IdentityStoreId=identity_store_of(gateway),
        UserName="ana",
        DisplayName="Ana",
        Name={"GivenName": "Ana", "FamilyName": "Lyst"},
    )["UserId"]
    emr.create_studio_session_mapping(
        StudioId=studio_id, IdentityType="USER", IdentityId=user_id, SessionPolicyArn=POLICY
    )
    assigned = sso.list_application_assignments(ApplicationArn=app_arn)["ApplicationAssignments"]
    assert assigned == [
        {"ApplicationArn": app_arn, "PrincipalId": user_id, "PrincipalType": "USER"}
    ]
    emr.delete_studio(StudioId=studio_id)
    assert sso.list_applications(InstanceArn=instance_arn)["Applications"] == []
