"""State survives a restart, missing networks come back, and gateways on one Docker host coexist."""

from __future__ import annotations

import docker
import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.vpc import make_studio_network, studio_args


def subnet_network(client: docker.DockerClient, subnet_id: str) -> object | None:
    found = client.networks.list(filters={"label": [f"emustudio.subnet-id={subnet_id}"]})
    return found[0] if found else None


def test_restart_keeps_studios_and_restores_missing_networks(
    docker_client: docker.DockerClient,
) -> None:
    gw = GatewayProcess().start()
    try:
        ec2, emr = gw.client("ec2"), gw.client("emr")
        net = make_studio_network(ec2, subnets=2)
        studio_id = emr.create_studio(**studio_args(net))["StudioId"]
        gone = net.subnet_ids[0]
        assert gw.stop() == 0, gw.log()  # Ctrl-C stops it cleanly

        # Behind the gateway's back: one subnet network vanishes, an orphan of ours appears,
        # and another gateway's network exists.
        subnet_network(docker_client, gone).remove()  # type: ignore[union-attr]
        orphan = docker_client.networks.create(
            f"emustudio-{gw.instance_id}-subnet-orphan",
            labels={
                "emustudio.instance": gw.instance_id,
                "emustudio.kind": "subnet",
                "emustudio.subnet-id": "subnet-orphan",
            },
        )
        foreign = docker_client.networks.create(
            "emustudio-someoneelse-subnet-x",
            labels={"emustudio.instance": "someoneelse", "emustudio.kind": "subnet"},
        )
        try:
            gw.start()
            studio = gw.client("emr").describe_studio(StudioId=studio_id)["Studio"]
            assert studio["SubnetIds"] == net.subnet_ids
            restored = subnet_network(docker_client, gone)
            assert restored is not None
            cidr = restored.attrs["Labels"]["emustudio.cidr"]  # type: ignore[attr-defined]
            assert (
                cidr
                == gw.client("ec2").describe_subnets(SubnetIds=[gone])["Subnets"][0]["CidrBlock"]
            )
            names = {n.name for n in docker_client.networks.list()}
            assert orphan.name not in names
            assert foreign.name in names
        finally:
            foreign.remove()
    finally:
        gw.close()


def holder_of(client: docker.DockerClient, cidr: str) -> str | None:
    """The emustudio instance whose network sits on ``cidr`` on this Docker host, if any."""
    for network in client.networks.list(filters={"label": ["emustudio.instance"]}):
        configs = network.attrs["IPAM"]["Config"] or []
        if any(c.get("Subnet") == cidr for c in configs):
            return str(network.attrs["Labels"]["emustudio.instance"])
    return None


def test_a_second_gateway_on_the_same_cidrs_fails_clearly_or_remaps(
    docker_client: docker.DockerClient,
) -> None:
    first = GatewayProcess().start()
    try:
        # Whoever holds the default VPC's first block on this host (the first gateway, or a
        # gateway of another test session): a gateway that may not remap must say so.
        holder = holder_of(docker_client, "172.31.0.0/20")
        assert holder is not None
        second = GatewayProcess(env={"EMUSTUDIO_NETWORK_REMAP": "false"})
        with pytest.raises(RuntimeError) as exc:
            second.start()
        message = str(exc.value)
        assert "172.31.0.0/20" in message
        assert f"another emustudio instance '{holder}'" in message
        assert "EMUSTUDIO_NETWORK_REMAP=true" in message
        second.close()

        remapped = GatewayProcess(env={"EMUSTUDIO_NETWORK_REMAP": "true"}).start()
        try:
            subnets = remapped.client("ec2").describe_subnets()["Subnets"]
            # The API still shows AWS's default subnets; Docker holds them elsewhere.
            assert sorted(s["CidrBlock"] for s in subnets) == [
                "172.31.0.0/20",
                "172.31.16.0/20",
                "172.31.32.0/20",
            ]
            for subnet in subnets:
                network = subnet_network(docker_client, subnet["SubnetId"])
                assert network is not None
                labels = network.attrs["Labels"]  # type: ignore[attr-defined]
                assert labels["emustudio.cidr"] == subnet["CidrBlock"]
                assert labels["emustudio.docker-cidr"] != subnet["CidrBlock"]
        finally:
            remapped.close()
    finally:
        first.close()
