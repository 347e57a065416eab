"""Fixtures for the Studio web side: the cookie-keeping client (`emustudio.testing.pages`), IAM
users with console passwords (`emustudio.testing.iam`), Studios, and Workspace rows pointing at
a loopback listener that counts every connection it gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emustudio.testing.browser import ChromiumMissing, fresh_context
from emustudio.testing.browser import chromium_browser as chromium_browser_of_debian
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import Users
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args
from tests.web.doubles import Rows, Upstream


@pytest.fixture(scope="module")
def users(gateway: GatewayProcess) -> Users:
    return Users(gateway)


@pytest.fixture(scope="module")
def net(ec2: Any) -> StudioNetwork:
    return make_studio_network(ec2, subnets=2)


@pytest.fixture(scope="module")
def studios(emr: Any, net: StudioNetwork) -> dict[str, str]:
    """Two IAM-mode Studios, A (tagged team=data) and B (team=ml)."""
    return {
        key: emr.create_studio(
            **studio_args(net, Name=f"studio-{key}", Tags=[{"Key": "team", "Value": team}])
        )["StudioId"]
        for key, team in (("A", "data"), ("B", "ml"))
    }


@pytest.fixture
def browser(gateway: GatewayProcess) -> Browser:
    return Browser(gateway.port)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def rows(gateway: GatewayProcess) -> Iterator[Rows]:
    made = Rows(gateway)
    yield made
    made.close()


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, launched once a module: a launch costs a second or
    more, a new context of a running browser a tenth of that. Not once a session: Playwright's
    sync API keeps an event loop running while its browser lives, which asyncio tests of other
    modules must not meet."""
    try:
        with chromium_browser_of_debian() as browser:
            yield browser
    except ChromiumMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def chromium(chromium_browser: Any) -> Iterator[Any]:
    """A new context of the module's Chromium for the test: it shares no cookies, storage,
    cache or permissions with any other, as the plugin's ``emu_chromium`` (a fresh profile)."""
    with fresh_context(chromium_browser) as context:
        yield context
