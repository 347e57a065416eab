"""The warm pool: a few Workspace servers per subnet network, started before anyone asks.

A pooled container runs ``emustudio-warm`` (jupyter_ext/emustudio_jupyter_ext/warm.py): Python
with JupyterLab imported, listening for one claim.  It is made like any Workspace container
(same image, limits, hardening, only its subnet network) but carries nobody's anything: no
Workspace or Studio id, no token, no files, no credentials.  What it has is a one-time claim
key, random, known to this pool and to the container only.

:meth:`WarmPool.take` hands a warm container to exactly one caller (the pop happens without an
``await`` in between, so two concurrent claims never get the same one) and forgets it: a
container taken is never pooled again, whatever happens to it next.  The taker renames it to
the Workspace's name and claims it (:func:`claim`): the token, base_url and identity travel in
the claim, over the subnet network, to the waiting process; JupyterLab answers about 0.25 s
later.  Refills run in the background, one container at a time per key, after a short delay so
that the claimed server starts first; an AZ outage drains its subnets' pools
(:meth:`WarmPool.drain`) and they refill only when asked again (:meth:`WarmPool.fill`).

Pooled containers are named ``emustudio-<instance>-pool-<hex>`` and labelled like Workspace
containers (``emustudio.kind=workspace``, their Studio and subnet, no Workspace id) plus
``emustudio.pool``; their spec label is the hash of their :class:`PoolKey`.  Those of an
earlier run of the gateway are removed at its first fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, NotFound

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.networks import L_INSTANCE, L_KIND, L_SUBNET_ID, LABEL

__all__ = ["ENV_CLAIM_KEY", "L_POOL", "PoolKey", "Warm", "WarmPool", "claim", "request"]

log = logging.getLogger(__name__)

L_POOL = f"{LABEL}.pool"
L_STUDIO_ID = f"{LABEL}.studio-id"  # as runtime/workspaces.py labels Workspace containers
ENV_CLAIM_KEY = "EMUSTUDIO_CLAIM_KEY"
WARM_COMMAND = ["emustudio-warm"]


@dataclass(frozen=True)
class PoolKey:
    """What makes pooled containers interchangeable: a claim only takes one of its own key.

    The Studio is part of it: a pooled container is labelled with its Studio from the start, so
    the subnet's security groups (the Studio's Workspace group) apply to it as to any of the
    Studio's Workspaces, claimed or not.  Nothing of the Studio is inside the container.
    """

    studio_id: str
    subnet_id: str
    network: str
    image: str
    memory: str
    cpus: float

    def digest(self) -> str:
        data = json.dumps(self.__dict__, sort_keys=True).encode()
        return "pool-" + hashlib.sha256(data).hexdigest()[:27]


@dataclass(frozen=True)
class Warm:
    """A pooled container, warm (its claim listener answers) and not yet claimed."""

    container_id: str
    name: str
    ip: str
    claim_key: str


class WarmPool:
    """``size`` warm containers per :class:`PoolKey`, i.e. per Studio subnet (0: no pool)."""

    def __init__(
        self,
        docker: DockerExecutor,
        instance_id: str,
        size: int,
        *,
        create_options: Callable[[str, str, float], dict[str, Any]],
        start_timeout: float = 120.0,
        ready_poll: float = 0.05,
        refill_delay: float = 1.0,
    ) -> None:
        self._docker = docker
        self._instance_id = instance_id
        self.size = max(0, size)
        # (network, memory, cpus) -> the keyword arguments of containers.create: the
        # runtime's own, so pooled containers have the Workspace containers' limits and hardening.
        self._create_options = create_options
        self.start_timeout = start_timeout
        self.ready_poll = ready_poll
        self.refill_delay = refill_delay
        self._warm: dict[PoolKey, list[Warm]] = {}
        self._filling: dict[PoolKey, asyncio.Task[None]] = {}
        self._drained: set[str] = set()  # subnet ids in an outage: not refilled
        self._pruned = False
        self._closing = False

    def warm(self, key: PoolKey) -> list[Warm]:
        """The warm containers of ``key`` now (a copy)."""
        return list(self._warm.get(key, ()))

    def take(self, key: PoolKey) -> Warm | None:
        """One warm container of ``key``, now this caller's alone; None if there is none."""
        pool = self._warm.get(key)
        return pool.pop(0) if pool else None

    def fill(self, key: PoolKey, *, delay: float = 0.0) -> None:
        """Top ``key``'s pool up to ``size`` in the background (no-op when already filling)."""
        self._drained.discard(key.subnet_id)
        if self.size == 0 or key in self._filling or self._closing:
            return
        task = asyncio.create_task(self._fill(key, delay), name=f"warm pool {key.subnet_id}")
        self._filling[key] = task
        task.add_done_callback(lambda _t: self._filling.pop(key, None))

    async def drain(self, subnet_ids: set[str]) -> None:
        """Remove the pooled containers of ``subnet_ids`` and stop refilling them."""
        self._drained |= subnet_ids
        known = {k.subnet_id for k in [*self._warm, *self._filling]}
        subnet_ids = subnet_ids & known  # the others have no pool: no Docker call for them
        if not subnet_ids:
            return
        # A fill stops at its next step and removes what it was making (not cancelled: a
        # Docker call under way in a thread would still create its container after).
        await self._settle([t for k, t in self._filling.items() if k.subnet_id in subnet_ids])
        gone = [w for k in list(self._warm) if k.subnet_id in subnet_ids for w in self._warm.pop(k)]
        await self._remove([w.name for w in gone])

    async def close(self) -> None:
        """Remove every pooled container (unclaimed ones hold nothing worth keeping)."""
        self._closing = True
        await self._settle(list(self._filling.values()))
        self._warm.clear()
        await self._remove_unclaimed()

    def _stopped(self, key: PoolKey) -> bool:
        return self._closing or key.subnet_id in self._drained

    @staticmethod
    async def _settle(tasks: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- filling ---------------------------------------------------------------------------

    async def _fill(self, key: PoolKey, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not self._pruned:
            self._pruned = True
            await self._remove_unclaimed()  # left by an earlier run of this gateway
        while len(self._warm.get(key, ())) < self.size and not self._stopped(key):
            try:
                warm = await self._make(key)
            except Exception as exc:  # image gone, network gone, out of memory, stopped...
                if not self._stopped(key):
                    log.warning("warm pool of %s: %s", key.subnet_id, exc)
                return  # the next start on this subnet asks again
            if self._stopped(key):
                await self._remove([warm.name])
                return
            self._warm.setdefault(key, []).append(warm)
            log.info("warm pool of %s: %s ready", key.subnet_id, warm.name)

    async def _make(self, key: PoolKey) -> Warm:
        name = f"emustudio-{self._instance_id}-pool-{secrets.token_hex(6)}"
        claim_key = secrets.token_urlsafe(32)
        labels = {
            L_INSTANCE: self._instance_id,
            L_KIND: "workspace",
            L_POOL: "warm",
            L_STUDIO_ID: key.studio_id,
            L_SUBNET_ID: key.subnet_id,
            f"{LABEL}.network": key.network,
            f"{LABEL}.spec": key.digest(),
        }
        options = self._create_options(key.network, key.memory, key.cpus)

        def _run(client: docker.DockerClient) -> str:
            container = client.containers.create(
                key.image,
                command=WARM_COMMAND,
                name=name,
                labels=labels,
                environment={ENV_CLAIM_KEY: claim_key},
                **options,
            )
            container.start()
            attrs = client.api.inspect_container(container.id)
            networks = attrs["NetworkSettings"]["Networks"]
            return f"{container.id} {(networks.get(key.network) or {}).get('IPAddress', '')}"

        try:
            container_id, _, ip = (await self._docker.run(_run)).partition(" ")
            if not ip:
                raise RuntimeError(f"{name} has no address on {key.network}")
            await self._wait_warm(key, name, ip)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._remove([name]))
            raise
        return Warm(container_id, name, ip, claim_key)

    async def _wait_warm(self, key: PoolKey, name: str, ip: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while loop.time() < deadline:
            if self._stopped(key):
                raise RuntimeError(f"{name}: the pool of {key.subnet_id} stopped")
            status, _ = await request(ip, "GET", "/emustudio/warm")
            if status == 200:
                return
            await asyncio.sleep(self.ready_poll)
        raise RuntimeError(f"{name} was not warm within {self.start_timeout:.0f} s")

    async def _remove(self, names: list[str]) -> None:
        if not names:
            return

        def _rm(client: docker.DockerClient) -> None:
            for name in names:
                with contextlib.suppress(NotFound, APIError):
                    client.api.remove_container(name, force=True)

        await self._docker.run(_rm)

    async def _remove_unclaimed(self) -> None:
        """Remove every unclaimed pooled container of this instance, this run's or older."""
        labels = [f"{L_INSTANCE}={self._instance_id}", f"{L_POOL}=warm"]
        prefix = f"/emustudio-{self._instance_id}-pool-"

        def _rm(client: docker.DockerClient) -> None:
            for summary in client.api.containers(all=True, filters={"label": labels}):
                # A claimed one has been renamed to its Workspace: it is not ours to remove.
                if any(n.startswith(prefix) for n in summary.get("Names") or ()):
                    with contextlib.suppress(NotFound, APIError):
                        client.api.remove_container(summary["Id"], force=True)

        await self._docker.run(_rm)


async def request(
    ip: str, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    """One HTTP/1.0 request to port 8888 at ``ip``: (status, body), or (0, b"") if unreachable."""
    data = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.0\r\nHost: {ip}:8888\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, 8888), timeout)
        writer.write(head.encode() + data)
        raw = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError):
        return 0, b""
    finally:
        if writer is not None:
            writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, rest.partition(b"\r\n\r\n")[2]


async def claim(
    warm: Warm, *, token: str, base_url: str, allow_origin: str, env: Mapping[str, str]
) -> bool:
    """Give ``warm`` its Workspace: True once its process has accepted the claim.  Only the
    token's SHA-256 is sent, as a cold start's environment has only that."""
    status, _ = await request(
        warm.ip,
        "POST",
        "/emustudio/claim",
        {
            "key": warm.claim_key,
            "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
            "base_url": base_url,
            "allow_origin": allow_origin,
            "env": dict(env),
        },
    )
    return status == 200
