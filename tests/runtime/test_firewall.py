"""The firewall's own contract: it says when it cannot work, and removing is idempotent."""

from __future__ import annotations

import asyncio
import secrets
import subprocess

import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.firewall import FirewallUnavailable, SubnetFirewall


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
