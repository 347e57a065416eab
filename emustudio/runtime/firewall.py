"""The subnet networks' firewall: what one container may send to another on a subnet network.

Docker lets any two containers of one bridge network talk on every port. EC2 does not: a
security group admits only what its rules allow. :class:`SubnetFirewall` is the mechanism that
closes the bridges and opens exactly a given list of :class:`Allow` (who decides what is allowed
is the EC2 service, ``services/ec2/enforcement.py``).

How
    One iptables chain per gateway instance, ``EMUSTUDIO-<hash of the instance id>``, jumped to
    from the top of Docker's ``DOCKER-USER`` chain (which Docker leaves to users and runs first
    in ``FORWARD``). Bridged traffic reaches ``FORWARD`` because Docker turns
    ``net.bridge.bridge-nf-call-iptables`` on. For each of this instance's subnet bridges the
    chain holds, in order: replies of tracked connections (EC2's groups are stateful), the
    gateway's own container both ways (the Studio's ENI, when the gateway runs in a container),
    one ``ACCEPT`` per allowed sender, receiver, protocol and port range, and a final ``DROP`` of
    everything else between two containers of that bridge. Traffic that leaves the bridge (to the
    host, where the gateway listens, or out) is not ours to judge and passes on to Docker's rules,
    except to the link-local range (the host's cloud metadata service), which is rejected first.
    The chain is replaced whole in one ``iptables-restore --noflush`` transaction, so a change
    never opens a gap. Every rule carries the comment ``emustudio:<instance>``.

    The host reaching a container (the gateway on the host proxying a Workspace's 8888 or a
    master's 18888, the readiness probe, the backup) goes through ``OUTPUT``, not ``FORWARD``,
    so it is never blocked here.

    Networks created while enforcement is on also have Docker's inter-container traffic off
    (``com.docker.network.bridge.enable_icc=false``), so they stay closed when the chain is not
    there (the gateway stopped): deny by default twice.

    A *foreign* bridge is a network that is not emustudio's but that a container of this
    instance joins (``foreign_networks``: the standalone engine's driver network, where a
    cluster's master node meets the user's Spark workers). There only what goes *to* this
    instance's containers is judged: replies, each allowed sender (an address or a CIDR), then a
    ``DROP`` per container address; the user's own containers there are left alone.

:meth:`SubnetFirewall.remove` flushes and deletes the chain and its jump (gateway close,
``emustudio down``); a bridge that goes simply drops out of the next :meth:`apply`.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import (
    ICC_OPTION,
    KIND_SUBNET,
    L_CIDR,
    L_DOCKER_CIDR,
    L_INSTANCE,
    L_KIND,
    L_SUBNET_ID,
)

__all__ = [
    "ICC_OPTION",
    "Allow",
    "Bridge",
    "FirewallUnavailable",
    "Member",
    "SubnetFirewall",
]

log = logging.getLogger(__name__)

_BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
_DOCKER_USER = "DOCKER-USER"
LINK_LOCAL = "169.254.0.0/16"


class FirewallUnavailable(RuntimeError):
    """iptables cannot be run or changed here (not root, no CAP_NET_ADMIN, no DOCKER-USER)."""


@dataclass(frozen=True)
class Allow:
    """Traffic from ``src`` to ``dst`` (addresses on one bridge; on a foreign bridge ``src`` may
    be a CIDR) that a rule admits.

    ``protocol`` is ``tcp``, ``udp``, ``icmp`` or ``-1`` (all); ``ports`` an inclusive range for
    tcp and udp, None for every port."""

    src: str
    dst: str
    protocol: str
    ports: tuple[int, int] | None = None


@dataclass(frozen=True)
class Bridge:
    """One of this instance's subnet networks, as the firewall sees it."""

    network: str
    subnet_id: str
    interface: str
    cidr: str  # the subnet's CIDR as EC2 shows it
    docker_cidr: str  # the CIDR Docker uses (== cidr unless remapped)
    foreign: bool = False  # not emustudio's: only traffic to its containers is judged

    def vpc_address(self, docker_ip: str) -> str:
        """The EC2 (VPC) address of a container address on this bridge (they differ only when
        the network was remapped: same offset in the subnet)."""
        docker_net = ipaddress.ip_network(self.docker_cidr)
        vpc_net = ipaddress.ip_network(self.cidr)
        offset = int(ipaddress.ip_address(docker_ip)) - int(docker_net.network_address)
        return str(ipaddress.ip_address(int(vpc_net.network_address) + offset))


@dataclass(frozen=True)
class Member:
    """A running container of this instance: its labels and its address on each network."""

    container_id: str
    name: str
    labels: Mapping[str, str]
    addresses: Mapping[str, str]  # network name -> IPv4 address


def chain_name(instance_id: str) -> str:
    # iptables chain names are at most 28 characters; the instance id is in every comment.
    return "EMUSTUDIO-" + hashlib.sha256(instance_id.encode()).hexdigest()[:12]


