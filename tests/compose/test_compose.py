"""``compose/docker-compose.yml``, brought up as a user does, with Debian's ``docker-compose``.

No registry is reachable here, so the stack runs with the substitutes the compose file is made
for: the gateway image built on ``emustudio/base:bookworm`` (bootstrapped from Debian when
missing) and ``compose/s3-local`` (rclone from PyPI) in place of ``minio/minio``. The stack runs
from a copy of the checkout (what a clean clone holds), under its own project name, instance id,
container name and published port, so that it shares the Docker host with test gateways and a
developer's ``emustudio up``. Then, through the published port only: AWS calls with boto3, a
Studio's URL, and a Workspace reached through the gateway container on the subnet networks it
joined. ``down -v`` and the removal of what the gateway made (by its instance label) end it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import HOST_CA_BUNDLE, Images
from emustudio.testing.clients import boto3_client
from emustudio.testing.gateway import free_port

pytestmark = pytest.mark.timeout(1800)  # a cold machine builds three images first

ROOT = Path(__file__).resolve().parents[2]
S3_IMAGE = "emustudio/s3-local:latest"
ROOT_KEY = "test"
PASSWORD = "Compose-Test-9-Password"
# What a clean clone does not hold (as .gitignore and .dockerignore say).
SKIP = {".git", ".venv", "__pycache__", ".hypothesis", ".mypy_cache", ".pytest_cache"}
SKIP |= {".ruff_cache", "node_modules", "build", "dist"}


def copy_checkout(dest: Path) -> Path:
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP or n.endswith((".egg-info", ".pyc"))}

    shutil.copytree(ROOT, dest, ignore=ignore)
    # This host reaches PyPI through whatever its own CA bundle trusts: the builds must too.
    if HOST_CA_BUNDLE.is_file():
        shutil.copy(HOST_CA_BUNDLE, dest / "compose" / "ca-certificates" / "build-host.crt")
    return dest


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        )
    return done.stdout


@dataclass
class Stack:
    source: Path
    project: str
    port: int
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def gateway_container(self) -> str:
        return f"{self.project}-gateway"

    @property
    def endpoint_url(self) -> str:
        return f"http://localhost:{self.port}"

    def compose(self, *args: str, timeout: float = 900) -> str:
        return run(
            "docker-compose",
            "-p",
            self.project,
            "-f",
            str(self.source / "compose" / "docker-compose.yml"),
            *args,
            env=self.env,
            timeout=timeout,
        )

    def logs(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", "200", timeout=60)
        except AssertionError as exc:
            return str(exc)

    def client(self, service: str, **kwargs: Any) -> Any:
        return boto3_client(
            service,
            self.endpoint_url,
            aws_access_key_id=kwargs.pop("aws_access_key_id", ROOT_KEY),
            aws_secret_access_key=kwargs.pop("aws_secret_access_key", ROOT_KEY),
            **kwargs,
        )


def wait_healthy(client: docker.DockerClient, stack: Stack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    status = "absent"
    while time.monotonic() < deadline:
        container = client.containers.get(stack.gateway_container)
        status = container.attrs["State"].get("Health", {}).get("Status", "none")
        if status == "healthy":
            return
        if container.status in ("exited", "dead"):
            break
        time.sleep(1)
    raise AssertionError(f"the gateway is {status}, not healthy:\n{stack.logs()}")


def remove_instance(client: docker.DockerClient, instance_id: str) -> None:
    label = {"label": [f"emustudio.instance={instance_id}"]}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for network in client.networks.list(filters=label):
        network.remove()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, base_image: str, docker_client: docker.DockerClient
) -> Iterator[Stack]:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed: scripts/setup installs it (Debian's v1)")
    started = time.monotonic()
    # The gateway builds the Workspace image on first use; built here on the same base and from
    # the same sources, it finds it up to date instead.
    executor = DockerExecutor()
    try:
        asyncio.run(Images(executor, pull_base=False).build_workspace(base_image))
    finally:
        executor.close()
    source = copy_checkout(tmp_path_factory.mktemp("compose") / "emustudio")
    run(
        "docker",
        "build",
        "-q",
        "-t",
        S3_IMAGE,
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "-f",
        str(source / "compose" / "s3-local" / "Dockerfile"),
        str(source / "compose"),
    )
    project = "emuci" + secrets.token_hex(4)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMUSTUDIO_", "COMPOSE_"))}
    env.update(
        EMUSTUDIO_BASE_IMAGE=base_image,
        EMUSTUDIO_S3_IMAGE=S3_IMAGE,
        EMUSTUDIO_PORT_PUBLISHED=str(port),
        EMUSTUDIO_GATEWAY_CONTAINER=f"{project}-gateway",
        EMUSTUDIO_INSTANCE_ID=project,
        # Test gateways hold the default VPC's CIDRs on this host: go elsewhere.
        EMUSTUDIO_NETWORK_REMAP="true",
    )
    made = Stack(source, project, port, env)
    made.timings["images"] = time.monotonic() - started
    try:
        made.compose("up", "-d", "--build")
        made.timings["up"] = time.monotonic() - started
        wait_healthy(docker_client, made)
        made.timings["healthy"] = time.monotonic() - started
        yield made
    finally:
        try:
            made.compose("down", "-v", "--remove-orphans", timeout=180)
        finally:
            remove_instance(docker_client, project)
    assert not docker_client.networks.list(filters={"label": [f"emustudio.instance={project}"]})


@dataclass
class StudioPieces:
    studio_id: str
    subnet_ids: list[str]
    url: str


@pytest.fixture(scope="module")
def studio(stack: Stack) -> StudioPieces:
    ec2, emr = stack.client("ec2"), stack.client("emr")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in ((1, "us-east-1a"), (2, "us-east-1b"))
    ]
    workspace_sg, engine_sg = (
        ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]
        for name in ("workspace", "engine")
    )
    created = emr.create_studio(
        Name="compose",
        AuthMode="IAM",
        VpcId=vpc_id,
        SubnetIds=subnet_ids,
        ServiceRole="arn:aws:iam::000000000000:role/EMRStudio_Service_Role",
        WorkspaceSecurityGroupId=workspace_sg,
        EngineSecurityGroupId=engine_sg,
        DefaultS3Location="s3://emustudio/workspaces",
    )
    return StudioPieces(created["StudioId"], subnet_ids, created["Url"])


class StudioBrowser:
    """A browser on a Studio's host: connects to 127.0.0.1, names the Studio in ``Host``
    (``*.localhost`` names resolve to loopback in browsers, not always in libc)."""

    def __init__(self, port: int, studio_id: str) -> None:
        self.port = port
        self.host = f"{studio_id.lower()}.emrstudio.localhost:{port}"
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": self.host, "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, dict(response.headers.items()), text
        finally:
            conn.close()

    def sign_in(self, user: str, password: str) -> int:
        status, _, page = self.request("GET", "/signin")
        assert status == 200, page
        match = re.search(r'name="_xsrf" value="([^"]+)"', page)
        assert match, page
        form = {"_xsrf": match.group(1), "username": user, "password": password, "next": "/"}
        return self.request("POST", "/signin", form)[0]


def test_the_gateway_is_healthy_on_the_published_port(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    with urllib.request.urlopen(f"{stack.endpoint_url}/_emustudio/health", timeout=5) as r:
        assert r.status == 200
    zones = stack.client("ec2").describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    # The default VPC's subnet networks are joined by the gateway's container already.
    container = docker_client.containers.get(stack.gateway_container)
    joined = container.attrs["NetworkSettings"]["Networks"]
    assert sum(name.startswith(f"emustudio-{stack.project}-") for name in joined) == 3
    print(f"compose stack timings (s): {json.dumps(stack.timings)}")


def test_a_studio_made_with_boto3_answers_at_its_url(stack: Stack, studio: StudioPieces) -> None:
    described = stack.client("emr").describe_studio(StudioId=studio.studio_id)["Studio"]
    assert described["Name"] == "compose"
    assert described["SubnetIds"] == studio.subnet_ids
    assert described["Url"] == studio.url
    assert studio.url == f"http://{studio.studio_id}.emrstudio.localhost:{stack.port}"

    browser = StudioBrowser(stack.port, studio.studio_id)
    status, headers, _ = browser.request("GET", "/")
    assert status == 302 and headers["Location"].startswith("/signin")
    status, _, page = browser.request("GET", headers["Location"])
    assert status == 200
    assert "Sign in to compose" in page


def test_a_workspace_is_reached_through_the_gateway_container(
    stack: Stack, studio: StudioPieces, docker_client: docker.DockerClient
) -> None:
    iam = stack.client("iam")
    user = "compose-" + secrets.token_hex(3)
    iam.create_user(UserName=user)
    iam.create_login_profile(UserName=user, Password=PASSWORD)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "elasticmapreduce:CreateStudioPresignedUrl",
                    "elasticmapreduce:OpenEditorInConsole",
                ],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="open", PolicyDocument=json.dumps(policy))

    editors = stack.client("emr-studio")
    editor_id = editors.create_editor(StudioId=studio.studio_id, Name="compose")["EditorId"]
    deadline = time.monotonic() + 600
    while (editor := editors.describe_editor(EditorId=editor_id)["Editor"])["Status"] != "Ready":
        assert editor["Status"] == "Starting", editor
        assert time.monotonic() < deadline, editor
        time.sleep(0.5)

    # The gateway's container is on the Workspace's subnet network, at an AWS-reserved address.
    network = f"emustudio-{stack.project}-{editor['SubnetId']}"
    gateway = docker_client.containers.get(stack.gateway_container)
    assert gateway.attrs["NetworkSettings"]["Networks"][network]["IPAddress"].endswith(".2")

    browser = StudioBrowser(stack.port, studio.studio_id)
    assert browser.sign_in(user, PASSWORD) == 303
    status, _, page = browser.request("GET", f"/workspaces/{editor_id}/lab")
    assert status == 200, page[:2000]
    assert "JupyterLab" in page

    editors.delete_editor(EditorId=editor_id)


def test_the_backup_bucket_is_made_on_the_s3_service(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    (s3,) = docker_client.containers.list(
        filters={"label": [f"com.docker.compose.project={stack.project}"], "name": "s3"}
    )
    code, listing = s3.exec_run(["ls", "/data"])
    assert code == 0 and "emustudio" in listing.decode().split()
