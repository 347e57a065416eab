"""EC2 subnets as Docker bridge networks.

emustudio plays the VPC with Docker: every EC2 subnet becomes one user-defined
bridge network whose IPAM pool is the subnet's CIDR, so a container started "in
the subnet" (a Workspace, an EMR cluster node) gets an address from the subnet's
range, exactly as an ENI would.

Naming and labels
    The network is named ``emustudio-<instance>-<subnet-id>`` and carries the
    labels ``emustudio.instance``, ``emustudio.kind`` (``subnet``),
    ``emustudio.subnet-id``, ``emustudio.vpc-id``,
    ``emustudio.availability-zone``, ``emustudio.cidr`` (the CIDR as the EC2 API
    shows it) and ``emustudio.docker-cidr`` (the CIDR Docker actually uses; the
    same unless remapped).  The labels, not the name, are the source of truth:
    lookups filter on them, and only networks carrying *our* instance label are
    ever removed, so two gateways (or a gateway and the test suite) can share
    one dockerd.

Addresses
    Docker's gateway (the bridge's own address) is the first host address,
    ``x.x.x.1``.  AWS reserves the first four addresses of every subnet (network,
    VPC router, DNS, future use) and the last one (broadcast), so the gateway
    lives inside the AWS-reserved part and never takes an address AWS would
    hand to an instance.  AWS subnets are /16 to /28; Docker needs the gateway
    plus at least two usable addresses, which a /28 (14 hosts) easily has.  We
    refuse anything smaller than a /29.

Overlaps and remapping
    A Docker daemon has a single address space: two networks may not overlap,
    while two AWS VPCs (or two emustudio instances) happily use the same
    10.0.0.0/16.  Before creating a network we compare its CIDR with the IPAM
    subnets of every existing Docker network.  On an overlap we raise
    :class:`CidrConflict`, unless remapping is on
    (``EMUSTUDIO_NETWORK_REMAP=true``), in which case the subnet is placed on the
    first free block of the same size inside the remap pool (default
    10.192.0.0/10) and both CIDRs are recorded in the labels.  The caller keeps
    ``SubnetNetwork.docker_cidr`` and passes it back as ``SubnetSpec.docker_cidr``
    after a restart so the same block is reused.

The gateway in a container
    The gateway is the Studio's ENI: it reaches Workspaces at their addresses on
    the subnet networks.  On the host that works as it is (the host routes to
    every bridge).  When the gateway itself runs in a container (docker compose:
    setting ``gateway_container``, ``EMUSTUDIO_GATEWAY_CONTAINER``, its own
    container's name or id), it has no route to those bridges, so that container
    joins every subnet network this instance has: on ``ensure`` (CreateSubnet,
    the default VPC) and on ``reconcile`` (start-up, so a re-created gateway
    container joins again).  Joining is idempotent (already a member: nothing
    happens).  The gateway joins a network as soon as it is created, so Docker
    gives it the first free address, ``x.x.x.2``, inside the part of the subnet
    AWS reserves: it takes no address AWS would hand to an instance.  Removing
    a network whose only member is the gateway container disconnects it first;
    any other member still makes the removal fail with :class:`NetworkInUse`.
    A configured container that does not exist is
    :class:`GatewayContainerMissing`.

Isolation
    With ``isolate`` (security groups enforced, ``runtime/firewall.py``) a new network is made
    with Docker's inter-container traffic off (``com.docker.network.bridge.enable_icc=false``).
    Docker cannot change that on an existing network: one made before, found by ``ensure`` or
    ``reconcile``, is re-created when no container but the gateway's is attached, and kept
    otherwise (the firewall's final DROP for its bridge closes it just the same).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import ipaddress
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from emustudio.runtime.docker_executor import DockerExecutor

__all__ = [
    "ICC_OPTION",
    "KIND_SUBNET",
    "LABEL",
    "CidrConflict",
    "GatewayContainerMissing",
    "NetworkInUse",
    "ReconcileReport",
    "RemapPoolExhausted",
    "SubnetNetwork",
    "SubnetNetworks",
    "SubnetSpec",
    "first_free_block",
]

log = logging.getLogger(__name__)

LABEL = "emustudio"
L_INSTANCE = f"{LABEL}.instance"
L_KIND = f"{LABEL}.kind"
L_SUBNET_ID = f"{LABEL}.subnet-id"
L_VPC_ID = f"{LABEL}.vpc-id"
L_AZ = f"{LABEL}.availability-zone"
L_CIDR = f"{LABEL}.cidr"
L_DOCKER_CIDR = f"{LABEL}.docker-cidr"
KIND_SUBNET = "subnet"
# Docker's inter-container traffic on a bridge; off on networks made while security groups are
# enforced (runtime/firewall.py opens what the groups allow).
ICC_OPTION = "com.docker.network.bridge.enable_icc"

REMAP_ENV = "EMUSTUDIO_NETWORK_REMAP"

# Gateway + two usable addresses need at least 4 host addresses: a /29.
_MAX_PREFIXLEN = 29
# Docker's own name rule for networks; instance and subnet ids end up in the name.
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# How often create() re-plans after Docker reports an overlap we did not see
# (another process created a network between our listing and our create).
_CREATE_ATTEMPTS = 6
# Between re-plans after Docker reports an overlap our listing did not show (a network another
# gateway is creating or removing right now): 0.1, 0.2, 0.4... seconds, in the executor thread.
_REPLAN_BACKOFF = 0.1


@dataclass(frozen=True)
class SubnetSpec:
    subnet_id: str
    vpc_id: str
    availability_zone: str
    cidr: str
    # A remembered remapped CIDR, if any (SubnetNetwork.docker_cidr of an earlier run).
    docker_cidr: str | None = None


@dataclass(frozen=True)
class SubnetNetwork:
    name: str
    network_id: str
    subnet_id: str
    cidr: str
    docker_cidr: str  # == cidr unless remapped
    gateway: str

    @property
    def remapped(self) -> bool:
        return ipaddress.ip_network(self.cidr) != ipaddress.ip_network(self.docker_cidr)


class CidrConflict(Exception):
    """A subnet's CIDR overlaps a Docker network that is not this subnet's own."""

    def __init__(
        self,
        cidr: str,
        other_network: str,
        other_instance: str | None,
        *,
        other_cidr: str | None = None,
        subnet_id: str | None = None,
        this_instance: str | None = None,
        remap_pool: str | None = None,
        message: str | None = None,
    ) -> None:
        self.cidr = cidr
        self.other_network = other_network
        self.other_instance = other_instance
        self.other_cidr = other_cidr
        self.subnet_id = subnet_id
        super().__init__(
            message
            or _conflict_message(
                cidr,
                other_network,
                other_instance,
                other_cidr,
                subnet_id,
                this_instance,
                remap_pool,
            )
        )


class RemapPoolExhausted(CidrConflict):
    """Remapping was on, but the remap pool has no free block of the subnet's size."""


