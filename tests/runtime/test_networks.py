"""SubnetNetworks and DockerExecutor against the real dockerd.

Every test gets its own random instance id and random /24s from
10.250.0.0/16..10.254.0.0/16 (10.253.0.0/16 is kept for the remap pool), so
tests never collide with each other or with a concurrently running gateway.
Teardown removes only networks labelled with the instance ids the test made,
directly through the docker SDK so that it works even if the code under test
is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import secrets
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool

from emustudio.runtime.docker_executor import DockerExecutor, ExecutorClosed
from emustudio.runtime.networks import (
    CidrConflict,
    SubnetNetworks,
    SubnetSpec,
    first_free_block,
)

T = TypeVar("T")

REMAP_POOL = "10.253.0.0/16"
# Second octets for random test /24s; 253 is the remap pool, so not handed out.
TEST_OCTETS = (250, 251, 252, 254)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        c = docker.from_env()
        c.ping()
    except Exception as exc:  # scripts/setup starts dockerd: its absence is a failure
        pytest.fail(f"docker daemon not reachable (run scripts/setup): {exc}")
    yield c
    c.close()


def _purge_instance(client: docker.DockerClient, instance_id: str) -> None:
    for net in client.networks.list(filters={"label": [f"emustudio.instance={instance_id}"]}):
        with contextlib.suppress(docker.errors.NotFound):
            net.remove()


@pytest.fixture
def new_instance(client: docker.DockerClient) -> Iterator[Callable[[], str]]:
    """Factory of fresh instance ids; all their networks are removed at teardown."""
    made: list[str] = []

    def make() -> str:
        made.append("test" + secrets.token_hex(4))
        return made[-1]

    yield make
    for instance_id in made:
        _purge_instance(client, instance_id)


@pytest.fixture
def instance(new_instance: Callable[[], str]) -> str:
    return new_instance()


@pytest.fixture
def free_cidr(client: docker.DockerClient) -> Callable[[], str]:
    """Random /24 from the test ranges that no Docker network currently overlaps."""
    handed: list[ipaddress.IPv4Network] = []

    def pick() -> str:
        used = handed + [
            ipaddress.IPv4Network(cfg["Subnet"])
            for n in client.networks.list()
            for cfg in (n.attrs.get("IPAM") or {}).get("Config") or []
            if ":" not in cfg.get("Subnet", ":")
        ]
        for _ in range(100):
            cand = ipaddress.IPv4Network(
                f"10.{random.choice(TEST_OCTETS)}.{random.randrange(256)}.0/24"
            )
            if not any(cand.overlaps(u) for u in used):
                handed.append(cand)
                return str(cand)
        raise AssertionError("no free test /24 found")

    return pick


def spec(subnet_id: str, cidr: str, **kw: Any) -> SubnetSpec:
    return SubnetSpec(
        subnet_id=subnet_id, vpc_id="vpc-0test", availability_zone="us-east-1a", cidr=cidr, **kw
    )


def networks_of(client: docker.DockerClient, instance_id: str) -> dict[str, Any]:
    nets = client.networks.list(filters={"label": [f"emustudio.instance={instance_id}"]})
    return {n.name: n for n in nets}


def make_raw_network(
    client: docker.DockerClient, name: str, cidr: str, labels: dict[str, str]
) -> Any:
    """A network created behind SubnetNetworks' back (always emustudio-labelled)."""
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=cidr)])
    return client.networks.create(name, driver="bridge", ipam=ipam, labels=labels)


async def _with_networks(instance_id: str, fn: Callable[[SubnetNetworks], Any], **kw: Any) -> Any:
    ex = DockerExecutor()
    try:
        return await fn(SubnetNetworks(ex, instance_id, **kw))
    finally:
        ex.close()


# ---- tests -----------------------------------------------------------------------------