class SubnetFirewall:
    """Installs and removes the chain of one gateway instance (see the module docstring)."""

    def __init__(
        self,
        docker: DockerExecutor,
        instance_id: str,
        *,
        gateway_container: str | None = None,
        iptables: str = "iptables",
        foreign_networks: Iterable[str] = (),
    ) -> None:
        self._docker = docker
        self.foreign_networks = tuple(filter(None, foreign_networks))
        self._instance_id = instance_id
        self._gateway_container = gateway_container or None
        self._iptables = iptables
        self.chain = chain_name(instance_id)
        self.comment = f"emustudio:{instance_id}"
        self._lock = asyncio.Lock()

    # -- what is there -------------------------------------------------------------------

    async def bridges(self) -> list[Bridge]:
        """This instance's subnet networks and their bridge interfaces."""
        filters = {"label": [f"{L_INSTANCE}={self._instance_id}", f"{L_KIND}={KIND_SUBNET}"]}

        def _list(client: docker.DockerClient) -> list[Bridge]:
            out = []
            for net in client.networks.list(filters=filters):
                attrs: dict[str, Any] = net.attrs
                labels = attrs.get("Labels") or {}
                configs = (attrs.get("IPAM") or {}).get("Config") or []
                docker_cidr = labels.get(L_DOCKER_CIDR) or (
                    configs[0].get("Subnet") if configs else ""
                )
                if not docker_cidr:
                    continue
                interface = (attrs.get("Options") or {}).get(_BRIDGE_NAME_OPTION) or (
                    "br-" + str(attrs["Id"])[:12]
                )
                out.append(
                    Bridge(
                        network=str(attrs["Name"]),
                        subnet_id=labels.get(L_SUBNET_ID, ""),
                        interface=interface,
                        cidr=labels.get(L_CIDR) or docker_cidr,
                        docker_cidr=docker_cidr,
                    )
                )
            for name in self.foreign_networks:
                try:
                    net = client.networks.get(name)
                except docker.errors.NotFound:
                    continue
                attrs = net.attrs
                configs = (attrs.get("IPAM") or {}).get("Config") or []
                cidr = configs[0].get("Subnet") if configs else ""
                # Only a bridge's traffic crosses the host's FORWARD chain (not macvlan's).
                if attrs.get("Driver") != "bridge" or not cidr:
                    log.info("network %s: not a bridge with a subnet; not filtered", name)
                    continue
                interface = (attrs.get("Options") or {}).get(_BRIDGE_NAME_OPTION) or (
                    "br-" + str(attrs["Id"])[:12]
                )
                out.append(Bridge(str(attrs["Name"]), "", interface, cidr, cidr, foreign=True))
            return sorted(out, key=lambda b: b.network)

        return await self._docker.run(_list)

    async def members(self) -> list[Member]:
        """This instance's running containers (Workspaces, cluster nodes...), with addresses."""
        filters = {"label": [f"{L_INSTANCE}={self._instance_id}"], "status": ["running"]}

        def _list(client: docker.DockerClient) -> list[Member]:
            out = []
            for summary in client.api.containers(filters=filters):
                networks = (summary.get("NetworkSettings") or {}).get("Networks") or {}
                names = summary.get("Names") or [""]
                out.append(
                    Member(
                        container_id=str(summary["Id"]),
                        name=str(names[0]).lstrip("/"),
                        labels=dict(summary.get("Labels") or {}),
                        addresses={
                            network: str(ep["IPAddress"])
                            for network, ep in networks.items()
                            if ep.get("IPAddress")
                        },
                    )
                )
            return out

        return await self._docker.run(_list)

    async def gateway_addresses(self) -> dict[str, str]:
        """The gateway container's address on each network (none when it runs on the host)."""
        if self._gateway_container is None:
            return {}
        name = self._gateway_container

        def _inspect(client: docker.DockerClient) -> dict[str, str]:
            try:
                attrs = client.api.inspect_container(name)
            except docker.errors.NotFound:
                return {}
            networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
            return {n: str(ep["IPAddress"]) for n, ep in networks.items() if ep.get("IPAddress")}

        return await self._docker.run(_inspect)

    # -- changing it ---------------------------------------------------------------------

    async def check(self) -> None:
        """Raise :class:`FirewallUnavailable` unless iptables can list ``DOCKER-USER`` here."""
        code, out = await self._run(self._iptables, "-w", "-S", _DOCKER_USER)
        if code != 0:
            raise FirewallUnavailable(
                f"security groups cannot be enforced: `{self._iptables} -S {_DOCKER_USER}` "
                f"failed ({out.strip() or f'exit {code}'}). The gateway needs root (or "
                "CAP_NET_ADMIN) in the Docker host's network namespace. Without it any two "
                "containers of a subnet reach each other (EMUSTUDIO_ENFORCE_SECURITY_GROUPS: "
                "auto runs on with this warning, off says so, on refuses to start)."
            )

    def render(
        self,
        bridges: Iterable[Bridge],
        allows: Mapping[str, Iterable[Allow]],
        gateway: Mapping[str, str],
        guarded: Mapping[str, Iterable[str]] | None = None,
    ) -> str:
        """The ``iptables-restore --noflush`` text that makes the chain allow ``allows``
        (by bridge network name) and nothing else between containers of ``bridges``, nor to
        the ``guarded`` addresses of this instance's containers on a foreign bridge."""
        tag = ["-m", "comment", "--comment", f'"{self.comment}"']
        lines = ["*filter", f":{self.chain} - [0:0]"]

        def rule(*parts: str) -> None:
            lines.append(" ".join(["-A", self.chain, *parts, *tag]))

        for bridge in bridges:
            if bridge.foreign:
                mine = sorted(set((guarded or {}).get(bridge.network, ())))
                out = ("-o", bridge.interface)
                for address in mine:
                    rule(*out, "-d", address, "-m", "conntrack", "--ctstate",
                         "RELATED,ESTABLISHED", "-j", "ACCEPT")  # fmt: skip
                for allow in sorted(set(allows.get(bridge.network, ())), key=_allow_key):
                    if allow.dst in mine:
                        rule(*out, "-s", allow.src, "-d", allow.dst, *_match(allow), "-j", "ACCEPT")
                for address in mine:
                    rule(*out, "-d", address, "-j", "DROP")
                continue
            # The host's link-local range holds its cloud's instance metadata (169.254.169.254
            # on EC2): a Workspace or node reaching it would get the host's own credentials.
            # Nodes find their instance profile at the gateway's metadata service instead.
            rule("-i", bridge.interface, "-d", LINK_LOCAL, "-j", "REJECT")
            io = ("-i", bridge.interface, "-o", bridge.interface)
            rule(*io, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
            if own := gateway.get(bridge.network):
                rule(*io, "-s", own, "-j", "ACCEPT")
                rule(*io, "-d", own, "-j", "ACCEPT")
            for allow in sorted(set(allows.get(bridge.network, ())), key=_allow_key):
                rule(*io, "-s", allow.src, "-d", allow.dst, *_match(allow), "-j", "ACCEPT")
            rule(*io, "-j", "DROP")
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    async def apply(
        self,
        bridges: Iterable[Bridge],
        allows: Mapping[str, Iterable[Allow]],
        guarded: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Replace the chain (one transaction), then make sure ``DOCKER-USER`` jumps to it."""
        bridges = list(bridges)
        text = self.render(bridges, allows, await self.gateway_addresses(), guarded)
        async with self._lock:
            code, out = await self._run(self._iptables + "-restore", "-w", "--noflush", stdin=text)
            if code != 0:
                raise FirewallUnavailable(f"iptables-restore failed: {out.strip()}\n{text}")
            jump = [_DOCKER_USER, "-m", "comment", "--comment", self.comment, "-j", self.chain]
            code, _ = await self._run(self._iptables, "-w", "-C", *jump)
            if code != 0:
                code, out = await self._run(self._iptables, "-w", "-I", jump[0], "1", *jump[1:])
                if code != 0:
                    raise FirewallUnavailable(f"cannot jump from {_DOCKER_USER}: {out.strip()}")
        log.debug(
            "firewall %s: %d bridges, %d allowed",
            self.chain,
            len(bridges),
            sum(len(list(a)) for a in allows.values()),
        )

    async def remove(self) -> None:
        """Take the jump out of ``DOCKER-USER`` and delete the chain; absent counts as done."""
        jump = [_DOCKER_USER, "-m", "comment", "--comment", self.comment, "-j", self.chain]
        async with self._lock:
            while (await self._run(self._iptables, "-w", "-D", *jump))[0] == 0:
                pass  # a jump inserted twice (two gateways of one instance) goes too
            await self._run(self._iptables, "-w", "-F", self.chain)
            await self._run(self._iptables, "-w", "-X", self.chain)
        log.info("firewall %s removed", self.chain)

    async def rules(self) -> list[str]:
        """The chain as ``iptables -S`` prints it (empty when absent): for tests and doctors."""
        code, out = await self._run(self._iptables, "-w", "-S", self.chain)
        return out.splitlines() if code == 0 else []

    @staticmethod
    async def _run(*argv: str, stdin: str | None = None) -> tuple[int, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:  # no iptables binary
            return 127, str(exc)
        out, _ = await proc.communicate(stdin.encode() if stdin is not None else None)
        return int(proc.returncode or 0), out.decode(errors="replace")


def _match(allow: Allow) -> list[str]:
    """The protocol and destination ports of an Allow, as iptables matches them."""
    what: list[str] = []
    if allow.protocol != "-1":
        what += ["-p", allow.protocol]
        if allow.ports is not None and allow.protocol in ("tcp", "udp"):
            low, high = allow.ports
            what += ["--dport", f"{low}:{high}" if low != high else str(low)]
    return what


def _allow_key(allow: Allow) -> tuple[Any, ...]:
    return (allow.src, allow.dst, allow.protocol, allow.ports or (-1, -1))
