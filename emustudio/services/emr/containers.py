"""The Workspace manager's :class:`Containers`, on the Docker runtime.

Builds the Workspace image on first use (a few minutes once, then a label check), turns a
placement into a :class:`WorkspaceSpec` on the subnet's Docker network, and reports the
runtime's start steps as progress messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from emustudio.runtime.images import Images
from emustudio.runtime.networks import SubnetNetworks
from emustudio.runtime.pool import PoolKey
from emustudio.runtime.workspaces import Phase, WorkspaceRuntime, WorkspaceSpec
from emustudio.services.emr.kernel_route import ENGINE_PATH
from emustudio.services.emr.workspaces import Containers, ContainerSpec
from emustudio.store.tables import Endpoint

ENV_ENGINE_URL = "EMUSTUDIO_ENGINE_URL"


class DockerContainers(Containers):
    def __init__(
        self,
        runtime: WorkspaceRuntime,
        networks: SubnetNetworks,
        images: Images,
        *,
        memory: str,
        cpus: float,
        engine_address: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.engine_address = engine_address
        """``host:port`` of the kernel route as seen from a subnet (``runtime/reach.py``)."""
        self.networks = networks
        self.images = images
        self.memory = memory
        self.cpus = cpus
        self._image: str | None = None
        self._image_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def image(self, progress: Callable[[str], None]) -> str:
        async with self._image_lock:
            if self._image is None:
                progress("Preparing the Workspace image (built once, on first use)")
                self._image = await self.images.build_workspace()
            return self._image

    def workspace_spec(self, spec: ContainerSpec, image: str) -> WorkspaceSpec:
        return WorkspaceSpec(
            workspace_id=spec.editor_id,
            studio_id=spec.studio_id,
            subnet_id=spec.subnet_id,
            network=self.networks.network_name(spec.subnet_id),
            token=spec.token,
            image=image,
            memory=self.memory,
            cpus=self.cpus,
            base_url=spec.base_url,
        )

    async def start(self, spec: ContainerSpec, progress: Callable[[str], None]) -> Endpoint:
        env: dict[str, str] = {}
        address = await self.engine_address(spec.subnet_id) if self.engine_address else None
        if address is not None:
            # Where the server's gateway client reaches kernels once attached (not a secret:
            # the route's secret comes with each attach, in the switch call).
            env[ENV_ENGINE_URL] = f"http://{address}{ENGINE_PATH}{spec.editor_id}/"
        endpoint = await self.runtime.start(
            dataclasses.replace(self.workspace_spec(spec, await self.image(progress)), env=env),
            lambda step: progress(step.message),
        )
        return Endpoint(endpoint.ip, endpoint.port)

    puts_files = True

    async def put_files(self, editor_id: str, archive: bytes) -> None:
        await self.runtime.put_files(editor_id, archive)

    async def warm(self, studio_subnets: set[tuple[str, str]]) -> None:
        if not studio_subnets or self.runtime.pool_size == 0:
            return

        async def fill() -> None:
            image = await self.image(lambda _message: None)  # a first run builds it: minutes
            for studio_id, subnet_id in sorted(studio_subnets):
                network = self.networks.network_name(subnet_id)
                self.runtime.fill_pool(
                    PoolKey(studio_id, subnet_id, network, image, self.memory, self.cpus)
                )

        task = asyncio.create_task(fill(), name="warm the Workspace pool")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, subnet_ids: set[str]) -> None:
        await self.runtime.drain_pool(subnet_ids)

    async def stop(self, editor_id: str) -> None:
        await self.runtime.stop(editor_id)

    def on_exit(self, listener: Callable[[str, str], None]) -> None:
        self.runtime.on_exit(listener)

    async def running(self) -> dict[str, Endpoint]:
        return {
            state.workspace_id: Endpoint(state.endpoint.ip, state.endpoint.port)
            for state in await self.runtime.adopt()
            if state.phase is Phase.HEALTHY and state.endpoint is not None
        }

    async def disconnect(self, editor_id: str, subnet_id: str) -> None:
        await self.runtime.disconnect(editor_id)

    async def reconnect(self, editor_id: str, subnet_id: str) -> Endpoint | None:
        endpoint = await self.runtime.reconnect(editor_id)
        return None if endpoint is None else Endpoint(endpoint.ip, endpoint.port)
