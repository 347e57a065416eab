"""A data engineer's first session, in a real browser (Debian's Chromium, through Playwright).

Sign in at the Studio URL, create a Workspace, watch it start, open JupyterLab through the
gateway, make a notebook and run ``1+1``; then stop the Workspace, start it again and find it in
the Studio's other Availability Zone (the Studio has a subnet in each of two).

Needs Docker, the Workspace image (built here through ``emustudio.runtime.images`` when missing
or stale, as ``emustudio images build`` does) and ``/usr/bin/chromium`` (scripts/setup installs
it). Playwright drives that browser; it never downloads one of its own.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import PASSWORD, Users, allow, studio_arn
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args

START_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module", autouse=True)
def workspace_image() -> str:
    """The Workspace image the gateway runs (its default), built when missing or stale (a no-op
    when up to date)."""
    executor = DockerExecutor()
    try:
        images = Images(executor, pull_base=False)
        return asyncio.run(images.build_workspace(asyncio.run(images.bootstrap())))
    finally:
        executor.close()


@pytest.fixture(scope="module")
def two_zones(ec2: Any) -> StudioNetwork:
    net = make_studio_network(ec2, subnets=2)
    zones = {
        s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=net.subnet_ids)["Subnets"]
    }
    assert len(zones) == 2
    return net


def row_of(page: Any, editor_id: str) -> Any:
    return page.locator(f"#row-{editor_id}")


def wait_for_status(page: Any, editor_id: str, status: str) -> None:
    playwright_api.expect(row_of(page, editor_id).locator('[data-field="status"]')).to_have_text(
        status, timeout=START_TIMEOUT_MS
    )


def test_sign_in_create_start_open_run_stop_and_move(
    gateway: GatewayProcess, emr: Any, two_zones: StudioNetwork, chromium: Any, tmp_path: Path
) -> None:
    studio_id = emr.create_studio(**studio_args(two_zones, Name="browser-studio"))["StudioId"]
    user = Users(gateway).create(
        allow("elasticmapreduce:CreateStudioPresignedUrl", studio_arn(studio_id)),
        allow(
            [
                "elasticmapreduce:CreateEditor",
                "elasticmapreduce:DescribeEditor",
                "elasticmapreduce:ListEditors",
                "elasticmapreduce:StartEditor",
                "elasticmapreduce:StopEditor",
                "elasticmapreduce:DeleteEditor",
                "elasticmapreduce:OpenEditorInConsole",
            ]
        ),
    )
    studio_url = f"http://{studio_id.lower()}.emrstudio.localhost:{gateway.port}/"
    page = chromium.new_page()

    # Sign in at the Studio URL.
    page.goto(studio_url)
    assert "/signin" in page.url
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#signin button[type="submit"]')
    page.wait_for_url(studio_url)
    playwright_api.expect(page.locator(".who")).to_have_text(user)

    # Create a Workspace and watch it start.
    page.fill('#create input[name="name"]', "first-notebooks")
    page.click('#create button[type="submit"]')
    page.wait_for_url(studio_url)
    row = page.locator("tr[data-editor]").filter(has_text="first-notebooks")
    editor_id = row.get_attribute("data-editor")
    assert editor_id and re.fullmatch(r"e-[A-Z0-9]{25}", editor_id)
    playwright_api.expect(row_of(page, editor_id).locator('[data-field="reason"]')).not_to_be_empty(
        timeout=START_TIMEOUT_MS
    )
    wait_for_status(page, editor_id, "Ready")
    first_zone = row_of(page, editor_id).locator('[data-field="zone"]').inner_text()
    assert first_zone in ("us-east-1a", "us-east-1b")
    assert row_of(page, editor_id).locator('[data-field="subnet"]').inner_text() in (
        two_zones.subnet_ids
    )

    # Open JupyterLab through the gateway, make a notebook, run 1+1.
    with chromium.expect_page() as opened:
        row_of(page, editor_id).locator('[data-action="open"]').click()
    lab = opened.value
    lab.wait_for_url(re.compile(rf"/workspaces/{editor_id}/lab"), timeout=60_000)
    assert lab.url.startswith(studio_url.rstrip("/"))
    lab.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=90_000)
    notebook = lab.locator(".jp-NotebookPanel").first
    run_cell(lab, notebook, "1+1", expect="2", shots=tmp_path)

    # The path form, for clients that cannot resolve the Studio's host: the same Workspace.
    path_form = chromium.new_page()
    base = f"http://localhost:{gateway.port}/studios/{studio_id}"
    path_form.goto(f"{base}/")
    assert "/signin" in path_form.url
    path_form.fill('input[name="username"]', user)
    path_form.fill('input[name="password"]', PASSWORD)
    path_form.click('#signin button[type="submit"]')
    path_form.wait_for_url(f"{base}/")
    path_form.goto(f"{base}/workspaces/{editor_id}/lab")
    path_form.wait_for_url(f"http://localhost:{gateway.port}/workspaces/{editor_id}/lab*")
    playwright_api.expect(
        path_form.locator(".jp-DirListing-itemName").filter(has_text="Untitled.ipynb")
    ).to_be_visible(timeout=60_000)
    path_form.close()

    # Stop it, start it again: it comes back in the other Availability Zone.
    page.reload()
    row_of(page, editor_id).locator('[data-action="stop"]').click()
    page.locator("#confirm-stop").click()
    page.wait_for_url(studio_url)
    wait_for_status(page, editor_id, "Idle")
    # The notebook's tab, still open, says that the Workspace was stopped and leads back to the
    # Studio (jupyter_ext's lab extension), not that its kernel died.
    stopped = lab.get_by_role("alertdialog", name="This Workspace was stopped")
    playwright_api.expect(stopped).to_be_visible(timeout=60_000)
    playwright_api.expect(stopped).to_contain_text("Start it again from the Studio")
    playwright_api.expect(stopped.get_by_role("link", name="Back to the Studio")).to_have_attribute(
        "href", "/"
    )
    lab.wait_for_timeout(3_000)  # JupyterLab's own reaction to the closed kernel comes by now
    playwright_api.expect(
        lab.get_by_text(re.compile("Kernel died|kernel appears to have died"))
    ).to_have_count(0)
    dialogs = lab.locator(".jp-Dialog")
    assert dialogs.count() == 0, dialogs.all_inner_texts()
    stopped.get_by_role("link", name="Back to the Studio").click()
    lab.wait_for_url(studio_url)
    lab.close()
    row_of(page, editor_id).locator('[data-action="start"]').click()
    page.wait_for_url(studio_url)
    wait_for_status(page, editor_id, "Ready")
    second_zone = row_of(page, editor_id).locator('[data-field="zone"]').inner_text()
    assert second_zone in ("us-east-1a", "us-east-1b")
    assert second_zone != first_zone

    # Delete it: the row goes.
    row_of(page, editor_id).locator('[data-action="delete"]').click()
    playwright_api.expect(page.locator("#backup-location")).to_contain_text(editor_id)
    page.locator("#confirm-delete").click()
    page.wait_for_url(studio_url)
    playwright_api.expect(row_of(page, editor_id)).to_have_count(0, timeout=60_000)


def run_cell(lab: Any, notebook: Any, code: str, *, expect: str, shots: Path) -> None:
    """Type ``code`` into the notebook's first cell, run it, and wait for ``expect``.

    JupyterLab runs nothing while the notebook has no kernel yet (a cell run then is cleared
    and skipped), so wait for the kernel to be connected and idle, and run again if the first
    run was skipped.
    """
    playwright_api.expect(lab.get_by_text(re.compile(r"\| Idle$"))).to_be_visible(timeout=90_000)
    cell = notebook.locator(".jp-Cell").first
    editor = cell.locator(".cm-content")
    editor.click()
    editor.fill(code)
    playwright_api.expect(editor).to_have_text(code)
    output = notebook.locator(".jp-OutputArea-output").filter(
        has_text=re.compile(rf"^\s*{re.escape(expect)}\s*$")
    )
    for attempt in range(3):
        cell.locator(".cm-content").press("Control+Enter")  # run in place
        try:
            playwright_api.expect(output).to_be_visible(timeout=20_000 if attempt < 2 else 60_000)
            return
        except AssertionError:
            prompt = cell.locator(".jp-InputPrompt").inner_text()
            if "*" in prompt:  # running: give it the time it needs
                playwright_api.expect(output).to_be_visible(timeout=60_000)
                return
    lab.screenshot(path=str(shots / "notebook.png"))
    raise AssertionError(f"{code!r} gave no {expect!r}; see {shots / 'notebook.png'}")
