"""The Workspace image, built locally, with or without a registry.

Three images, each built from the one before:

``emustudio/debian:bookworm``
    A minimal Debian rootfs (``debootstrap --variant=minbase``) from the Debian mirror, slimmed
    like Docker's ``debian:bookworm-slim`` (no docs, man pages or locales) and imported with
    ``docker import``.  Only made by :meth:`Images.bootstrap`, for hosts that reach a Debian
    mirror but no container registry.
``emustudio/base:bookworm``
    ``compose/Dockerfile.base`` on that rootfs: Python 3.11 with venv and CA certificates, the
    stand-in for ``python:3.11-slim-bookworm``.
``emustudio/emr:spark-<spark>-<version>``
    ``compose/Dockerfile.cluster`` on the same base: an EMR node (Spark standalone from the
    pyspark wheel, OpenJDK 17, Jupyter Enterprise Gateway), one image per Spark version.
``emustudio/workspace:<version>``
    ``compose/Dockerfile.workspace``: JupyterLab and ``jupyter_ext`` in ``/opt/venv``, run as
    ``emr-notebook``.  Its base is the ``workspace_base_image`` setting
    (``python:3.11-slim-bookworm``) when it is present or can be pulled, else the bootstrapped
    ``emustudio/base:bookworm``, made on the spot if missing.

Every image built here carries the label ``emustudio.inputs``: a hash of what went into it
(Dockerfile, sources, the base image's id).  A build whose tag already exists with the same hash
is skipped, so ``emustudio images build`` is cheap to repeat; an untagged image with that hash
(left by a build from other sources, such as another checkout on the same Docker host) is tagged
again instead of rebuilt.  Builds of one host are serialised by a lock file, so two test sessions
never build the same image twice at once.  The Workspace and cluster builds return the image's
id, and containers are made from that id, not the tag: a gateway runs exactly the image whose
inputs it checked, even when another checkout moves the tag a moment later.

Builds use the classic builder through the docker SDK (dockerd 20.10 has no BuildKit front-end
for the API); the Dockerfiles therefore use no BuildKit syntax.  Build output goes to this
module's logger, line by line.  The build context is assembled here, in memory, from the source
checkout (``compose/`` and ``jupyter_ext/``) plus the host's CA bundle, which the build uses for
pip over HTTPS (on hosts whose HTTPS goes through an intercepting proxy, containers do not trust
it otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import BuildError, ImageNotFound

import emustudio
from emustudio.runtime.docker_executor import DockerExecutor

if TYPE_CHECKING:
    from emustudio.config import Settings

__all__ = [
    "BASE_IMAGE",
    "DEBIAN_IMAGE",
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_MIRROR",
    "ImageBuildError",
    "Images",
    "cluster_image",
    "default_workspace_image",
    "find_source_dir",
]

log = logging.getLogger(__name__)

DEBIAN_IMAGE = "emustudio/debian:bookworm"
BASE_IMAGE = "emustudio/base:bookworm"
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

L_INPUTS = "emustudio.inputs"
L_KIND = "emustudio.kind"

# Files of jupyter_ext/ and compose/workspace/ that never go into the build context (the lab
# extension's source and node modules: the image takes its committed build).
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build", "dist"}
_SKIP_PARTS |= {"labextension_src", "node_modules"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")

# What `debian:bookworm-slim` keeps out of its images (its /etc/dpkg/dpkg.cfg.d/docker).
_DPKG_SLIM = """\
# emustudio: keep the image slim, as debian:bookworm-slim does.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
"""
_APT_RM = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb"
_APT_CLEAN = f"""\
# emustudio: apt leaves no package files or lists behind in image layers.
DPkg::Post-Invoke {{ "{_APT_RM} /var/cache/apt/*.bin || true"; }};
APT::Update::Post-Invoke {{ "{_APT_RM} /var/cache/apt/*.bin || true"; }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""


class ImageBuildError(RuntimeError):
    """An image could not be made; the message says which step failed and why."""


def default_workspace_image() -> str:
    return f"emustudio/workspace:{emustudio.__version__}"


def cluster_image(spark_version: str) -> str:
    """The EMR node image of one Spark version (``emustudio images build`` makes the default)."""
    return f"emustudio/emr:spark-{spark_version}-{emustudio.__version__}"


def find_source_dir(start: Path | None = None) -> Path:
    """The checkout holding ``compose/`` and ``jupyter_ext/`` (the image sources).

    Searched upwards from this package, so it is found from an editable install or a checkout.
    """
    here = (start or Path(__file__)).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "compose" / "Dockerfile.workspace").is_file() and (
            candidate / "jupyter_ext" / "pyproject.toml"
        ).is_file():
            return candidate
    raise ImageBuildError(
        "cannot find the image sources (compose/Dockerfile.workspace and jupyter_ext/): "
        "build images from a source checkout of emustudio (pip install -e .)"
    )


