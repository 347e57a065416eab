"""Fixtures shared by the image and Workspace tests: the Workspace image, made once a session.

The images are the product (``emustudio images build`` makes the same ones), so they are built
only when missing or stale and kept afterwards; containers and networks the tests create are
labelled with a test instance id and removed.  The base is always the bootstrapped
``emustudio/base:bookworm``: no test ever asks dockerd to pull from a registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images


@dataclass(frozen=True)
class BuiltImages:
    base: str
    workspace: str
    bootstrap_seconds: float
    build_seconds: float


def say(config: pytest.Config, line: str) -> None:
    """Print a line to the terminal even when output is captured (timings, sizes)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - no terminal (xdist workers)
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def docker_executor() -> Iterator[DockerExecutor]:
    try:
        client = docker.from_env()
        client.ping()
        client.close()
    except Exception as exc:  # scripts/setup starts dockerd: its absence is a failure
        pytest.fail(f"docker daemon not reachable (run scripts/setup): {exc}")
    executor = DockerExecutor()
    yield executor
    executor.close()


@pytest.fixture(scope="session")
def workspace_images(docker_executor: DockerExecutor, pytestconfig: pytest.Config) -> BuiltImages:
    """Bootstrap the base and build the Workspace image on it (skipped when up to date)."""
    images = Images(docker_executor, pull_base=False)
    started = time.monotonic()
    base = asyncio.run(images.bootstrap())
    bootstrapped = time.monotonic()
    workspace = asyncio.run(images.build_workspace(base))
    built = time.monotonic()
    result = BuiltImages(base, workspace, bootstrapped - started, built - bootstrapped)
    say(
        pytestconfig,
        f"\n[images] bootstrap {result.bootstrap_seconds:.1f} s, "
        f"workspace build {result.build_seconds:.1f} s (0 s each when already up to date)",
    )
    return result
