"""The pytest plugin: ``emu_`` fixtures backed by a real gateway and real Docker.

Installing emustudio registers it (entry point ``pytest11``): no conftest, no import. The
fixtures, from the bottom up:

``emu_gateway`` (session)
    A real gateway (``emustudio up``) in a child process for the whole test session: a free port,
    a temporary data directory, its own instance id, the embedded defaults (SQLite store; the
    S3 server the gateway starts itself, once emustudio has one), the Docker host of
    ``DOCKER_HOST``. Subnets whose CIDR is taken on the Docker host are remapped, so sessions
    run beside each other and beside ``emustudio up``. At the end of the session it stops, and
    every container and network labelled with its instance id is removed. A
    :class:`~emustudio.testing.GatewayProcess`: ``endpoint_url``, ``port``, ``client()``,
    ``cli_env()``, ``log()``...
``emu_boto3`` (session)
    A factory of boto3 clients signed as root: ``emu_boto3("emr")``, ``emu_boto3("ec2")``,
    ``emu_boto3("emr-studio")`` (the Workspace operations: emustudio's supplemental model is on
    the client's data path). Keyword arguments go to ``boto3.client``.
``emu_emr``, ``emu_ec2``
    ``emu_boto3("emr")`` and ``emu_boto3("ec2")``.
``emu_iam_user``
    A factory of IAM users: ``emu_iam_user(policy_document, ..., password=None, name=None)``
    makes a user with those inline policies (dicts or JSON) and an access key, and returns an
    :class:`~emustudio.testing.IamUser` (``name``, ``arn``, ``access_key_id``,
    ``secret_access_key``, ``password``, ``client(service)`` signed as the user). Its users are
    deleted after the test.
``emu_studio``
    An IAM-mode Studio on a fresh VPC (10.0.0.0/16) with one subnet in each of the region's
    first two Availability Zones and the Workspace and engine security groups: a
    :class:`~emustudio.testing.Studio` (``studio_id``, ``arn``, ``url``, ``vpc_id``,
    ``subnet_ids``, ``availability_zones``, ``workspace_security_group_id``,
    ``engine_security_group_id``, ``default_s3_location``). Deleted, VPC and all, after the test.
``emu_workspace``
    A Workspace of ``emu_studio``, started, once Ready: a :class:`~emustudio.testing.Workspace`
    (``editor_id``, ``studio_id``, ``description``: the ``DescribeEditor`` answer, ``status``,
    ``url``). The first one on a Docker host builds the Workspace image (minutes, once).
    Deleted after the test.
``emu_chromium``
    A Playwright browser context of Debian's Chromium (``/usr/bin/chromium``; Playwright
    downloads no browser) with a fresh profile, for driving a Studio's pages: ``page =
    emu_chromium.new_page(); page.goto(emu_studio.url)``. Fails when Chromium is missing.

Settings (``pytest.ini`` / ``[tool.pytest.ini_options]``):

``emu_gateway_env``
    Lines ``NAME=VALUE`` added to the gateway's environment (``EMUSTUDIO_*`` settings, e.g.
    ``EMUSTUDIO_WORKSPACE_IDLE_TIMEOUT=0``).
``emu_workspace_timeout``
    Seconds ``emu_workspace`` waits for Ready (default 600).

When a test that uses the gateway fails, its report gets a section "emustudio gateway log"
with what the gateway logged during that test.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Any

import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import (
    Boto3Factory,
    IamUser,
    IamUserFactory,
    Studio,
    Workspace,
    create_iam_user,
    create_studio,
    delete_iam_user,
    delete_studio,
    delete_workspace,
    start_workspace,
)

_GATEWAY = pytest.StashKey[GatewayProcess]()
_LOG_OFFSET = pytest.StashKey[int]()
_GATEWAY_ENV = pytest.StashKey[dict[str, str]]()
_LOG_SECTION = "emustudio gateway log"
_LOG_MAX_LINES = 300


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "emu_gateway_env",
        "NAME=VALUE lines added to the environment of the emu_gateway gateway",
        type="linelist",
        default=[],
    )
    parser.addini(
        "emu_workspace_timeout",
        "seconds emu_workspace waits for its Workspace to be Ready (default 600)",
        default="600",
    )


def pytest_configure(config: pytest.Config) -> None:
    env: dict[str, str] = {}
    for line in config.getini("emu_gateway_env"):
        name, sep, value = str(line).partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"emu_gateway_env: expected NAME=VALUE, got {line!r}")
        env[name.strip()] = value.strip()
    config.stash[_GATEWAY_ENV] = env
    timeout = config.getini("emu_workspace_timeout")
    try:
        float(timeout)
    except ValueError:
        raise pytest.UsageError(
            f"emu_workspace_timeout: expected seconds, got {timeout!r}"
        ) from None


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emu_gateway(pytestconfig: pytest.Config) -> Iterator[GatewayProcess]:
    """A real gateway for the test session; its Docker objects are removed at the end."""
    gateway = GatewayProcess(env=pytestconfig.stash[_GATEWAY_ENV])
    pytestconfig.stash[_GATEWAY] = gateway
    try:
        yield gateway.start()
    finally:
        try:
            gateway.close()
        finally:
            del pytestconfig.stash[_GATEWAY]


@pytest.fixture(scope="session")
def emu_boto3(emu_gateway: GatewayProcess) -> Boto3Factory:
    """Factory of root-signed boto3 clients: ``emu_boto3("emr")``, ``emu_boto3("emr-studio")``."""
    return emu_gateway.client


@pytest.fixture
def emu_emr(emu_boto3: Boto3Factory) -> Any:
    """A boto3 EMR client signed with the gateway's root credentials."""
    return emu_boto3("emr")