def test_ensure_creates_labelled_bridge(
    client: docker.DockerClient, instance: str, free_cidr: Callable[[], str]
) -> None:
    cidr = free_cidr()
    s = spec("subnet-0aaa", cidr)

    async def go(nets: SubnetNetworks) -> Any:
        return await nets.ensure(s), await nets.get("subnet-0aaa"), await nets.list()

    made, got, listed = run(_with_networks(instance, go))
    net = ipaddress.IPv4Network(cidr)
    assert made.name == f"emustudio-{instance}-subnet-0aaa"
    assert made.cidr == made.docker_cidr == cidr
    assert made.gateway == str(net.network_address + 1)
    assert not made.remapped
    assert got == made and listed == [made]

    attrs = client.networks.get(made.network_id).attrs
    assert attrs["Name"] == made.name
    assert attrs["Driver"] == "bridge"
    assert attrs["Attachable"] is True and attrs["Internal"] is False
    assert attrs["IPAM"]["Config"] == [{"Subnet": cidr, "Gateway": made.gateway}]
    assert attrs["Labels"] == {
        "emustudio.instance": instance,
        "emustudio.kind": "subnet",
        "emustudio.subnet-id": "subnet-0aaa",
        "emustudio.vpc-id": "vpc-0test",
        "emustudio.availability-zone": "us-east-1a",
        "emustudio.cidr": cidr,
        "emustudio.docker-cidr": cidr,
    }


def test_ensure_is_idempotent_and_recreates_on_cidr_change(
    client: docker.DockerClient, instance: str, free_cidr: Callable[[], str]
) -> None:
    first_cidr, second_cidr = free_cidr(), free_cidr()

    async def go(nets: SubnetNetworks) -> Any:
        a = await nets.ensure(spec("subnet-0aaa", first_cidr))
        b = await nets.ensure(spec("subnet-0aaa", first_cidr))
        c = await nets.ensure(spec("subnet-0aaa", second_cidr))
        return a, b, c

    a, b, c = run(_with_networks(instance, go))
    assert a == b
    assert c.network_id != a.network_id and c.docker_cidr == second_cidr
    assert list(networks_of(client, instance)) == [a.name]  # old one gone, no duplicate


def test_remove_and_remove_twice(
    client: docker.DockerClient, instance: str, free_cidr: Callable[[], str]
) -> None:
    async def go(nets: SubnetNetworks) -> Any:
        await nets.ensure(spec("subnet-0aaa", free_cidr()))
        await nets.remove("subnet-0aaa")
        gone = await nets.get("subnet-0aaa")
        await nets.remove("subnet-0aaa")  # already gone: fine
        await nets.remove("subnet-0never")  # never existed: fine
        return gone

    assert run(_with_networks(instance, go)) is None
    assert networks_of(client, instance) == {}


def test_reconcile_recreates_and_removes_only_our_orphans(
    client: docker.DockerClient, new_instance: Callable[[], str], free_cidr: Callable[[], str]
) -> None:
    ours, other = new_instance(), new_instance()
    a, b = spec("subnet-0aaa", free_cidr()), spec("subnet-0bbb", free_cidr())
    orphan_labels = {"emustudio.kind": "subnet", "emustudio.subnet-id": "subnet-0old"}
    make_raw_network(
        client,
        f"emustudio-{ours}-subnet-0old",
        free_cidr(),
        {"emustudio.instance": ours, **orphan_labels},
    )
    foreign = make_raw_network(
        client,
        f"emustudio-{other}-subnet-0old",
        free_cidr(),
        {"emustudio.instance": other, **orphan_labels},
    )

    async def go(nets: SubnetNetworks) -> Any:
        first_a = await nets.ensure(a)
        first_b = await nets.ensure(b)
        client.networks.get(first_a.network_id).remove()  # deleted behind our back
        report = await nets.reconcile([a, b])
        return first_a, first_b, report, await nets.list()

    first_a, first_b, report, listed = run(_with_networks(ours, go))
    assert report.created == ["subnet-0aaa"]
    assert report.kept == ["subnet-0bbb"]
    assert report.removed == ["subnet-0old"]
    assert report.in_use == []
    assert [n.subnet_id for n in listed] == ["subnet-0aaa", "subnet-0bbb"]
    assert listed[0].network_id != first_a.network_id and listed[0].cidr == a.cidr
    assert listed[1] == first_b
    assert client.networks.get(foreign.id).name == foreign.name  # other instance untouched


