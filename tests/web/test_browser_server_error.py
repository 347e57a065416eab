"""A real fault behind a Studio page, in Chromium: the gateway's store is locked by another
process (as a second gateway or a backup tool on the same data directory would lock it), so
signing in cannot write its session. The person gets the readable 5xx page in the page shell,
with its way forward (back to the Studio, try again) and no stack trace; once the store is free
the way forward works. The module has a gateway of its own: the fault must not reach others.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import PASSWORD, Users, allow, studio_arn
from emustudio.testing.vpc import make_studio_network, studio_args
from tests.web.test_browser_pages import axe_check

expect = playwright_api.expect


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return {}  # a gateway of this module's own


@pytest.fixture
def locked_store(gateway: GatewayProcess) -> Iterator[sqlite3.Connection]:
    """Another process's write lock on the gateway's SQLite store, held until released."""
    db = sqlite3.connect(gateway.data_dir / "emustudio.db", timeout=30, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield db
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()


def test_a_store_fault_gives_the_readable_5xx_page_with_its_way_forward(
    gateway: GatewayProcess, emr: Any, ec2: Any, chromium: Any, locked_store: sqlite3.Connection
) -> None:
    locked_store.execute("ROLLBACK")  # set up first, then lock again below
    studio_id = emr.create_studio(**studio_args(make_studio_network(ec2), Name="faulty"))[
        "StudioId"
    ]
    user = Users(gateway).create(
        allow("elasticmapreduce:CreateStudioPresignedUrl", studio_arn(studio_id)),
        allow(["elasticmapreduce:ListEditors", "elasticmapreduce:DescribeEditor"]),
    )
    home = f"http://{studio_id.lower()}.emrstudio.localhost:{gateway.port}/"
    page = chromium.new_page()
    page.goto(home)
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)

    locked_store.execute("BEGIN EXCLUSIVE")
    with page.expect_response(lambda r: r.request.method == "POST") as answered:
        page.click('#signin button[type="submit"]')
    assert answered.value.status == 500
    # The page shell (navigation of the Studio's site, header), the reason in words...
    expect(page.get_by_role("heading", level=1)).to_have_text("500 Internal Server Error")
    expect(page.locator("#error-page")).to_contain_text("The gateway could not answer")
    expect(page.locator("header.bar")).to_be_visible()
    expect(page.locator("nav.sidenav")).to_contain_text("Workspaces")
    # ...and no stack trace or internals.
    content = page.content()
    for leak in ("Traceback", 'File "', "sqlite", "OperationalError", "database is locked"):
        assert leak not in content, leak
    back = page.locator("#way-forward #back")
    expect(back).to_have_attribute("href", "/")
    expect(page.locator("#way-forward #retry")).to_be_visible()
    axe_check(page)

    # The fault passes; the way forward leads back in.
    locked_store.execute("ROLLBACK")
    back.click()
    page.wait_for_url(f"{home}signin?next=%2F")
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#signin button[type="submit"]')
    page.wait_for_url(home)
    expect(page.locator(".who")).to_have_text(user)
    assert "database is locked" in gateway.log()  # the log, not the page, says why