@pytest.fixture
def emu_ec2(emu_boto3: Boto3Factory) -> Any:
    """A boto3 EC2 client signed with the gateway's root credentials."""
    return emu_boto3("ec2")


@pytest.fixture
def emu_iam_user(emu_boto3: Boto3Factory) -> Iterator[IamUserFactory]:
    """Factory of IAM users with the given policy documents; deleted after the test."""
    made: list[str] = []

    def make(
        *policy_documents: Mapping[str, Any] | str,
        name: str | None = None,
        password: str | None = None,
    ) -> IamUser:
        user = create_iam_user(emu_boto3, *policy_documents, name=name, password=password)
        made.append(user.name)
        return user

    yield make
    for name in reversed(made):
        delete_iam_user(emu_boto3, name)


@pytest.fixture
def emu_studio(emu_boto3: Boto3Factory) -> Iterator[Studio]:
    """An IAM-mode Studio on a new VPC with subnets in two Availability Zones."""
    studio = create_studio(emu_boto3)
    yield studio
    delete_studio(emu_boto3, studio)


@pytest.fixture
def emu_workspace(
    emu_boto3: Boto3Factory,
    emu_studio: Studio,
    emu_gateway: GatewayProcess,
    pytestconfig: pytest.Config,
) -> Iterator[Workspace]:
    """A Workspace of ``emu_studio``, Ready; deleted after the test."""
    editors = emu_boto3("emr-studio")
    workspace = start_workspace(
        editors,
        emu_studio.studio_id,
        timeout=float(pytestconfig.getini("emu_workspace_timeout")),
        on_failure=lambda: _log_tail(emu_gateway, 0, 60),
    )
    yield workspace
    delete_workspace(editors, workspace.editor_id)


@pytest.fixture
def emu_chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium browser context with a fresh profile; closed after the test."""
    from emustudio.testing.browser import ChromiumMissing, chromium_context

    try:
        with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
            yield context
    except ChromiumMissing as exc:
        pytest.fail(str(exc))


# -- the gateway's log in failure reports -----------------------------------------------------


def _log_size(gateway: GatewayProcess) -> int:
    try:
        return gateway.log_path.stat().st_size
    except OSError:
        return 0


def _log_tail(gateway: GatewayProcess, offset: int, max_lines: int = _LOG_MAX_LINES) -> str:
    try:
        with gateway.log_path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = [f"... ({len(lines) - max_lines} earlier lines)", *lines[-max_lines:]]
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    gateway = item.config.stash.get(_GATEWAY, None)
    item.stash[_LOG_OFFSET] = _log_size(gateway) if gateway is not None else 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "emu_gateway" in getattr(item, "fixturenames", ()):
        gateway = item.config.stash.get(_GATEWAY, None)
        if gateway is not None:
            text = _log_tail(gateway, item.stash.get(_LOG_OFFSET, 0))
            if text:
                report.sections.append((f"{_LOG_SECTION} ({report.when})", text))
    return report
