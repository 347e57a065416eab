"""Security groups on the subnet networks: what a container on a subnet can open, and what not.

The evaluation (`allowed`) is checked on its own; then real containers on a real gateway's
subnet network, labelled as the gateway labels its Workspaces, try TCP connections to each
other while the groups' rules change through the EC2 API.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from emustudio.services.ec2.enforcement import allowed
from emustudio.testing import GatewayProcess, Studio
from emustudio.testing.resources import delete_workspace, start_workspace

IMAGE = "emustudio/base:bookworm"  # bootstrapped by tests/runtime; python3 is all we need


def rule(egress: bool, protocol: str = "-1", ports: tuple[int, int] | None = None, **peer: str):
    low, high = ports or (None, None)
    return {"egress": egress, "protocol": protocol, "from_port": low, "to_port": high, **peer}


OUT_ANYWHERE = rule(True, cidr_ipv4="0.0.0.0/0")


def test_a_workspace_group_admits_nothing_and_the_engine_rule_only_18888() -> None:
    rules = {
        "sg-ws": [OUT_ANYWHERE],
        "sg-engine": [OUT_ANYWHERE, rule(False, "tcp", (18888, 18888), group_id="sg-ws")],
    }
    assert allowed(["sg-ws"], "10.0.0.5", ["sg-ws"], "10.0.0.6", rules) == set()
    assert allowed(["sg-ws"], "10.0.0.5", ["sg-engine"], "10.0.0.7", rules) == {
        ("tcp", (18888, 18888))
    }
    assert allowed(["sg-engine"], "10.0.0.7", ["sg-ws"], "10.0.0.5", rules) == set()


def test_both_sides_must_allow_and_ports_intersect() -> None:
    rules = {
        "sg-a": [rule(True, "tcp", (8000, 9000), group_id="sg-b")],
        "sg-b": [rule(False, "tcp", (8888, 18888), cidr_ipv4="10.0.0.0/24")],
    }
    assert allowed(["sg-a"], "10.0.0.5", ["sg-b"], "10.0.0.6", rules) == {("tcp", (8888, 9000))}
    # The CIDR names the sender's address: one outside it is not admitted.
    assert allowed(["sg-a"], "10.0.1.5", ["sg-b"], "10.0.0.6", rules) == set()
    # No outbound rule: nothing leaves, whatever the receiver admits.
    assert allowed(["sg-b"], "10.0.0.6", ["sg-b"], "10.0.0.7", rules) == set()


def test_emr_managed_groups_let_the_nodes_talk_on_everything() -> None:
    rules = {
        g: [OUT_ANYWHERE, rule(False, group_id="sg-master"), rule(False, group_id="sg-slave")]
        for g in ("sg-master", "sg-slave")
    }
    assert allowed(["sg-slave"], "10.0.0.8", ["sg-master"], "10.0.0.7", rules) == {("-1", None)}
    assert allowed(["sg-ws"], "10.0.0.5", ["sg-master"], "10.0.0.7", rules) == set()


# -- real containers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env()
    yield c
    c.close()


def subnet_network(client: docker.DockerClient, gateway: GatewayProcess, subnet_id: str) -> str:
    found = client.networks.list(
        filters={
            "label": [
                f"emustudio.instance={gateway.instance_id}",
                f"emustudio.subnet-id={subnet_id}",
            ]
        }
    )
    assert len(found) == 1
    return str(found[0].name)


class Box:
    """A container on a subnet network, labelled as the gateway's Workspace of a Studio,
    serving HTTP on 8888 (what a Workspace's JupyterLab listens on)."""

    def __init__(
        self, client: docker.DockerClient, gateway: GatewayProcess, network: str, **labels: str
    ) -> None:
        self.container: Any = client.containers.run(
            IMAGE,
            ["python3", "-m", "http.server", "8888"],
            name=f"emustudio-{gateway.instance_id}-probe-{secrets.token_hex(3)}",
            labels={"emustudio.instance": gateway.instance_id, **labels},
            network=network,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user="1000",
            detach=True,
        )
        self.container.reload()
        self.ip = self.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        self.listening()

    def listening(self) -> None:
        deadline = time.monotonic() + 10
        while not self.connects("127.0.0.1", 8888):
            assert time.monotonic() < deadline, "the probe server did not listen"
            time.sleep(0.1)

    def connects(self, ip: str, port: int, timeout: float = 1.5) -> bool:
        """Whether a TCP connection from this container to ip:port opens."""
        code = (
            "import socket,sys\n"
            f"try: socket.create_connection(({ip!r},{port}),{timeout}).close()\n"
            "except OSError: sys.exit(1)"
        )
        result = self.container.exec_run(["python3", "-c", code], user="1000")
        return int(result.exit_code) == 0

    def remove(self) -> None:
        self.container.remove(force=True)


def host_connects(ip: str, port: int) -> bool:
    # The test runs where the gateway runs: on the host, which reaches containers itself.
    code = f"import socket; socket.create_connection(({ip!r},{port}),2).close()"
    return subprocess.run(["python3", "-c", code], capture_output=True).returncode == 0


def test_workspaces_of_a_subnet_reach_each_other_only_as_their_group_allows(
    emu_gateway: GatewayProcess, emu_studio: Studio, emu_ec2: Any, client: docker.DockerClient
) -> None:
    network = subnet_network(client, emu_gateway, emu_studio.subnet_ids[0])
    workspace = {"emustudio.kind": "workspace", "emustudio.studio-id": emu_studio.studio_id}
    alice = Box(client, emu_gateway, network, **workspace)
    bob = Box(client, emu_gateway, network, **workspace)
    stranger = Box(client, emu_gateway, network, **{"emustudio.kind": "unknown"})
    group = emu_studio.workspace_security_group_id
    try:
        # On AWS a Workspace group admits nothing: a neighbour's 8888 is closed...
        assert not alice.connects(bob.ip, 8888)
        assert not bob.connects(alice.ip, 8888)
        assert not stranger.connects(alice.ip, 8888)
        # ...while the gateway, on the host, still reaches both (it proxies them).
        assert host_connects(alice.ip, 8888) and host_connects(bob.ip, 8888)

        # A rule takes effect on running containers by the time the API answers.
        emu_ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8888,
                    "ToPort": 8888,
                    "UserIdGroupPairs": [{"GroupId": group}],
                }
            ],
        )
        assert alice.connects(bob.ip, 8888)
        assert bob.connects(alice.ip, 8888)
        assert not alice.connects(bob.ip, 8889)  # only the port the rule names
        assert not stranger.connects(alice.ip, 8888)  # not in the group

        # A container that starts later gets what its group allows, without any API call
        # (Docker's events), and loses it when the rule goes.
        carol = Box(client, emu_gateway, network, **workspace)
        try:
            deadline = time.monotonic() + 10
            while not alice.connects(carol.ip, 8888):
                assert time.monotonic() < deadline, "the new container was never admitted"
            assert carol.connects(bob.ip, 8888)
            emu_ec2.revoke_security_group_ingress(
                GroupId=group,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 8888,
                        "ToPort": 8888,
                        "UserIdGroupPairs": [{"GroupId": group}],
                    }
                ],
            )
            assert not alice.connects(bob.ip, 8888)
            assert not alice.connects(carol.ip, 8888)
            assert not carol.connects(alice.ip, 8888)
        finally:
            carol.remove()
    finally:
        for box in (alice, bob, stranger):
            box.remove()