class Images:
    """Makes the Workspace image (and, without a registry, its base).

    Every docker call goes through ``docker`` (the gateway's :class:`DockerExecutor`); debootstrap
    and apt run as asyncio subprocesses.  Methods are idempotent and safe to call concurrently,
    from one process (an asyncio lock) or several (a lock file).
    """

    def __init__(
        self,
        docker: DockerExecutor,
        *,
        workspace_image: str | None = None,
        base_image: str = DEFAULT_BASE_IMAGE,
        pull_base: bool = True,
        mirror: str = DEFAULT_MIRROR,
        source_dir: Path | None = None,
        ca_bundle: Path | None = HOST_CA_BUNDLE,
        lock_path: Path | None = None,
    ) -> None:
        self._docker = docker
        self.workspace_image = workspace_image or default_workspace_image()
        self.base_image = base_image
        self.pull_base = pull_base
        self.mirror = mirror.rstrip("/")
        self._source_dir = source_dir
        self._ca_bundle = ca_bundle
        self._lock_path = lock_path or Path(tempfile.gettempdir()) / "emustudio-images.lock"
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, docker: DockerExecutor, settings: Settings) -> Images:
        return cls(
            docker,
            workspace_image=settings.workspace_image,
            base_image=settings.workspace_base_image,
            pull_base=settings.workspace_base_pull,
            mirror=settings.debian_mirror,
        )

    @property
    def source_dir(self) -> Path:
        if self._source_dir is None:
            self._source_dir = find_source_dir()
        return self._source_dir

    # -- public ----------------------------------------------------------------------------

    async def bootstrap(self, *, force: bool = False) -> str:
        """Make ``emustudio/base:bookworm`` from the Debian mirror alone; return its tag.

        Runs ``debootstrap`` (installed with apt when missing; needs root) only when
        ``emustudio/debian:bookworm`` is missing or ``force`` is set, then builds
        ``compose/Dockerfile.base`` on it unless the tagged image is up to date.
        """
        async with self._locked():
            return await self._bootstrap(force=force)

    async def build_workspace(self, base: str | None = None, *, force: bool = False) -> str:
        """Build the Workspace image on ``base`` (default :meth:`resolve_base`); return its id.

        Skipped when the tag exists and was built from the same inputs, unless ``force``.
        """
        async with self._locked():
            if base is None:
                base = await self._resolve_base()
            base_id = await self._image_id(base)
            if base_id is None:
                raise ImageBuildError(f"base image {base} is not present")
            root = self.source_dir
            files = dict(self._workspace_context_files(root))
            inputs = _hash_inputs(files, extra={"base": base_id, "ca": "excluded"})
            if not force and (found := await self._find(self.workspace_image, inputs)):
                log.info("%s is up to date (base %s)", self.workspace_image, base)
                return found
            files["ca-certificates.crt"] = self._ca_bytes()
            log.info("building %s on %s", self.workspace_image, base)
            return await self._build(
                self.workspace_image,
                files,
                dockerfile="Dockerfile.workspace",
                buildargs={"BASE_IMAGE": base},
                labels={L_KIND: "workspace-image", L_INPUTS: inputs},
            )

    async def build_cluster(self, spark_version: str, *, force: bool = False) -> str:
        """Build the EMR node image for ``spark_version`` on the Workspace's base; its id.

        ``compose/Dockerfile.cluster`` with ``compose/cluster/``: the pyspark wheel of that
        version, OpenJDK 17 and Jupyter Enterprise Gateway. Skipped when up to date.
        """
        async with self._locked():
            base = await self._resolve_base()
            base_id = await self._image_id(base)
            if base_id is None:
                raise ImageBuildError(f"base image {base} is not present")
            tag = cluster_image(spark_version)
            files = dict(self._cluster_context_files(self.source_dir))
            inputs = _hash_inputs(
                files, extra={"base": base_id, "spark": spark_version, "ca": "excluded"}
            )
            if not force and (found := await self._find(tag, inputs)):
                return found
            files["ca-certificates.crt"] = self._ca_bytes()
            log.info("building %s on %s", tag, base)
            return await self._build(
                tag,
                files,
                dockerfile="Dockerfile.cluster",
                buildargs={"BASE_IMAGE": base, "PYSPARK_VERSION": spark_version},
                labels={L_KIND: "cluster-image", L_INPUTS: inputs},
            )

    async def resolve_base(self) -> str:
        """The base for the Workspace image: ``base_image`` if present or pullable, else ours."""
        async with self._locked():
            return await self._resolve_base()

    async def exists(self, tag: str) -> bool:
        return await self._image_id(tag) is not None

    # -- steps (callers hold the lock) -----------------------------------------------------

    async def _resolve_base(self) -> str:
        if await self._image_id(self.base_image) is not None:
            return self.base_image
        if self.pull_base and await self._try_pull(self.base_image):
            return self.base_image
        log.info(
            "base image %s is not available; using %s (bootstrapped from %s)",
            self.base_image,
            BASE_IMAGE,
            self.mirror,
        )
        return await self._bootstrap(force=False)

    async def _bootstrap(self, *, force: bool) -> str:
        if force or not await self._find(DEBIAN_IMAGE, self._debian_inputs()):
            await self._import_debian()
        debian_id = await self._image_id(DEBIAN_IMAGE)
        if debian_id is None:  # just imported it
            raise ImageBuildError(f"{DEBIAN_IMAGE} vanished after import")
        dockerfile = (self.source_dir / "compose" / "Dockerfile.base").read_bytes()
        files = {"Dockerfile.base": dockerfile}
        inputs = _hash_inputs(files, extra={"base": debian_id})
        if not force and await self._find(BASE_IMAGE, inputs):
            log.info("%s is up to date", BASE_IMAGE)
            return BASE_IMAGE
        log.info("building %s on %s", BASE_IMAGE, DEBIAN_IMAGE)
        await self._build(
            BASE_IMAGE,
            files,
            dockerfile="Dockerfile.base",
            buildargs={"DEBIAN_IMAGE": DEBIAN_IMAGE},
            labels={L_KIND: "base-image", L_INPUTS: inputs},
        )
        return BASE_IMAGE

    async def _import_debian(self) -> None:
        if os.geteuid() != 0:
            raise ImageBuildError(
                "bootstrapping the Debian base needs root (debootstrap chroots): run "
                "`sudo emustudio images bootstrap` once, or make python:3.11-slim-bookworm "
                "available (docker pull / docker load)"
            )
        debootstrap = await _ensure_debootstrap()
        work = Path(tempfile.mkdtemp(prefix="emustudio-debootstrap-"))
        rootfs = work / "rootfs"
        try:
            log.info("debootstrap %s (minbase) from %s into %s", SUITE, self.mirror, rootfs)
            await _run_logged(
                debootstrap,
                "--variant=minbase",
                "--components=main",
                SUITE,
                str(rootfs),
                self.mirror,
                what="debootstrap",
            )
            await asyncio.to_thread(_unmount_below, rootfs)
            await asyncio.to_thread(_slim_rootfs, rootfs, self.mirror)
            tarball = work / "rootfs.tar"
            await _run_logged(
                "tar",
                "--numeric-owner",
                "--one-file-system",
                "-C",
                str(rootfs),
                "-cf",
                str(tarball),
                ".",
                what="tar",
            )
            inputs = self._debian_inputs()
            changes = [
                "ENV LANG=C.UTF-8",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f'LABEL {L_KIND}="debian-image" {L_INPUTS}="{inputs}"',
                'CMD ["bash"]',
            ]
            log.info("importing %s (%.0f MB)", DEBIAN_IMAGE, tarball.stat().st_size / 1e6)
            repo, tag = DEBIAN_IMAGE.rsplit(":", 1)

            def _import(client: docker.DockerClient) -> Any:
                return client.api.import_image_from_file(
                    str(tarball), repository=repo, tag=tag, changes=changes
                )

            result = await self._docker.run(_import)
            for line in _json_lines(result):
                if "error" in line:
                    raise ImageBuildError(f"docker import failed: {line['error']}")
        finally:
            await asyncio.to_thread(_unmount_below, rootfs)
            await asyncio.to_thread(shutil.rmtree, work, True)

    def _debian_inputs(self) -> str:
        recipe = {"dpkg.cfg": _DPKG_SLIM.encode(), "apt.conf": _APT_CLEAN.encode()}
        return _hash_inputs(recipe, extra={"suite": SUITE, "mirror": self.mirror})

    # -- docker helpers --------------------------------------------------------------------

    async def _image_id(self, ref: str) -> str | None:
        def _get(client: docker.DockerClient) -> str | None:
            try:
                return str(client.images.get(ref).id)
            except ImageNotFound:
                return None

        return await self._docker.run(_get)

    async def _find(self, tag: str, inputs: str) -> str | None:
        """The id of an image built from ``inputs``, tagged ``tag`` (again, if need be)."""

        def _lookup(client: docker.DockerClient) -> str | None:
            with contextlib.suppress(ImageNotFound):
                image = client.images.get(tag)
                if (image.labels or {}).get(L_INPUTS) == inputs:
                    return str(image.id)
            for image in client.images.list(filters={"label": f"{L_INPUTS}={inputs}"}):
                repository, _, name = tag.rpartition(":")
                image.tag(repository, name)
                log.info("%s: tagged the image already built from these inputs", tag)
                return str(image.id)
            return None

        return await self._docker.run(_lookup)

    async def _try_pull(self, ref: str) -> bool:
        repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
        log.info("pulling %s", ref)

        def _pull(client: docker.DockerClient) -> None:
            client.images.pull(repo, tag=tag)

        try:
            await self._docker.run(_pull)
        except Exception as exc:  # APIError, or requests' errors when the daemon stalls
            log.info("cannot pull %s: %s", ref, exc)
            return False
        return True

    async def _build(
        self,
        tag: str,
        files: dict[str, bytes],
        *,
        dockerfile: str,
        buildargs: dict[str, str],
        labels: dict[str, str],
    ) -> str:
        context = _tar_context(files)

        def _run_build(client: docker.DockerClient) -> str:
            image_id: str | None = None
            stream = client.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                buildargs=buildargs,
                labels=labels,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in str(chunk["stream"]).splitlines():
                        if line.strip():
                            log.info("[%s] %s", tag, line.rstrip())
                elif "error" in chunk:
                    raise BuildError(str(chunk["error"]).strip(), [])
                elif "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
                elif "status" in chunk:
                    log.debug("[%s] %s", tag, chunk["status"])
            if image_id is None:
                image_id = str(client.images.get(tag).id)
            return image_id

        try:
            new_id = await self._docker.run(_run_build)
        except BuildError as exc:
            raise ImageBuildError(f"building {tag} failed: {exc.msg}") from exc
        log.info("built %s (%s)", tag, new_id[:19])
        # The image this build replaced stays, untagged: another checkout on this host may still
        # want it (and `_find` tags it again rather than rebuilding); `docker image prune` drops
        # it.
        return new_id

    # -- context ---------------------------------------------------------------------------

    def _workspace_context_files(self, root: Path) -> Iterator[tuple[str, bytes]]:
        yield "Dockerfile.workspace", (root / "compose" / "Dockerfile.workspace").read_bytes()
        for sub in ("compose/workspace", "jupyter_ext"):
            base = root / sub
            prefix = sub.split("/", 1)[-1]
            for path in sorted(base.rglob("*")):
                rel = path.relative_to(base)
                if not path.is_file() or _skipped(rel.parts):
                    continue
                yield f"{prefix}/{rel.as_posix()}", path.read_bytes()

    def _cluster_context_files(self, root: Path) -> Iterator[tuple[str, bytes]]:
        yield "Dockerfile.cluster", (root / "compose" / "Dockerfile.cluster").read_bytes()
        base = root / "compose" / "cluster"
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if path.is_file() and not _skipped(rel.parts):
                yield f"cluster/{rel.as_posix()}", path.read_bytes()

    def _ca_bytes(self) -> bytes:
        if self._ca_bundle is not None and self._ca_bundle.is_file():
            return self._ca_bundle.read_bytes()
        return b""

    @contextlib.asynccontextmanager
    async def _locked(self) -> Any:
        async with self._lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("another process is building images; waiting for it")
                    await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock


