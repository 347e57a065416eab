"""The gateway in a container joins every subnet network of its instance (runtime/networks.py,
"The gateway in a container"), here with a plain container standing in for the gateway's."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import (
    GatewayContainerMissing,
    NetworkInUse,
    SubnetNetworks,
    SubnetSpec,
)

INSTANCE_LABEL = "emustudio.instance"


@pytest.fixture
def instance(docker_client: docker.DockerClient) -> Iterator[str]:
    instance_id = "pytestgw" + secrets.token_hex(4)
    yield instance_id
    label = {"label": [f"{INSTANCE_LABEL}={instance_id}"]}
    for container in docker_client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for network in docker_client.networks.list(filters=label):
        network.remove()


def idle_container(client: docker.DockerClient, image: str, instance_id: str, name: str) -> Any:
    return client.containers.run(
        image,
        ["sleep", "infinity"],
        name=f"{instance_id}-{name}",
        labels={INSTANCE_LABEL: instance_id},
        init=True,
        detach=True,
    )


@pytest.fixture
def gateway(docker_client: docker.DockerClient, base_image: str, instance: str) -> Any:
    """A container playing the gateway's own (compose's ``gateway`` service)."""
    return idle_container(docker_client, base_image, instance, "gateway")


@pytest.fixture
async def networks(instance: str, gateway: Any) -> AsyncIterator[SubnetNetworks]:
    executor = DockerExecutor()
    yield SubnetNetworks(executor, instance, remap=True, gateway_container=gateway.name)
    executor.close()


def spec(subnet: str, cidr: str) -> SubnetSpec:
    return SubnetSpec(subnet, "vpc-test", "us-east-1a", cidr)


def joined(container: Any) -> dict[str, str]:
    """The container's subnet networks (not Docker's default bridge) and its address on each."""
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return {name: ep["IPAddress"] for name, ep in networks.items() if name != "bridge"}


async def test_the_gateway_joins_each_subnet_network_once(
    networks: SubnetNetworks, gateway: Any
) -> None:
    first = await networks.ensure(spec("subnet-a", "10.0.1.0/24"))
    second = await networks.ensure(spec("subnet-b", "10.0.2.0/24"))
    addresses = joined(gateway)
    assert set(addresses) == {first.name, second.name}
    # The first free address, inside the part of the subnet AWS reserves.
    for net in (first, second):
        assert addresses[net.name] == net.docker_cidr.rsplit(".", 1)[0] + ".2"
    # Idempotent: ensuring again changes nothing.
    assert await networks.ensure(spec("subnet-a", "10.0.1.0/24")) == first
    assert joined(gateway) == addresses


async def test_reconcile_joins_again_after_the_container_left(
    networks: SubnetNetworks, gateway: Any, docker_client: docker.DockerClient
) -> None:
    net = await networks.ensure(spec("subnet-a", "10.0.1.0/24"))
    docker_client.networks.get(net.network_id).disconnect(gateway)
    assert joined(gateway) == {}
    report = await networks.reconcile([spec("subnet-a", "10.0.1.0/24")])
    assert report.kept == ["subnet-a"]
    assert set(joined(gateway)) == {net.name}


async def test_removal_lets_go_of_the_gateway_but_not_of_a_workspace(
    networks: SubnetNetworks,
    gateway: Any,
    docker_client: docker.DockerClient,
    base_image: str,
    instance: str,
) -> None:
    net = await networks.ensure(spec("subnet-a", "10.0.1.0/24"))
    workspace = idle_container(docker_client, base_image, instance, "workspace")
    docker_client.networks.get(net.network_id).connect(workspace)
    with pytest.raises(NetworkInUse):
        await networks.remove("subnet-a")
    assert set(joined(gateway)) == {net.name}  # still reaches the Workspace

    docker_client.networks.get(net.network_id).disconnect(workspace)
    await networks.remove("subnet-a")
    assert await networks.get("subnet-a") is None
    assert joined(gateway) == {}

    await networks.ensure(spec("subnet-b", "10.0.2.0/24"))
    assert len(await networks.purge()) == 1
    assert joined(gateway) == {}


async def test_a_missing_gateway_container_is_named(instance: str) -> None:
    executor = DockerExecutor()
    try:
        missing = SubnetNetworks(executor, instance, remap=True, gateway_container=f"{instance}-x")
        with pytest.raises(GatewayContainerMissing, match=f"'{instance}-x'"):
            await missing.check_gateway_container()
        # Without one, there is nothing to check.
        await SubnetNetworks(executor, instance).check_gateway_container()
    finally:
        executor.close()
