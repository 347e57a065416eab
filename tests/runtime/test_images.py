"""Images: the bootstrapped Debian base and the Workspace image, against the real dockerd.

The session fixture ``workspace_images`` (conftest.py) makes them once; the first test to use
it pays for debootstrap and the build (about 2 minutes here) unless they are up to date.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import (
    BASE_IMAGE,
    DEBIAN_IMAGE,
    L_INPUTS,
    ImageBuildError,
    Images,
    _hash_inputs,
    find_source_dir,
)
from tests.runtime.conftest import BuiltImages, say

pytestmark = pytest.mark.timeout(1800)  # the first test may build from scratch


@pytest.fixture(scope="module")
def client() -> Any:
    c = docker.from_env()
    yield c
    c.close()


def test_images_are_built_with_their_inputs_labelled(
    workspace_images: BuiltImages, client: Any, pytestconfig: pytest.Config
) -> None:
    sizes = []
    for tag in (DEBIAN_IMAGE, BASE_IMAGE, workspace_images.workspace):
        image = client.images.get(tag)
        assert image.labels[L_INPUTS].startswith("sha256:")
        sizes.append(f"{tag} {image.attrs['Size'] / 1e6:.0f} MB")
    say(pytestconfig, "[images] " + ", ".join(sizes))

    config = client.images.get(workspace_images.workspace).attrs["Config"]
    assert config["User"] == "emr-notebook"
    assert config["WorkingDir"] == "/home/emr-notebook"
    assert list(config["ExposedPorts"]) == ["8888/tcp"]
    assert not config.get("Healthcheck")  # readiness once, liveness from Docker's events
    assert config["Cmd"] == ["jupyter", "lab"]
    assert any(e.startswith("PATH=/opt/venv/bin:") for e in config["Env"])
    # Issue 14's aim; the build copies a slimmed file tree into one layer (slim.sh).
    assert client.images.get(workspace_images.workspace).attrs["Size"] <= 200e6


def test_the_slimmed_image_keeps_what_a_workspace_runs(
    workspace_images: BuiltImages, client: Any
) -> None:
    """What slim.sh must not take: the debugger (and its compiled tracer), pip, the kernel's
    and terminals' modules, the standard library's C modules, a shell and its tools."""
    script = (
        "import ssl, sqlite3, ctypes, decimal, lzma, bz2, readline, curses, zoneinfo, dbm;"
        "import debugpy, ipykernel, jupyter_server_terminals, terminado, jedi, pip;"
        "from _pydevd_bundle import pydevd_cython;"
        "import subprocess;"
        "print(pydevd_cython.__file__.endswith('.so'), subprocess.run(['bash', '-c', 'echo é | grep -c é | sed s/1/one/ | tr a-z A-Z'],"
        " capture_output=True, text=True).stdout.strip())"
    )
    out = client.containers.run(
        workspace_images.workspace,
        ["python3", "-c", f"import debugpy._vendored.force_pydevd; {script}"],
        remove=True,
        network_mode="none",
        labels={"emustudio.instance": "test-images"},
    )
    assert out.decode().split() == ["True", "ONE"]


def test_workspace_image_runs_python_and_the_extension(
    workspace_images: BuiltImages, client: Any
) -> None:
    out = client.containers.run(
        workspace_images.workspace,
        [
            "python3",
            "-c",
            "import os, sys, emustudio_jupyter_ext, jupyterlab;"
            "print(sys.version_info[:2], os.getuid(), jupyterlab.__version__)",
        ],
        remove=True,
        network_mode="none",
        labels={"emustudio.instance": "test-images"},
    )
    assert out.decode().split() == ["(3,", "11)", "1000", "4.6.6"]


def test_build_again_is_a_no_op(
    workspace_images: BuiltImages, docker_executor: DockerExecutor, client: Any
) -> None:
    before = client.images.get(workspace_images.workspace).id
    images = Images(docker_executor, pull_base=False)
    started = time.monotonic()
    assert asyncio.run(images.bootstrap()) == BASE_IMAGE
    assert asyncio.run(images.build_workspace(BASE_IMAGE)) == workspace_images.workspace
    assert time.monotonic() - started < 10
    assert client.images.get(workspace_images.workspace).id == before


def test_a_tag_moved_by_another_checkout_is_moved_back_without_a_rebuild(
    workspace_images: BuiltImages, docker_executor: DockerExecutor, client: Any
) -> None:
    """Two checkouts on one Docker host (two CI jobs, two worktrees) share the version tag: each
    gets back the image of its own sources at once, and runs that image by id."""
    images = Images(docker_executor, pull_base=False)
    repository, _, name = images.workspace_image.rpartition(":")
    client.images.get(BASE_IMAGE).tag(repository, name)  # "another checkout" took the tag
    try:
        started = time.monotonic()
        assert asyncio.run(images.build_workspace(BASE_IMAGE)) == workspace_images.workspace
        assert time.monotonic() - started < 10
    finally:
        if client.images.get(images.workspace_image).id != workspace_images.workspace:
            client.images.get(workspace_images.workspace).tag(repository, name)
    assert client.images.get(images.workspace_image).id == workspace_images.workspace


def test_missing_base_falls_back_to_the_bootstrapped_one(
    workspace_images: BuiltImages, docker_executor: DockerExecutor, monkeypatch: Any
) -> None:
    pulls: list[str] = []

    async def no_registry(self: Images, ref: str) -> bool:
        pulls.append(ref)
        return False

    monkeypatch.setattr(Images, "_try_pull", no_registry)
    wanted = "emustudio-test/not-here:none"
    assert asyncio.run(Images(docker_executor, base_image=wanted).resolve_base()) == BASE_IMAGE
    assert pulls == [wanted]
    # With pulling off, not even an attempt.
    assert (
        asyncio.run(Images(docker_executor, base_image=wanted, pull_base=False).resolve_base())
        == BASE_IMAGE
    )
    assert pulls == [wanted]


def test_a_present_base_is_used_as_is(
    workspace_images: BuiltImages, docker_executor: DockerExecutor
) -> None:
    images = Images(docker_executor, base_image=BASE_IMAGE)
    assert asyncio.run(images.resolve_base()) == BASE_IMAGE


def test_inputs_hash_follows_sources_and_ignores_caches(tmp_path: Path) -> None:
    source = find_source_dir()
    for sub in ("compose", "jupyter_ext"):
        shutil.copytree(source / sub, tmp_path / sub)
    images = Images(DockerExecutor(), source_dir=tmp_path)  # no docker call is made

    def names_and_hash() -> tuple[list[str], str]:
        files = dict(images._workspace_context_files(tmp_path))
        return sorted(files), _hash_inputs(files, extra={"base": "x"})

    names, first = names_and_hash()
    assert "Dockerfile.workspace" in names
    assert "jupyter_ext/pyproject.toml" in names
    assert "workspace/jupyter_server_config.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    # The prebuilt lab extension goes in; its source and node modules never do.
    assert "jupyter_ext/emustudio_jupyter_ext/labextension/package.json" in names
    assert not any("labextension_src" in n or "node_modules" in n for n in names)

    cache = tmp_path / "jupyter_ext" / "emustudio_jupyter_ext" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-311.pyc").write_bytes(b"\0")
    assert names_and_hash()[1] == first

    hooks = tmp_path / "jupyter_ext" / "emustudio_jupyter_ext" / "hooks.py"
    hooks.write_text(hooks.read_text() + "\n# changed\n")
    assert names_and_hash()[1] != first


def test_sources_are_found_from_the_checkout_only(tmp_path: Path) -> None:
    assert (find_source_dir() / "compose" / "Dockerfile.base").is_file()
    with pytest.raises(ImageBuildError, match="source checkout"):
        find_source_dir(tmp_path)