def test_conflict_with_other_instance_names_it(
    new_instance: Callable[[], str], free_cidr: Callable[[], str]
) -> None:
    ours, other = new_instance(), new_instance()
    cidr = free_cidr()
    theirs = run(_with_networks(other, lambda n: n.ensure(spec("subnet-0ttt", cidr))))

    # A partial overlap (a /25 inside their /24) is a conflict too.
    half = str(next(ipaddress.IPv4Network(cidr).subnets(new_prefix=25)))
    with pytest.raises(CidrConflict) as info:
        run(_with_networks(ours, lambda n: n.ensure(spec("subnet-0aaa", half))))
    err = info.value
    assert err.cidr == half
    assert err.other_network == theirs.name
    assert err.other_instance == other
    msg = str(err)
    assert theirs.name in msg and other in msg and "EMUSTUDIO_NETWORK_REMAP=true" in msg
    assert "stop the other emustudio gateway" in msg


def test_remap_places_conflicting_subnet_in_pool(
    client: docker.DockerClient, new_instance: Callable[[], str], free_cidr: Callable[[], str]
) -> None:
    ours, other = new_instance(), new_instance()
    cidr = free_cidr()
    run(_with_networks(other, lambda n: n.ensure(spec("subnet-0ttt", cidr))))

    async def go(nets: SubnetNetworks) -> Any:
        made = await nets.ensure(spec("subnet-0aaa", cidr))
        again = await nets.ensure(spec("subnet-0aaa", cidr))
        remembered = await nets.ensure(spec("subnet-0aaa", cidr, docker_cidr=made.docker_cidr))
        return made, again, remembered

    made, again, remembered = run(_with_networks(ours, go, remap=True, remap_pool=REMAP_POOL))
    docker_net = ipaddress.IPv4Network(made.docker_cidr)
    assert made.remapped and made.cidr == cidr
    assert docker_net.subnet_of(ipaddress.IPv4Network(REMAP_POOL))
    assert docker_net.prefixlen == 24
    assert made.gateway == str(docker_net.network_address + 1)
    assert again == made and remembered == made

    attrs = client.networks.get(made.network_id).attrs
    assert attrs["IPAM"]["Config"][0]["Subnet"] == made.docker_cidr
    assert attrs["Labels"]["emustudio.cidr"] == cidr
    assert attrs["Labels"]["emustudio.docker-cidr"] == made.docker_cidr


def test_purge_removes_only_ours(
    client: docker.DockerClient, new_instance: Callable[[], str], free_cidr: Callable[[], str]
) -> None:
    ours, other = new_instance(), new_instance()
    theirs = run(_with_networks(other, lambda n: n.ensure(spec("subnet-0ttt", free_cidr()))))
    extra = make_raw_network(  # any kind counts for purge, not just subnets
        client,
        f"emustudio-{ours}-misc",
        free_cidr(),
        {"emustudio.instance": ours, "emustudio.kind": "other"},
    )

    async def go(nets: SubnetNetworks) -> Any:
        a = await nets.ensure(spec("subnet-0aaa", free_cidr()))
        b = await nets.ensure(spec("subnet-0bbb", free_cidr()))
        return {a.name, b.name}, await nets.purge(), await nets.purge()

    names, purged, purged_again = run(_with_networks(ours, go))
    assert set(purged) == names | {extra.name}
    assert purged_again == []
    assert networks_of(client, ours) == {}
    assert list(networks_of(client, other)) == [theirs.name]


def test_executor_runs_off_the_event_loop(client: docker.DockerClient) -> None:
    async def go() -> tuple[int, int, bool]:
        ex = DockerExecutor(max_workers=2)
        try:
            loop_thread = threading.get_ident()
            call_thread = await ex.run(lambda c: threading.get_ident())
            return loop_thread, call_thread, await ex.ping()
        finally:
            ex.close()
            with pytest.raises(ExecutorClosed):
                await ex.run(lambda c: None)

    loop_thread, call_thread, pinged = run(go())
    assert call_thread != loop_thread
    assert pinged is True


def test_ping_false_when_daemon_unreachable(tmp_path: Any) -> None:
    async def go() -> bool:
        ex = DockerExecutor(base_url=f"unix://{tmp_path}/no-such.sock")
        try:
            return await ex.ping()
        finally:
            ex.close()

    assert run(go()) is False


