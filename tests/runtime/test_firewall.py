"""The firewall's own contract: it says when it cannot work, and removing is idempotent."""

from __future__ import annotations

import asyncio
import secrets
import subprocess

import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.firewall import Allow, Bridge, FirewallUnavailable, SubnetFirewall


def test_no_iptables_is_said_with_the_way_out(docker_executor: DockerExecutor) -> None:
    firewall = SubnetFirewall(docker_executor, "test", iptables="/nonexistent/iptables")
    with pytest.raises(FirewallUnavailable, match="EMUSTUDIO_ENFORCE_SECURITY_GROUPS"):
        asyncio.run(firewall.check())


def test_apply_then_remove_leaves_nothing_and_remove_again_is_fine(
    docker_executor: DockerExecutor,
) -> None:
    instance = "test" + secrets.token_hex(4)
    firewall = SubnetFirewall(docker_executor, instance)

    async def scenario() -> tuple[list[str], list[str]]:
        await firewall.apply([], {})
        installed = await firewall.rules()
        await firewall.remove()
        await firewall.remove()
        return installed, await firewall.rules()

    installed, after = asyncio.run(scenario())
    assert installed == [f"-N {firewall.chain}"]
    assert after == []
    listing = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    assert f"emustudio:{instance}" not in listing


def test_on_a_foreign_bridge_only_traffic_to_this_instances_containers_is_judged(
    docker_executor: DockerExecutor,
) -> None:
    firewall = SubnetFirewall(docker_executor, "test", foreign_networks=["spark-lan"])
    lan = Bridge("spark-lan", "", "br-lan", "172.30.0.0/16", "172.30.0.0/16", foreign=True)
    drivers = Allow("172.30.0.0/16", "172.30.0.9", "tcp", (32768, 60999))
    theirs = Allow("10.0.0.0/8", "172.30.0.5", "-1")  # to a container of the user's: not ours
    text = firewall.render(
        [lan], {"spark-lan": [drivers, theirs]}, {}, {"spark-lan": ["172.30.0.9"]}
    )
    tag = ' -m comment --comment "emustudio:test"'
    rules = [line.removesuffix(tag) for line in text.splitlines() if line.startswith("-A")]
    head = f"-A {firewall.chain} -o br-lan"
    assert rules == [
        f"{head} -d 172.30.0.9 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"{head} -s 172.30.0.0/16 -d 172.30.0.9 -p tcp --dport 32768:60999 -j ACCEPT",
        f"{head} -d 172.30.0.9 -j DROP",
    ]