def test_the_gateways_rules_are_labelled_and_name_only_its_own_bridges(
    emu_gateway: GatewayProcess, emu_studio: Studio, client: docker.DockerClient
) -> None:
    listing = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in listing.splitlines() if f"emustudio:{emu_gateway.instance_id}" in line]
    assert any(line.startswith("-A DOCKER-USER") for line in ours)
    bridges = {
        "br-" + str(n.id)[:12]
        for n in client.networks.list(
            filters={"label": f"emustudio.instance={emu_gateway.instance_id}"}
        )
    }
    named = {part for line in ours for part in line.split() if part.startswith("br-")}
    assert named and named <= bridges
    # No container of a subnet reaches the host's cloud metadata (169.254.169.254): checked in
    # the rules, never by sending to that address.
    for bridge in named:
        assert any(
            all(part in line for part in (f"-i {bridge}", "-d 169.254.0.0/16", "-j REJECT"))
            for line in ours
        )
    network = client.networks.get(subnet_network(client, emu_gateway, emu_studio.subnet_ids[0]))
    assert network.attrs["Options"].get("com.docker.network.bridge.enable_icc") == "false"


def test_a_workspace_cannot_open_its_neighbours_jupyter(
    emu_gateway: GatewayProcess, emu_studio: Studio, emu_boto3: Any, client: docker.DockerClient
) -> None:
    """The issue's own finding, with two real Workspaces of one Studio on one subnet: a cell's
    connection to the neighbour's 8888 fails; the gateway (the host) still reaches both."""
    editors = emu_boto3("emr-studio")
    made = [start_workspace(editors, emu_studio.studio_id, name=n) for n in ("mine", "theirs")]
    try:
        boxes = [
            client.containers.get(f"emustudio-{emu_gateway.instance_id}-{w.editor_id}")
            for w in made
        ]
        ips = [
            next(iter(b.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"] for b in boxes
        ]
        assert (
            boxes[0].attrs["HostConfig"]["NetworkMode"]
            == boxes[1].attrs["HostConfig"]["NetworkMode"]
        )
        probe = (
            "import socket,sys\n"
            "try: socket.create_connection((sys.argv[1], 8888), 1.5).close()\n"
            "except OSError: sys.exit(1)"
        )
        mine, theirs = boxes
        assert mine.exec_run(["python3", "-c", probe, ips[1]], user="emr-notebook").exit_code == 1
        assert theirs.exec_run(["python3", "-c", probe, ips[0]], user="emr-notebook").exit_code == 1
        assert (
            mine.exec_run(["python3", "-c", probe, "127.0.0.1"], user="emr-notebook").exit_code == 0
        )
        assert host_connects(ips[0], 8888) and host_connects(ips[1], 8888)
    finally:
        for workspace in made:
            delete_workspace(editors, workspace.editor_id)
