"""Workspaces through the API, as a platform engineer scripts them: real containers on the
Studio's subnet networks, AZ moves on restart, an AZ outage, a gateway restart."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import botocore.session
import docker
import pytest
from botocore.exceptions import ClientError

from emustudio.aws.spec import DATA_PATH
from emustudio.testing.gateway import GatewayProcess, az_cli
from emustudio.testing.resources import wait_for_status
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args


def studio_client(gateway: GatewayProcess, service: str = "emr-studio") -> Any:
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    return session.create_client(
        service,
        endpoint_url=gateway.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def container_of(client: docker.DockerClient, editor_id: str) -> Any:
    found = client.containers.list(
        all=True, filters={"label": [f"emustudio.workspace-id={editor_id}"]}
    )
    return found[0] if found else None


def ready(container: Any, editor_id: str) -> bool:
    (address,) = [n["IPAddress"] for n in container.attrs["NetworkSettings"]["Networks"].values()]
    url = f"http://{address}:8888/workspaces/{editor_id}/emustudio/ready"
    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


@pytest.fixture(scope="module")
def studio(gateway: GatewayProcess) -> Iterator[tuple[str, StudioNetwork]]:
    net = make_studio_network(gateway.client("ec2"), subnets=2)  # us-east-1a and us-east-1b
    studio_id = gateway.client("emr").create_studio(**studio_args(net))["StudioId"]
    yield studio_id, net


def test_a_workspace_lives_in_the_studio_subnets(
    gateway: GatewayProcess, studio: tuple[str, StudioNetwork], docker_client: docker.DockerClient
) -> None:
    studio_id, net = studio
    editors = studio_client(gateway)
    created = editors.create_editor(
        StudioId=studio_id, Name="analysis", Tags=[{"Key": "team", "Value": "data"}]
    )
    editor_id = created["EditorId"]
    assert (
        created["EditorArn"]
        == f"arn:aws:elasticmapreduce:us-east-1:000000000000:editor/{editor_id}"
    )
    first = wait_for_status(editors, editor_id, "Ready")
    assert first["SubnetId"] in net.subnet_ids
    assert {"Key": "creatorUserId", "Value": "000000000000"} in first["Tags"]
    assert first["S3Location"] == "s3://studio-bucket/workspaces"
    assert first["Url"].endswith(f"/workspaces/{editor_id}/lab")

    container = container_of(docker_client, editor_id)
    labels = container.attrs["Config"]["Labels"]
    assert labels["emustudio.instance"] == gateway.instance_id
    assert labels["emustudio.studio-id"] == studio_id
    assert labels["emustudio.subnet-id"] == first["SubnetId"]
    networks = container.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"emustudio-{gateway.instance_id}-{first['SubnetId']}"]
    assert container.attrs["HostConfig"]["PortBindings"] in (None, {})
    assert all(not bindings for bindings in container.attrs["NetworkSettings"]["Ports"].values())
    assert container.attrs["HostConfig"]["Memory"] == 2 * 1024**3
    assert container.attrs["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert ready(container, editor_id)

    listed = editors.list_editors(StudioId=studio_id)["Editors"]
    assert [e["EditorId"] for e in listed] == [editor_id]

    # Stop, start: it comes back in the other Availability Zone.
    assert editors.stop_editor(EditorId=editor_id)["Status"] == "Stopping"
    wait_for_status(editors, editor_id, "Idle")
    assert container_of(docker_client, editor_id) is None
    with pytest.raises(ClientError) as exc:
        editors.open_editor_in_console(EditorId=editor_id)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
    editors.start_editor(EditorId=editor_id)
    second = wait_for_status(editors, editor_id, "Ready")
    assert second["AvailabilityZone"] != first["AvailabilityZone"]
    assert editors.open_editor_in_console(EditorId=editor_id)["Url"] == second["Url"]


def test_an_az_outage_and_its_end(
    gateway: GatewayProcess, studio: tuple[str, StudioNetwork], docker_client: docker.DockerClient
) -> None:
    studio_id, _ = studio
    editors, ec2 = studio_client(gateway), gateway.client("ec2")
    editor_id = editors.create_editor(StudioId=studio_id, Name="outage")["EditorId"]
    before = wait_for_status(editors, editor_id, "Ready")
    zone = before["AvailabilityZone"]

    printed = az_cli(gateway, "fail", zone)
    assert f"{zone} is impaired" in printed and editor_id in printed
    zones = {
        z["ZoneName"]: z["State"] for z in ec2.describe_availability_zones()["AvailabilityZones"]
    }
    assert zones[zone] == "impaired"
    hurt = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert hurt["StatusReason"] == f"Unhealthy: Availability Zone {zone} is impaired."
    assert container_of(docker_client, editor_id).attrs["NetworkSettings"]["Networks"] == {}

    # Starting it again places it in a healthy zone.
    editors.stop_editor(EditorId=editor_id)
    wait_for_status(editors, editor_id, "Idle")
    editors.start_editor(EditorId=editor_id)
    moved = wait_for_status(editors, editor_id, "Ready")
    assert moved["AvailabilityZone"] != zone
    assert "StatusReason" not in moved

    assert f"{zone} is available" in az_cli(gateway, "restore", zone)
    zones = {
        z["ZoneName"]: z["State"] for z in ec2.describe_availability_zones()["AvailabilityZones"]
    }
    assert zones[zone] == "available"
    editors.delete_editor(EditorId=editor_id)


def test_a_gateway_restart_keeps_running_workspaces(
    gateway: GatewayProcess, studio: tuple[str, StudioNetwork], docker_client: docker.DockerClient
) -> None:
    studio_id, _ = studio
    editors = studio_client(gateway)
    editor_id = editors.create_editor(StudioId=studio_id, Name="survivor")["EditorId"]
    wait_for_status(editors, editor_id, "Ready")
    container_id = container_of(docker_client, editor_id).id
    gateway.restart()
    editors = studio_client(gateway)
    after = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert after["Status"] == "Ready"
    assert container_of(docker_client, editor_id).id == container_id
    assert ready(container_of(docker_client, editor_id), editor_id)

    editors.delete_editor(EditorId=editor_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            editors.describe_editor(EditorId=editor_id)
        except ClientError as exc:
            assert exc.response["Error"]["Message"] == f"Workspace {editor_id} does not exist."
            break
        time.sleep(0.05)
    assert container_of(docker_client, editor_id) is None


def test_workspace_errors(gateway: GatewayProcess, studio: tuple[str, StudioNetwork]) -> None:
    studio_id, _ = studio
    editors = studio_client(gateway)
    for call, message in (
        (
            lambda: editors.create_editor(StudioId="es-" + "Q" * 25, Name="x"),
            "Studio does not exist",
        ),
        (
            lambda: editors.create_editor(
                StudioId=studio_id, Name="x", SubnetId="subnet-0000000000000dead"
            ),
            "Subnet 'subnet-0000000000000dead' is not one of the Studio's subnets.",
        ),
        (
            lambda: editors.describe_editor(EditorId="e-" + "Q" * 25),
            f"Workspace e-{'Q' * 25} does not exist.",
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"] == {
            "Code": "InvalidRequestException",
            "Message": message,
        }
