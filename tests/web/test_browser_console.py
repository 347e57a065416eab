"""The console in a real browser (Debian's Chromium, through Playwright): sign in as an IAM
user, find the Studio in the list, open it (signed in there as that user), sign out.

Needs ``/usr/bin/chromium`` (scripts/setup installs it) and Docker for the gateway; no
Workspace image. Playwright drives that browser; it never downloads one of its own.
"""

from __future__ import annotations

import re
from typing import Any

import playwright.sync_api as playwright_api

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import ACCOUNT, PASSWORD, Users, allow, studio_arn
from emustudio.testing.vpc import make_studio_network, studio_args


def test_console_sign_in_then_open_a_studio(
    gateway: GatewayProcess, emr: Any, ec2: Any, chromium: Any
) -> None:
    net = make_studio_network(ec2, subnets=2)
    studio_id = emr.create_studio(**studio_args(net, Name="console-studio"))["StudioId"]
    hidden = emr.create_studio(**studio_args(net, Name="not-yours"))["StudioId"]
    user = Users(gateway).create(
        allow("elasticmapreduce:CreateStudioPresignedUrl", studio_arn(studio_id)),
        allow(["elasticmapreduce:ListEditors", "elasticmapreduce:DescribeEditor"]),
    )
    console = f"http://localhost:{gateway.port}/console"
    studio_url = f"http://{studio_id.lower()}.emrstudio.localhost:{gateway.port}/"
    page = chromium.new_page()

    # Signed out, the console asks for a sign-in; the account comes filled in.
    page.goto(console)
    page.wait_for_url(f"{console}/signin")
    playwright_api.expect(page.locator('input[name="account"]')).to_have_value(ACCOUNT)
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#signin button[type="submit"]')
    page.wait_for_url(console)
    playwright_api.expect(page.locator(".who")).to_have_text(user)

    # The list: the Studio the user may open, not the other one.
    rows = page.locator("#studios tr[data-studio]")
    playwright_api.expect(rows).to_have_count(1)
    row = page.locator(f'tr[data-studio="{studio_id}"]')
    playwright_api.expect(row).to_contain_text(studio_id)
    playwright_api.expect(page.locator(f'tr[data-studio="{hidden}"]')).to_have_count(0)

    # Open it: the Studio's own host, signed in as the same user.
    row.get_by_role("link", name="console-studio").click()
    page.wait_for_url(studio_url)
    playwright_api.expect(page.locator(".who")).to_have_text(user)
    playwright_api.expect(page.locator(".studio-name")).to_have_text("console-studio")
    playwright_api.expect(
        page.get_by_role("heading", name=re.compile("Workspaces"))
    ).to_be_visible()

    # Back to the console (still signed in), then sign out of it.
    page.goto(console)
    playwright_api.expect(page.locator(".who")).to_have_text(user)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{console}/signin?signed_out=1")
    playwright_api.expect(page.locator("#signed-out")).to_have_text("You signed out.")
    page.goto(console)
    page.wait_for_url(f"{console}/signin")
    cookies = {c["name"]: c for c in chromium.cookies()}
    assert "emustudio-console" not in cookies
    # The Studio's own session is its own: signing out of the console leaves it.
    page.goto(studio_url)
    playwright_api.expect(page.locator(".who")).to_have_text(user)
