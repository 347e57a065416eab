"""Fixtures of the compose tests: the base image, bootstrapped from Debian when missing."""

from __future__ import annotations

import asyncio

import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images


@pytest.fixture(scope="session")
def base_image() -> str:
    """``emustudio/base:bookworm``: reused when up to date, else bootstrapped (no registry)."""
    executor = DockerExecutor()
    try:
        return asyncio.run(Images(executor, pull_base=False).bootstrap())
    finally:
        executor.close()