def _skipped(parts: Iterable[str]) -> bool:
    return any(p in _SKIP_PARTS or p.endswith(_SKIP_SUFFIXES) for p in parts)


def _hash_inputs(files: dict[str, bytes], extra: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()


def _tar_context(files: dict[str, bytes]) -> io.BytesIO:
    """A build context tar with fixed metadata, so layer caches depend on contents only."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _json_lines(result: Any) -> Iterator[dict[str, Any]]:
    text = result.decode() if isinstance(result, bytes) else str(result or "")
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                yield obj


async def _run_logged(*argv: str, what: str) -> None:
    """Run a command, its output line by line to the log; raise ImageBuildError on failure."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
    )
    assert proc.stdout is not None
    tail: list[str] = []
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        if line:
            log.info("[%s] %s", what, line)
            tail = [*tail[-19:], line]
    code = await proc.wait()
    if code != 0:
        last = "\n  ".join(tail[-10:])
        raise ImageBuildError(f"{what} failed (exit {code}):\n  {last}")


async def _ensure_debootstrap() -> str:
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise ImageBuildError("debootstrap is not installed and there is no apt-get to install it")
    log.info("installing debootstrap with apt-get")
    await _run_logged(apt, "update", "-qq", what="apt-get update")
    await _run_logged(
        apt, "install", "-y", "-qq", "--no-install-recommends", "debootstrap", what="apt-get"
    )
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if not found:
        raise ImageBuildError("apt-get installed debootstrap, but it is not on PATH")
    return found