class NetworkInUse(RuntimeError):
    """Docker refused to remove a network because containers are still attached to it."""

    def __init__(self, network: str, subnet_id: str | None, detail: str) -> None:
        self.network = network
        self.subnet_id = subnet_id
        what = f"network {network}" + (f" (subnet {subnet_id})" if subnet_id else "")
        super().__init__(
            f"Docker {what} still has containers attached and cannot be removed; "
            f"stop or disconnect them first. Docker said: {detail}"
        )


class GatewayContainerMissing(RuntimeError):
    """The container the gateway is configured to run in (``gateway_container``) is not there."""

    def __init__(self, container: str, detail: str) -> None:
        self.container = container
        super().__init__(
            f"the gateway container {container!r} (EMUSTUDIO_GATEWAY_CONTAINER) does not exist "
            f"on this Docker host; set it to the name or id of the container the gateway runs "
            f"in, or unset it when the gateway runs on the host. Docker said: {detail}"
        )


@dataclass
class ReconcileReport:
    """Subnet ids (the network name when an orphan has no subnet-id label) by outcome."""

    created: list[str]
    removed: list[str]
    kept: list[str]
    # Orphans that could not be removed because containers are attached (logged, left alone).
    in_use: list[str] = field(default_factory=list)


def _conflict_message(
    cidr: str,
    other_network: str,
    other_instance: str | None,
    other_cidr: str | None,
    subnet_id: str | None,
    this_instance: str | None,
    remap_pool: str | None,
) -> str:
    subject = f"CIDR {cidr}" + (f" of subnet {subnet_id}" if subnet_id else "")
    held = f" ({other_cidr})" if other_cidr else ""
    remap = f"set {REMAP_ENV}=true to place the subnet on a free block" + (
        f" of {remap_pool}" if remap_pool else " of the remap pool"
    )
    if other_instance is None:
        owner = "which is not managed by emustudio (it has no emustudio.instance label)"
        fix = f"remove or re-address that network (docker network rm {other_network}), or {remap}"
    elif this_instance is not None and other_instance == this_instance:
        owner = (
            f"which belongs to this emustudio instance '{other_instance}' "
            "(two VPCs with overlapping CIDRs cannot share one Docker address space)"
        )
        fix = remap
    else:
        owner = f"which belongs to another emustudio instance '{other_instance}'"
        fix = f"stop the other emustudio gateway (instance '{other_instance}'), or {remap}"
    return f"{subject} overlaps Docker network '{other_network}'{held}, {owner}. To fix: {fix}."


