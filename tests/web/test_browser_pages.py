"""The Studio, the console and the IdP as a person uses them, in Chromium (Playwright driving
Debian's ``/usr/bin/chromium``), against one gateway with ``emustudio up``'s demo: each rough
edge a new user hit (issue 11), checked the way that person would see it, the administrator's
round trip (create an SSO Studio, assign a group, a member signs in), and axe-core's
accessibility check of every page (no serious or critical violation).

Workspaces here are store rows (``Rows``), not containers: the pages, not JupyterLab, are
under test. Screenshots of the main pages are ``scripts/screenshots``'s job.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from emustudio.testing.gateway import GatewayProcess
from tests.web.conftest import Rows

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ADMIN = ("admin", "Change-me-admin-1")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProcess]:
    gw = GatewayProcess(env={"EMUSTUDIO_DEMO": "true"})
    try:
        yield gw.start(timeout=120)
    finally:
        gw.close()


@pytest.fixture(scope="module")
def demo(gateway: GatewayProcess) -> dict[str, str]:
    studios = gateway.client("emr").list_studios()["Studios"]
    return {
        "iam": next(s["StudioId"] for s in studios if s["Name"] == "Demo"),
        "sso": next(s["StudioId"] for s in studios if s["Name"] == "Demo (Identity Center)"),
    }


@pytest.fixture(scope="module")
def rows(gateway: GatewayProcess) -> Iterator[Rows]:
    made = Rows(gateway)
    yield made
    made.close()


def base(gateway: GatewayProcess) -> str:
    return f"http://localhost:{gateway.port}"


def studio_url(gateway: GatewayProcess, studio_id: str) -> str:
    return f"http://{studio_id.lower()}.emrstudio.localhost:{gateway.port}"


def idp_sign_in(page: Any, user: str) -> None:
    page.wait_for_url(re.compile(r"/idp/login"))
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', f"change-me-{user}")
    page.click('#idp-login button[type="submit"]')


def console_sign_in(page: Any, gateway: GatewayProcess, user: str, password: str) -> None:
    page.goto(f"{base(gateway)}/console/signin")
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', password)
    page.click('#signin button[type="submit"]')
    page.wait_for_url(f"{base(gateway)}/console")


def axe_check(page: Any) -> None:
    """axe-core on the page as it is: no serious or critical violation."""
    assert AXE.is_file(), "axe-core is missing: run scripts/setup (npm ci in tests/web/axe)"
    # Evaluated through the DevTools protocol: the pages' CSP (script-src 'self') rightly
    # refuses an injected <script>.
    page.evaluate(AXE.read_text() + "\n;undefined")
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}:\n" + "\n".join(bad)


def rgb(value: str) -> tuple[float, ...]:
    return tuple(float(x) for x in re.findall(r"[\d.]+", value)[:3])


def luminance(colour: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def background_of(locator: Any) -> str:
    """The first non-transparent background colour at or above the element."""
    return str(
        locator.evaluate(
            """el => { for (; el; el = el.parentElement) {
                 const c = getComputedStyle(el).backgroundColor;
                 if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; }
               return 'rgb(255, 255, 255)'; }"""
        )
    )


# --- the landing page, the favicon, and the SDKs' answers at / ---------------------------------


def test_a_browser_at_the_root_gets_the_start_page_with_every_door(
    gateway: GatewayProcess, chromium: Any
) -> None:
    page = chromium.new_page()
    response = page.goto(f"{base(gateway)}/")
    assert response.status == 200
    expect(page.get_by_role("heading", name=re.compile("EMR Studio"))).to_be_visible()
    expect(page.locator("#door-console a")).to_have_attribute("href", "/console")
    expect(page.locator("#door-idp a")).to_have_attribute("href", "/idp/portal")
    expect(page.locator("#endpoint")).to_have_text(base(gateway))
    axe_check(page)
    # Every host has the icon, a Studio's too (Chromium resolves *.localhost itself).
    for host in (base(gateway), studio_url(gateway, "es-" + "A" * 25)):
        icon = page.goto(f"{host}/favicon.ico")
        assert icon.status == 200 and "icon" in icon.headers["content-type"]


def test_sdk_requests_to_the_root_keep_aws_answers(gateway: GatewayProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.request("GET", "/", headers={"Host": f"localhost:{gateway.port}"})
        answer = conn.getresponse()
        body = answer.read().decode()
    finally:
        conn.close()
    assert answer.status in (400, 403)
    assert "MissingAuthenticationToken" in body and "<html" not in body.lower()


# --- the IdP portal, sign-out and signing in as someone else -------------------------------------


def test_portal_links_are_visible_against_their_background(
    gateway: GatewayProcess, chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(f"{base(gateway)}/idp/portal")
    idp_sign_in(page, "alice")
    page.wait_for_url(re.compile(r"/idp/portal$"))
    links = page.locator("main button.link")
    assert links.count() >= 2
    for i in range(links.count()):
        link = links.nth(i)
        colour = rgb(link.evaluate("el => getComputedStyle(el).color"))
        assert contrast(colour, rgb(background_of(link))) >= 4.5, link.inner_text()
    axe_check(page)


def test_sign_out_then_sign_in_as_someone_else(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    studio = studio_url(gateway, demo["iam"])
    page = chromium.new_page()
    page.goto(f"{studio}/")
    idp_sign_in(page, "alice")
    page.wait_for_url(f"{studio}/")
    expect(page.locator(".who")).to_have_text("alice")
    expect(page.locator("#user-role")).to_have_text("role StudioAnalyst")

    # Signed out, the Studio does not sign anyone straight back in: it offers the IdP's
    # sign-out too, which asks, then comes back to the Studio's sign-in.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{studio}/signin?signed_out=1")
    expect(page.locator("#signed-out")).to_have_text("You signed out.")
    axe_check(page)
    page.locator("#switch-user").click()
    page.wait_for_url(re.compile(r"/idp/logout\?"))
    axe_check(page)
    page.locator("#idp-signout").click()
    expect(
        page.get_by_role("heading", name=re.compile("signed out of the identity"))
    ).to_be_visible()
    page.locator("#continue").click()
    idp_sign_in(page, "bob")
    page.wait_for_url(f"{studio}/")
    expect(page.locator(".who")).to_have_text("bob")
    expect(page.locator("#user-role")).to_have_text("role StudioAdmin")


def test_a_refused_user_may_sign_in_as_someone_else(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    studio = studio_url(gateway, demo["sso"])
    page = chromium.new_page()
    page.goto(f"{studio}/")
    idp_sign_in(page, "bob")  # in no group mapped to the Identity Center Studio
    expect(page.get_by_role("heading", name=re.compile("sign-in refused"))).to_be_visible()
    axe_check(page)
    page.locator("#switch-user").click()
    page.locator("#idp-signout").click()
    page.goto(f"{studio}/")
    idp_sign_in(page, "alice")
    page.wait_for_url(f"{studio}/")
    expect(page.locator(".who")).to_have_text("alice")


# --- the Workspace table, delete, forms, errors, credentials -------------------------------------


def signed_in_alice(gateway: GatewayProcess, studio_id: str, chromium: Any) -> Any:
    page = chromium.new_page()
    page.goto(f"{studio_url(gateway, studio_id)}/")
    idp_sign_in(page, "alice")
    page.wait_for_url(f"{studio_url(gateway, studio_id)}/")
    return page


def test_workspace_table_search_filter_sort_pages_and_creator(
    gateway: GatewayProcess, demo: dict[str, str], rows: Rows, chromium: Any
) -> None:
    made = [
        rows.add(demo["iam"], endpoint=None, status="Idle" if i % 3 else "Ready", name=f"t-{i:02d}")
        for i in range(12)
    ]
    page = signed_in_alice(gateway, demo["iam"], chromium)
    table = page.locator("#workspaces")
    headers = table.locator("thead th")
    assert "Progress" not in headers.all_inner_texts()
    expect(headers.filter(has_text="Created by")).to_have_count(1)
    expect(page.locator(f"#row-{made[0]} [data-field='creator']")).to_have_text("root")

    visible = table.locator("tbody tr:visible")
    expect(visible).to_have_count(10)  # a page of ten
    page.get_by_role("button", name="Next page").click()
    expect(visible).to_have_count(2)
    page.get_by_role("button", name="Previous page").click()

    page.get_by_label("Search workspaces").fill("t-07")
    expect(visible).to_have_count(1)
    expect(visible.first).to_contain_text("t-07")
    page.get_by_label("Search workspaces").fill("")

    page.get_by_label("Status").select_option("Ready")
    expect(visible).to_have_count(4)
    page.get_by_label("Status").select_option("")

    name_header = table.locator("thead th").first
    name_header.get_by_role("button").click()
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    name_header.get_by_role("button").click()
    expect(name_header).to_have_attribute("aria-sort", "descending")
    expect(visible.first.locator(".name")).to_have_text("t-11")
    axe_check(page)

    # Narrow: nothing wider than the window.
    for width in (760, 360):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_delete_asks_and_says_where_the_notebooks_stay(
    gateway: GatewayProcess, demo: dict[str, str], rows: Rows, chromium: Any
) -> None:
    editor_id = rows.add(demo["iam"], endpoint=None, status="Idle", name="to-delete")
    page = signed_in_alice(gateway, demo["iam"], chromium)
    page.get_by_label("Search workspaces").fill("to-delete")  # past the first page
    page.locator(f"#row-{editor_id} [data-action='delete']").click()
    expect(page.get_by_role("heading", name="Delete Workspace to-delete?")).to_be_visible()
    expect(page.locator("#where-notebooks-stay")).to_contain_text("not")
    expect(page.locator("#backup-location")).to_have_text(f"s3://bucket/ws/{editor_id}/")
    axe_check(page)
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator(f"#row-{editor_id}")).to_have_count(1)  # nothing happened
    page.get_by_label("Search workspaces").fill("to-delete")
    page.locator(f"#row-{editor_id} [data-action='delete']").click()
    page.locator("#confirm-delete").click()
    page.wait_for_url(f"{studio_url(gateway, demo['iam'])}/")
    expect(page.locator(f"#row-{editor_id}")).to_have_count(0, timeout=30_000)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "   ", "Name must not be empty"),
        ("name", "n" * 400, "Member must have length less than or equal to 256"),
        ("s3_location", "bucket/no-scheme", "is not a valid Amazon S3 location"),
    ],
)
def test_form_errors_show_beside_the_field_and_keep_the_form(
    gateway: GatewayProcess,
    demo: dict[str, str],
    chromium: Any,
    field: str,
    value: str,
    message: str,
) -> None:
    page = signed_in_alice(gateway, demo["iam"], chromium)
    page.fill("#ws-name", "kept-name" if field != "name" else value)
    page.fill("#ws-description", "kept description")
    if field != "name":
        page.fill(f"#ws-{field}", value)
    page.click('#create button[type="submit"]')
    beside = page.locator(f"#ws-{field}-error")
    expect(beside).to_contain_text(message)
    expect(page.locator(f"#ws-{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ws-description")).to_have_value("kept description")
    expect(page.locator("#error")).to_have_count(0)  # not a raw banner
    axe_check(page)


def test_error_pages_have_their_way_forward(
    gateway: GatewayProcess, demo: dict[str, str], rows: Rows, chromium: Any
) -> None:
    studio = studio_url(gateway, demo["iam"])
    page = signed_in_alice(gateway, demo["iam"], chromium)

    missing = page.goto(f"{studio}/no/such/page")
    assert missing.status == 404
    expect(page.locator("#back")).to_have_attribute("href", "/")
    expect(page.locator("nav.sidenav")).to_be_visible()  # in the shell
    axe_check(page)

    stopped = rows.add(demo["iam"], endpoint=None, status="Idle", name="stopped")
    answer = page.goto(f"{studio}/workspaces/{stopped}/lab")
    assert answer.status == 409
    expect(page.get_by_role("heading", name="Workspace not running")).to_be_visible()
    axe_check(page)
    page.locator("#start-workspace").click()
    expect(page.get_by_role("heading", name="Start Workspace stopped?")).to_be_visible()
    page.goto(f"{studio}/workspaces/{stopped}/lab")
    page.locator("#back").click()
    page.wait_for_url(f"{studio}/")

    # 403: a console user who may not list Studios.
    iam = gateway.client("iam")
    iam.create_user(UserName="nobody")
    iam.create_login_profile(UserName="nobody", Password="Nobody-pass-1")
    console = chromium.new_page()
    console_sign_in(console, gateway, "nobody", "Nobody-pass-1")
    refused = console.goto(f"{base(gateway)}/console/studios")
    assert refused.status == 403
    expect(console.locator("#error")).to_contain_text("elasticmapreduce:ListStudios")
    expect(console.locator("#back")).to_have_attribute("href", "/console")
    expect(console.locator("#switch-user")).to_be_visible()
    axe_check(console)


def test_credentials_page_fits_copies_and_points_at_the_emulator(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    page = signed_in_alice(gateway, demo["iam"], chromium)
    page.get_by_role("link", name="AWS credentials").click()
    exports = page.locator("#exports")
    expect(exports).to_contain_text(f"export AWS_ENDPOINT_URL=http://localhost:{gateway.port}")
    expect(exports).to_contain_text("export AWS_DATA_PATH=")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    chromium.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copied")).to_have_text("Copied")
    pasted = page.evaluate("navigator.clipboard.readText()")
    assert "AWS_SESSION_TOKEN=" in pasted and "AWS_ENDPOINT_URL=" in pasted
    axe_check(page)


# --- the console: an administrator's round trip -------------------------------------------------


def test_admin_creates_an_sso_studio_assigns_a_group_and_a_member_signs_in(
    gateway: GatewayProcess, chromium: Any
) -> None:
    page = chromium.new_page()
    console_sign_in(page, gateway, *ADMIN)
    page.get_by_role("navigation", name="EMR console").get_by_role("link", name="Studios").click()
    page.wait_for_url(f"{base(gateway)}/console/studios")
    expect(page.locator("#studio-list tbody tr").filter(has_text="Demo")).to_have_count(2)
    axe_check(page)

    page.locator("#create-studio").click()
    page.fill("#f-name", "Team SSO")
    page.fill("#f-s3_location", "s3://emustudio/team-sso")
    page.get_by_label("IAM Identity Center (users and groups)").check()
    page.locator("#f-vpc_id").select_option(index=1)
    boxes = page.locator('#subnet-choices input[name="subnets"]:visible')
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.locator("#f-workspace_sg").select_option(index=1)
    page.locator("#f-engine_sg").select_option(index=1)
    page.locator("#f-service_role").select_option(label="EMRStudio_Service_Role")
    page.locator("#f-user_role").select_option(label="EMRStudio_User_Role")
    axe_check(page)
    page.get_by_role("button", name="Create Studio").click()
    page.wait_for_url(re.compile(r"/console/studios/es-[A-Z0-9]{25}$"))
    expect(page.locator("#auth-mode")).to_have_text("IAM Identity Center")
    url = page.locator("#studio-url").inner_text()
    assert re.fullmatch(r"http://es-[a-z0-9]{25}\.emrstudio\.localhost:\d+", url, re.I)
    expect(page.locator("#no-mappings")).to_be_visible()

    page.locator("#m-identity").select_option(label="analysts")
    page.locator("#m-policy").select_option(label="EmuStudioDemoSessionPolicy")
    page.get_by_role("button", name="Assign").click()
    expect(page.locator('#mapping-list tr[data-identity="analysts"]')).to_be_visible()
    axe_check(page)

    # The API agrees: made by admin, in CloudTrail as admin.
    trail = gateway.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateStudio"}]
    )["Events"]
    assert any(e.get("Username") == "admin" for e in trail)

    # A member of the group signs in at the new Studio's URL.
    chromium.clear_cookies()  # the admin's console session goes: a new person at the keyboard
    other = chromium.new_page()
    other.goto(f"{url}/")
    idp_sign_in(other, "alice")
    other.wait_for_url(f"{url.lower()}/")
    expect(other.locator(".who")).to_have_text("alice")
    expect(other.get_by_role("heading", name=re.compile("Workspaces"))).to_be_visible()


def test_console_and_studio_details_pass_the_accessibility_check(
    gateway: GatewayProcess, demo: dict[str, str], chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(f"{base(gateway)}/console/signin")
    axe_check(page)
    console_sign_in(page, gateway, *ADMIN)
    axe_check(page)  # the Studios the admin may open
    page.goto(f"{base(gateway)}/console/studios/{demo['sso']}")
    axe_check(page)
    page.goto(f"{base(gateway)}/console/studios/{demo['iam']}/delete")
    expect(page.locator("#where-notebooks-stay")).to_contain_text("s3://")
    axe_check(page)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base(gateway)}/console/signin?signed_out=1")
    expect(page.locator("#idp-signout-offer a")).to_have_attribute(
        "href", f"{base(gateway)}/idp/logout?return=/console/signin"
    )
    axe_check(page)
    studio = signed_in_alice(gateway, demo["iam"], chromium)
    studio.get_by_role("link", name="Studio details").click()
    expect(studio.locator("#studio-url")).to_have_text(
        re.compile(re.escape(studio_url(gateway, demo["iam"])), re.IGNORECASE)
    )
    axe_check(studio)
    studio.goto(f"{base(gateway)}/idp/login")
    axe_check(studio)