def _unmount_below(root: Path) -> None:
    """Unmount whatever a failed debootstrap left mounted in the rootfs (proc, sys, dev)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root.resolve())
    targets = [
        m.split()[1].replace("\\040", " ")
        for m in mounts
        if len(m.split()) > 1 and (m.split()[1] + "/").startswith(prefix + "/")
    ]
    for target in sorted(targets, key=len, reverse=True):
        log.info("unmounting %s", target)
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _slim_rootfs(rootfs: Path, mirror: str) -> None:
    """Make the debootstrapped tree an image: slim, apt sources set, no host leftovers."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "var/log/*.log",
        "var/log/apt/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/groff/*",
        "usr/share/lintian/*",
        "usr/share/linda/*",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    for path in rootfs.glob("usr/share/locale/*"):
        if path.name != "locale.alias":
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    for doc in rootfs.glob("usr/share/doc/*"):
        if doc.is_dir() and not doc.is_symlink():
            for item in doc.iterdir():
                if item.name != "copyright":
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink()
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/emustudio-slim").write_text(_DPKG_SLIM)
    (rootfs / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(_APT_CLEAN)
    sources = [f"deb {mirror} {SUITE} main", f"deb {mirror} {SUITE}-updates main"]
    if mirror == DEFAULT_MIRROR:
        sources.append(f"deb {mirror}-security {SUITE}-security main")
    (rootfs / "etc/apt/sources.list").write_text("\n".join(sources) + "\n")
    # Docker provides these per container.
    for name in ("etc/hostname", "etc/resolv.conf"):
        (rootfs / name).unlink(missing_ok=True)