def _parse_cidr(text: str, what: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(text)  # strict: host bits set is an error, as in EC2
    except ValueError as exc:
        raise ValueError(f"invalid {what} {text!r}: {exc}") from exc
    if not isinstance(net, IPv4Network):
        raise ValueError(f"{what} {text!r}: only IPv4 subnets are supported")
    if net.prefixlen > _MAX_PREFIXLEN:
        raise ValueError(
            f"{what} {text!r} is too small for a Docker network "
            f"(need at least /{_MAX_PREFIXLEN}; AWS subnets are /16../28)"
        )
    return net


def _first_host(net: IPv4Network) -> str:
    return str(net.network_address + 1)


def first_free_block(
    pool: IPv4Network, prefixlen: int, used: Iterable[IPv4Network]
) -> IPv4Network | None:
    """The lowest /prefixlen block inside ``pool`` that overlaps none of ``used``.

    Instead of testing every block (a /28 in a /10 is 262144 of them) we jump
    past each blocker to the next aligned block after its end.
    """
    if prefixlen < pool.prefixlen or prefixlen > 32:
        return None
    size = 1 << (32 - prefixlen)
    ranges = [(int(u.network_address), int(u.broadcast_address)) for u in used]
    addr = int(pool.network_address)  # aligned: the pool is at least as large as a block
    end = int(pool.broadcast_address)
    while addr + size - 1 <= end:
        hi = addr + size - 1
        blocker_end = max((b for a, b in ranges if a <= hi and b >= addr), default=None)
        if blocker_end is None:
            return IPv4Network((addr, prefixlen))
        addr = -(-(blocker_end + 1) // size) * size  # round up to the next aligned block
    return None


@dataclass(frozen=True)
class _Occupant:
    """One IPv4 IPAM subnet of an existing Docker network."""

    name: str
    instance: str | None
    subnet_id: str | None
    cidr: IPv4Network


def _labels(net: Network) -> dict[str, str]:
    return dict(net.attrs.get("Labels") or {})


def _ipam_configs(attrs: dict[str, Any]) -> builtins.list[dict[str, Any]]:
    # host/none networks have Config [] and some drivers report null.
    return builtins.list((attrs.get("IPAM") or {}).get("Config") or [])


def _ipv4_subnets(attrs: dict[str, Any]) -> builtins.list[tuple[IPv4Network, str | None]]:
    out: builtins.list[tuple[IPv4Network, str | None]] = []
    for cfg in _ipam_configs(attrs):
        try:
            net = ipaddress.ip_network(cfg.get("Subnet", ""), strict=False)
        except ValueError:
            continue
        if isinstance(net, IPv4Network):  # IPv6 pools cannot clash with IPv4 subnets
            out.append((net, cfg.get("Gateway") or None))
    return out


def _to_subnet_network(net: Network) -> SubnetNetwork | None:
    subnets = _ipv4_subnets(net.attrs)
    if not subnets:
        return None  # no usable IPv4 pool: treat as broken, callers re-create it
    docker_net, gateway = subnets[0]
    labels = _labels(net)
    return SubnetNetwork(
        name=net.name,
        network_id=net.id,
        subnet_id=labels.get(L_SUBNET_ID, ""),
        cidr=labels.get(L_CIDR) or str(docker_net),
        docker_cidr=str(docker_net),
        gateway=gateway or _first_host(docker_net),
    )


def _is_pool_overlap(exc: APIError) -> bool:
    return "overlaps with other one" in str(exc)


def _is_in_use(exc: APIError) -> bool:
    return "active endpoints" in str(exc)


class SubnetNetworks:
    """Creates, finds and removes the Docker networks backing one instance's EC2 subnets."""

    def __init__(
        self,
        docker: DockerExecutor,
        instance_id: str,
        *,
        remap: bool = False,
        remap_pool: str = "10.192.0.0/10",
        gateway_container: str | None = None,
        isolate: bool = False,
    ) -> None:
        if not _NAME_PART.match(instance_id):
            raise ValueError(f"instance id {instance_id!r} must match {_NAME_PART.pattern}")
        pool = ipaddress.ip_network(remap_pool)
        if not isinstance(pool, IPv4Network):
            raise ValueError(f"remap pool {remap_pool!r} must be an IPv4 network")
        self._docker = docker
        self._instance_id = instance_id
        self._remap = remap
        self._pool = pool
        # The container the gateway runs in, if any: it joins every subnet network.
        self._gateway_container = gateway_container or None
        # New networks get Docker's inter-container traffic off (security groups enforced).
        self.isolate = isolate
        # Serialises our own mutations: two concurrent ensure() calls for one
        # subnet would otherwise both create, and two remaps would pick the same
        # free block.  Other processes are covered by Docker's overlap error.
        self._lock = asyncio.Lock()

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def remap(self) -> bool:
        return self._remap

    @property
    def remap_pool(self) -> str:
        return str(self._pool)

    @property
    def gateway_container(self) -> str | None:
        return self._gateway_container

    def network_name(self, subnet_id: str) -> str:
        if not _NAME_PART.match(subnet_id):
            raise ValueError(f"subnet id {subnet_id!r} must match {_NAME_PART.pattern}")
        return f"emustudio-{self._instance_id}-{subnet_id}"

    # ---- public API -----------------------------------------------------------------

    async def ensure(self, spec: SubnetSpec) -> SubnetNetwork:
        """Return the network for ``spec``, creating (or re-creating) it as needed."""
        async with self._lock:
            result, _created = await self._docker.run(lambda c: self._ensure_sync(c, spec))
            return result

    async def remove(self, subnet_id: str) -> None:
        """Remove the subnet's network; already gone is fine.  Raises NetworkInUse."""
        async with self._lock:
            await self._docker.run(lambda c: self._remove_subnet_sync(c, subnet_id))

    async def check_gateway_container(self) -> None:
        """Raise :class:`GatewayContainerMissing` unless the gateway container (if any) exists."""
        if self._gateway_container is not None:
            await self._docker.run(self._gateway_container_id_sync)

    async def get(self, subnet_id: str) -> SubnetNetwork | None:
        def _get(client: docker.DockerClient) -> SubnetNetwork | None:
            for net in self._find_sync(client, subnet_id):
                found = _to_subnet_network(net)
                if found is not None:
                    return found
            return None

        return await self._docker.run(_get)

    async def reconcile(self, specs: builtins.list[SubnetSpec]) -> ReconcileReport:
        """Make Docker match ``specs``: ensure each, remove our other subnet networks.

        Orphans go first so that a CIDR freed by a deleted subnet can be reused
        by a spec in the same pass.  A failing ``ensure`` (e.g. CidrConflict)
        propagates; work already done stays done.
        """
        wanted = {s.subnet_id for s in specs}
        if len(wanted) != len(specs):
            raise ValueError("reconcile: duplicate subnet ids in specs")
        report = ReconcileReport(created=[], removed=[], kept=[])
        async with self._lock:
            ours = await self._docker.run(lambda c: self._find_sync(c, None))
            for net in ours:
                sid = _labels(net).get(L_SUBNET_ID)
                if sid in wanted:
                    continue
                key = sid or net.name
                try:
                    if await self._docker.run(
                        functools.partial(self._remove_network_sync, net=net)
                    ):
                        report.removed.append(key)
                except NetworkInUse as exc:
                    log.warning("reconcile: keeping orphan network: %s", exc)
                    report.in_use.append(key)
            for spec in specs:
                _net, created = await self._docker.run(
                    functools.partial(self._ensure_sync, spec=spec)
                )
                (report.created if created else report.kept).append(spec.subnet_id)
        return report

    async def purge(self) -> builtins.list[str]:
        """Remove every network labelled with our instance id (any kind); return their names.

        Tries all of them; if some are in use, raises NetworkInUse for the first
        after removing the rest.
        """
        async with self._lock:
            nets = await self._docker.run(
                lambda c: c.networks.list(filters={"label": [f"{L_INSTANCE}={self._instance_id}"]})
            )
            removed: builtins.list[str] = []
            busy: builtins.list[NetworkInUse] = []
            for net in nets:
                try:
                    if await self._docker.run(
                        functools.partial(self._remove_network_sync, net=net)
                    ):
                        removed.append(net.name)
                except NetworkInUse as exc:
                    busy.append(exc)
            if busy:
                raise busy[0]
            return removed

    async def list(self) -> builtins.list[SubnetNetwork]:
        """Our subnet networks (instance label + kind subnet), sorted by subnet id."""

        def _list(client: docker.DockerClient) -> builtins.list[SubnetNetwork]:
            found = [_to_subnet_network(n) for n in self._find_sync(client, None)]
            return sorted((f for f in found if f is not None), key=lambda f: f.subnet_id)

        return await self._docker.run(_list)

    # ---- blocking helpers: run only inside the executor's pool ------------------------

    def _filters(self, subnet_id: str | None) -> dict[str, builtins.list[str]]:
        labels = [f"{L_INSTANCE}={self._instance_id}", f"{L_KIND}={KIND_SUBNET}"]
        if subnet_id is not None:
            labels.append(f"{L_SUBNET_ID}={subnet_id}")
        return {"label": labels}

    def _find_sync(self, client: docker.DockerClient, subnet_id: str | None) -> builtins.list[Any]:
        # Docker ANDs several label filters; the list endpoint already includes IPAM.
        return builtins.list(client.networks.list(filters=self._filters(subnet_id)))

    def _remove_network_sync(self, client: docker.DockerClient, net: Network) -> bool:
        """True if removed, False if it was already gone.  Raises NetworkInUse."""
        try:
            removed = _remove_once(net)
        except NetworkInUse:
            # The gateway's own container is a member of every subnet network: let go of a
            # network only it holds, then try once more.
            if not self._leave_if_sole_member_sync(client, net):
                raise
            removed = _remove_once(net)
        if removed:
            log.info("removed docker network %s", net.name)
        return removed

    # ---- the gateway's own container (see "The gateway in a container") ---------------

    def _inspect_gateway_container_sync(self, client: docker.DockerClient) -> dict[str, Any]:
        assert self._gateway_container is not None
        try:
            attrs: dict[str, Any] = client.api.inspect_container(self._gateway_container)
        except NotFound as exc:
            raise GatewayContainerMissing(self._gateway_container, str(exc)) from exc
        return attrs

    def _gateway_container_id_sync(self, client: docker.DockerClient) -> str:
        return str(self._inspect_gateway_container_sync(client)["Id"])

    def _join_sync(self, client: docker.DockerClient, network: SubnetNetwork) -> None:
        """Connect the gateway's container to ``network`` unless it is a member already."""
        if self._gateway_container is None:
            return
        attrs = self._inspect_gateway_container_sync(client)
        joined = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        if any(ep.get("NetworkID") == network.network_id for ep in joined.values()):
            return
        try:
            client.api.connect_container_to_network(attrs["Id"], network.network_id)
        except APIError as exc:
            if "already exists" not in str(exc):  # joined meanwhile: fine
                raise
        log.info("gateway container %s joined %s", self._gateway_container, network.name)

    def _leave_if_sole_member_sync(self, client: docker.DockerClient, net: Network) -> bool:
        """Disconnect the gateway's container from ``net`` if it is the only member left."""
        if self._gateway_container is None:
            return False
        try:
            net.reload()
            container = self._gateway_container_id_sync(client)
        except (NotFound, GatewayContainerMissing):
            return False
        members = set((net.attrs.get("Containers") or {}).keys())
        if members != {container}:
            return False
        try:
            client.api.disconnect_container_from_network(container, net.id, force=True)
        except NotFound:
            return False
        log.info("gateway container %s left %s", self._gateway_container, net.name)
        return True

    def _empty_sync(self, client: docker.DockerClient, net: Network) -> bool:
        """Whether no container but the gateway's own is attached to ``net``."""
        try:
            net.reload()
        except NotFound:
            return True
        members = set((net.attrs.get("Containers") or {}).keys())
        if members and self._gateway_container is not None:
            with contextlib.suppress(GatewayContainerMissing):
                members.discard(self._gateway_container_id_sync(client))
        return not members

    def _remove_subnet_sync(self, client: docker.DockerClient, subnet_id: str) -> None:
        for net in self._find_sync(client, subnet_id):
            self._remove_network_sync(client, net)

    def _ensure_sync(
        self, client: docker.DockerClient, spec: SubnetSpec
    ) -> tuple[SubnetNetwork, bool]:
        cidr = _parse_cidr(spec.cidr, "subnet CIDR")
        wanted: IPv4Network | None = None
        if spec.docker_cidr is not None:
            wanted = _parse_cidr(spec.docker_cidr, "docker CIDR")
            if wanted.prefixlen != cidr.prefixlen:
                # Addresses are mapped by offset, which needs blocks of equal size.
                raise ValueError(
                    f"docker CIDR {spec.docker_cidr} must have the same prefix length as {cidr}"
                )
        keep: SubnetNetwork | None = None
        for net in self._find_sync(client, spec.subnet_id):
            current = _to_subnet_network(net)
            # A busy network made before isolation stays: the firewall's DROP for its bridge
            # closes it all the same (docs/decisions.md).
            if (
                keep is None
                and current is not None
                and _matches(current, cidr, wanted)
                and (not self.isolate or _isolated(net) or not self._empty_sync(client, net))
            ):
                keep = current
                continue
            # Stale (CIDR changed, broken IPAM) or a duplicate from an old race.
            log.info("re-creating docker network %s for subnet %s", net.name, spec.subnet_id)
            self._remove_network_sync(client, net)
        if keep is not None:
            self._join_sync(client, keep)
            return keep, False
        created = self._create_sync(client, spec, cidr, wanted)
        self._join_sync(client, created)
        return created, True

    def _occupants_sync(self, client: docker.DockerClient) -> builtins.list[_Occupant]:
        out: builtins.list[_Occupant] = []
        for net in client.networks.list():
            labels = _labels(net)
            for sub, _gw in _ipv4_subnets(net.attrs):
                out.append(
                    _Occupant(net.name, labels.get(L_INSTANCE), labels.get(L_SUBNET_ID), sub)
                )
        return out

    def _conflict(
        self, spec: SubnetSpec, clash: _Occupant | None, exc: APIError | None = None
    ) -> CidrConflict:
        if clash is None:
            return CidrConflict(
                spec.cidr,
                "unknown",
                None,
                subnet_id=spec.subnet_id,
                message=(
                    f"CIDR {spec.cidr} of subnet {spec.subnet_id} overlaps an existing Docker "
                    f"network that could not be identified (Docker said: {exc}). To fix: stop "
                    f"the other emustudio gateway, or set {REMAP_ENV}=true."
                ),
            )
        return CidrConflict(
            spec.cidr,
            clash.name,
            clash.instance,
            other_cidr=str(clash.cidr),
            subnet_id=spec.subnet_id,
            this_instance=self._instance_id,
            remap_pool=str(self._pool),
        )

    def _plan(
        self,
        spec: SubnetSpec,
        cidr: IPv4Network,
        wanted: IPv4Network | None,
        used: builtins.list[_Occupant],
    ) -> IPv4Network:
        """Pick the Docker CIDR: the remembered one, else the real one, else (remap) the pool."""
        clash: _Occupant | None = None
        for candidate in [w for w in (wanted, cidr) if w is not None]:
            clash = next((o for o in used if o.cidr.overlaps(candidate)), None)
            if clash is None:
                return candidate
        if not self._remap:
            raise self._conflict(spec, clash)
        block = first_free_block(self._pool, cidr.prefixlen, (o.cidr for o in used))
        if block is None:
            base = self._conflict(spec, clash)
            raise RemapPoolExhausted(
                base.cidr,
                base.other_network,
                base.other_instance,
                other_cidr=base.other_cidr,
                subnet_id=spec.subnet_id,
                message=(
                    f"{base} Remapping is on, but remap pool {self._pool} has no free "
                    f"/{cidr.prefixlen} left; use a larger remap pool or remove unused networks."
                ),
            )
        return block

    def _create_sync(
        self,
        client: docker.DockerClient,
        spec: SubnetSpec,
        cidr: IPv4Network,
        wanted: IPv4Network | None,
    ) -> SubnetNetwork:
        name = self.network_name(spec.subnet_id)
        last_error: APIError | None = None
        for _attempt in range(_CREATE_ATTEMPTS):
            target = self._plan(spec, cidr, wanted, self._occupants_sync(client))
            labels = {
                L_INSTANCE: self._instance_id,
                L_KIND: KIND_SUBNET,
                L_SUBNET_ID: spec.subnet_id,
                L_VPC_ID: spec.vpc_id,
                L_AZ: spec.availability_zone,
                L_CIDR: spec.cidr,
                L_DOCKER_CIDR: str(target),
            }
            ipam = IPAMConfig(
                driver="default",
                pool_configs=[IPAMPool(subnet=str(target), gateway=_first_host(target))],
            )
            try:
                net = client.networks.create(
                    name,
                    driver="bridge",
                    ipam=ipam,
                    # A leftover network of the same name (labels lost) must not be shadowed.
                    check_duplicate=True,
                    internal=False,
                    attachable=True,
                    labels=labels,
                    options={ICC_OPTION: "false"} if self.isolate else None,
                )
            except APIError as exc:
                if not _is_pool_overlap(exc):
                    raise
                # Someone created an overlapping network after we listed: plan again,
                # which raises CidrConflict (naming it) unless remapping finds room.
                log.info("docker reported an overlap for %s, re-planning: %s", target, exc)
                last_error = exc
                time.sleep(_REPLAN_BACKOFF * 2**_attempt)
                continue
            log.info(
                "created docker network %s for subnet %s (%s%s)",
                name,
                spec.subnet_id,
                spec.cidr,
                "" if target == cidr else f" -> {target}",
            )
            created = _to_subnet_network(net)
            if created is None:  # cannot happen: we just gave it an IPv4 pool
                raise RuntimeError(f"docker network {name} was created without an IPv4 pool")
            return created
        raise self._conflict(spec, None, last_error)


def _remove_once(net: Network) -> bool:
    try:
        net.remove()
    except NotFound:
        return False
    except APIError as exc:
        if _is_in_use(exc):
            raise NetworkInUse(net.name, _labels(net).get(L_SUBNET_ID), str(exc)) from exc
        raise
    return True


def _isolated(net: Network) -> bool:
    return str((net.attrs.get("Options") or {}).get(ICC_OPTION, "true")).lower() == "false"


def _matches(current: SubnetNetwork, cidr: IPv4Network, wanted: IPv4Network | None) -> bool:
    # An existing remapped network matches a spec without a remembered docker CIDR:
    # it works, and re-creating it would only renumber attached containers.
    if ipaddress.ip_network(current.cidr, strict=False) != cidr:
        return False
    return wanted is None or ipaddress.ip_network(current.docker_cidr) == wanted
