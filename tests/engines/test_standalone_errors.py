"""The standalone engine when the user's Spark cluster is not there: a cluster whose master node
cannot reach the standalone master, or whose driver network is gone, ends
TERMINATED_WITH_ERRORS with the reason, and leaves no container behind."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.service_role import ensure_emr_default_roles
from emustudio.testing.vpc import StudioNetwork
from tests.engines.test_standalone import FAST, LABEL, job_flow, nodes_of

pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def lan(docker_client: docker.DockerClient) -> Iterator[Any]:
    """The test's own network, with no Spark master on it."""
    run = secrets.token_hex(4)
    network = docker_client.networks.create(
        f"emustudio-test-nospark-{run}", labels={LABEL: f"standalone-errors-{run}"}
    )
    try:
        yield network
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.networks.get(network.id).remove()


@pytest.fixture(scope="module")
def gateway_env(lan: Any) -> dict[str, str]:
    lan.reload()
    subnet = ipaddress.ip_network(lan.attrs["IPAM"]["Config"][0]["Subnet"])
    nobody = subnet.network_address + 200  # an address of the test's network no one holds
    return {
        "EMUSTUDIO_CLUSTER_ENGINE": "standalone",
        "EMUSTUDIO_STANDALONE_MASTER_URL": f"spark://{nobody}:7077",
        "EMUSTUDIO_STANDALONE_NETWORK": lan.name,
    }


def ended(emr: Any, gateway: GatewayProcess, network: StudioNetwork) -> tuple[str, dict[str, Any]]:
    ensure_emr_default_roles(gateway.client("iam"))
    cluster_id = emr.run_job_flow(**job_flow(network.subnet_ids[0], []))["JobFlowId"]
    # botocore's cluster_terminated waiter calls TERMINATED_WITH_ERRORS a failure: poll.
    deadline = time.monotonic() + FAST["Delay"] * FAST["MaxAttempts"]
    while time.monotonic() < deadline:
        status = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
        if status["State"].startswith("TERMINATED"):
            return cluster_id, status
        time.sleep(2)
    raise AssertionError(f"{cluster_id} did not end: {status}")


def test_a_standalone_master_that_does_not_answer_ends_the_cluster(
    emr: Any, gateway: GatewayProcess, network: StudioNetwork, docker_client: docker.DockerClient
) -> None:
    cluster_id, status = ended(emr, gateway, network)
    url = gateway_env_url(gateway)
    assert status["State"] == "TERMINATED_WITH_ERRORS"
    assert status["StateChangeReason"]["Code"] == "INTERNAL_ERROR"
    assert status["StateChangeReason"]["Message"].startswith(
        f"The Spark standalone master {url} does not answer from the master node"
    )
    assert nodes_of(docker_client, cluster_id) == []


def test_a_driver_network_that_is_gone_ends_the_cluster(
    emr: Any,
    gateway: GatewayProcess,
    network: StudioNetwork,
    lan: Any,
    docker_client: docker.DockerClient,
) -> None:
    lan.remove()
    cluster_id, status = ended(emr, gateway, network)
    assert status["State"] == "TERMINATED_WITH_ERRORS"
    assert status["StateChangeReason"] == {
        "Code": "INTERNAL_ERROR",
        "Message": f"The network {lan.name} does not exist.",
    }
    assert nodes_of(docker_client, cluster_id) == []


def gateway_env_url(gateway: GatewayProcess) -> str:
    return gateway.extra_env["EMUSTUDIO_STANDALONE_MASTER_URL"]
