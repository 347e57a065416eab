"""The Workspace manager's :class:`Containers`, on the Docker runtime.

Builds the Workspace image on first use (a few minutes once, then a label check), turns a
placement into a :class:`WorkspaceSpec` on the subnet's Docker network, and reports the
runtime's start steps as progress messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from emustudio.runtime.images import Images
from emustudio.runtime.networks import SubnetNetworks
from emustudio.runtime.workspaces import Phase, WorkspaceRuntime, WorkspaceSpec
from emustudio.services.emr.workspaces import Containers, ContainerSpec
from emustudio.store.tables import Endpoint


class DockerContainers(Containers):
    def __init__(
        self,
        runtime: WorkspaceRuntime,
        networks: SubnetNetworks,
        images: Images,
        *,
        memory: str,
        cpus: float,
    ) -> None:
        self.runtime = runtime
        self.networks = networks
        self.images = images
        self.memory = memory
        self.cpus = cpus
        self._image: str | None = None
        self._image_lock = asyncio.Lock()

    async def image(self, progress: Callable[[str], None]) -> str:
        async with self._image_lock:
            if self._image is None:
                progress("Preparing the Workspace image (built once, on first use)")
                self._image = await self.images.build_workspace()
            return self._image

    async def start(self, spec: ContainerSpec, progress: Callable[[str], None]) -> Endpoint:
        endpoint = await self.runtime.start(
            WorkspaceSpec(
                workspace_id=spec.editor_id,
                studio_id=spec.studio_id,
                subnet_id=spec.subnet_id,
                network=self.networks.network_name(spec.subnet_id),
                token=spec.token,
                image=await self.image(progress),
                memory=self.memory,
                cpus=self.cpus,
                base_url=spec.base_url,
            ),
            lambda step: progress(step.message),
        )
        return Endpoint(endpoint.ip, endpoint.port)

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