def test_first_free_block_skips_used_ranges() -> None:
    pool = ipaddress.IPv4Network("10.192.0.0/10")
    used = [
        ipaddress.IPv4Network("10.192.0.0/24"),
        ipaddress.IPv4Network("10.192.1.16/28"),  # small blocker inside the next /24
        ipaddress.IPv4Network("10.0.0.0/8"),  # covers the whole pool for a different query
    ]
    assert str(first_free_block(pool, 24, used[:2])) == "10.192.2.0/24"
    assert str(first_free_block(pool, 28, used[:2])) == "10.192.1.0/28"
    blocked = [used[0], ipaddress.IPv4Network("10.192.1.0/28")]
    assert str(first_free_block(pool, 28, blocked)) == "10.192.1.16/28"
    assert first_free_block(pool, 24, used) is None
    assert first_free_block(pool, 8, []) is None  # larger than the pool


def test_docker_overlap_error_race_becomes_cidr_conflict(
    new_instance: Callable[[], str], free_cidr: Callable[[], str], monkeypatch: Any
) -> None:
    """Another process creates an overlapping network between our listing and our create."""
    ours, other = new_instance(), new_instance()
    cidr = free_cidr()
    theirs = run(_with_networks(other, lambda n: n.ensure(spec("subnet-0ttt", cidr))))

    real = SubnetNetworks._occupants_sync
    calls: list[int] = []

    def stale_first_listing(self: SubnetNetworks, client: docker.DockerClient) -> Any:
        calls.append(1)
        return [] if len(calls) == 1 else real(self, client)

    monkeypatch.setattr(SubnetNetworks, "_occupants_sync", stale_first_listing)
    with pytest.raises(CidrConflict) as info:
        run(_with_networks(ours, lambda n: n.ensure(spec("subnet-0aaa", cidr))))
    assert len(calls) == 2  # Docker refused the first plan; the second named the culprit
    assert info.value.other_network == theirs.name and info.value.other_instance == other


def test_conflict_messages_say_who_owns_the_network_and_how_to_fix() -> None:
    foreign = str(CidrConflict("10.0.0.0/24", "corp-net", None, other_cidr="10.0.0.0/16"))
    assert "corp-net" in foreign and "not managed by emustudio" in foreign
    assert "docker network rm corp-net" in foreign and "EMUSTUDIO_NETWORK_REMAP=true" in foreign

    own = str(CidrConflict("10.0.0.0/24", "emustudio-me-subnet-1", "me", this_instance="me"))
    assert "this emustudio instance 'me'" in own and "EMUSTUDIO_NETWORK_REMAP=true" in own


def test_isolation_closes_new_networks_and_re_creates_open_ones_only_when_empty(
    client: docker.DockerClient, instance: str, free_cidr: Callable[[], str]
) -> None:
    """Docker cannot turn inter-container traffic off on an existing network: an open one
    (made before security groups were enforced) is re-created closed when nothing uses it,
    and kept while a container is attached (the firewall's DROP closes it then)."""
    empty, busy = spec("subnet-0open", free_cidr()), spec("subnet-0busy", free_cidr())
    before = run(
        _with_networks(instance, lambda n: asyncio.gather(n.ensure(empty), n.ensure(busy)))
    )
    for made in before:
        options = client.networks.get(made.network_id).attrs["Options"]
        assert options.get("com.docker.network.bridge.enable_icc") != "false"
    sleeper = client.containers.run(
        "emustudio/base:bookworm", ["sleep", "600"], network=before[1].name, detach=True,
        labels={"emustudio.instance": instance},
    )  # fmt: skip
    try:
        after = run(
            _with_networks(
                instance,
                lambda n: asyncio.gather(n.ensure(empty), n.ensure(busy)),
                isolate=True,
            )
        )
        reopened, kept = (client.networks.get(a.network_id).attrs["Options"] for a in after)
        assert after[0].network_id != before[0].network_id
        assert reopened.get("com.docker.network.bridge.enable_icc") == "false"
        assert after[1].network_id == before[1].network_id
        assert kept.get("com.docker.network.bridge.enable_icc") != "false"
    finally:
        sleeper.remove(force=True)
