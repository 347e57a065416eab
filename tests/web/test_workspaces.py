"""The Studio's pages act as the signed-in user: what the list shows and what each button may
do is what the user's IAM policies allow, with AWS's own refusal shown as text.

These run without Workspace containers (rows are written to the store as in test_gate); the
start-to-JupyterLab path is the browser test's.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import Users, allow, editor_arn, studio_arn
from emustudio.testing.pages import Browser
from tests.web.doubles import Rows, Upstream

OPEN_STUDIO = "elasticmapreduce:CreateStudioPresignedUrl"


def alert(page_body: str) -> str:
    match = re.search(r'<p class="alert" role="alert" id="error">(.*?)</p>', page_body, re.S)
    assert match, f"no error shown:\n{page_body[:3000]}"
    return html.unescape(match.group(1))


@pytest.fixture(scope="module")
def editors(rows: Rows, upstream: Upstream, studios: dict[str, str]) -> dict[str, str]:
    a, b = studios["A"], studios["B"]
    endpoint = f"127.0.0.1:{upstream.port}"
    return {
        "mine": rows.add(a, endpoint=endpoint, name="mine-ws"),
        "theirs": rows.add(a, endpoint=endpoint, name="theirs-ws"),
        "idle": rows.add(a, endpoint=None, status="Idle", name="idle-ws"),
        "other-studio": rows.add(b, endpoint=endpoint, name="b-ws"),
    }


def signed_in(browser: Browser, studio_id: str, user: str) -> str:
    assert browser.sign_in(studio_id, user).status == 303
    return browser.host(studio_id)


def test_the_list_shows_only_workspaces_the_user_may_describe(
    browser: Browser, users: Users, studios: dict[str, str], editors: dict[str, str]
) -> None:
    user = users.create(
        allow(OPEN_STUDIO, studio_arn(studios["A"])),
        allow("elasticmapreduce:ListEditors"),
        allow(
            "elasticmapreduce:DescribeEditor",
            [editor_arn(editors["mine"]), editor_arn(editors["idle"])],
        ),
    )
    page = browser.get(signed_in(browser, studios["A"], user), "/")
    assert page.status == 200
    assert editors["mine"] in page.body and "mine-ws" in page.body
    assert editors["idle"] in page.body
    assert editors["theirs"] not in page.body and "theirs-ws" not in page.body
    assert editors["other-studio"] not in page.body  # another Studio's
    row = page.body[page.body.index(f'id="row-{editors["mine"]}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-field="zone">us-east-1a<' in row
    assert 'data-field="subnet">subnet-test<' in row
    assert ">Ready<" in row and 'data-action="open"' in row
    # Only what the user's policies allow is offered: no StopEditor, no Stop button.
    assert 'data-action="stop"' not in row and 'data-action="delete"' not in row
    idle = page.body[page.body.index(f'id="row-{editors["idle"]}"') :]
    idle = idle[: idle.index("</tr>")]
    assert 'data-action="open"' not in idle and 'data-action="start"' not in idle


def test_a_user_who_may_not_list_is_told_why(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    user = users.create(allow(OPEN_STUDIO))
    page = browser.get(signed_in(browser, studios["A"], user), "/")
    assert page.status == 200
    message = alert(page.body)
    assert message.startswith("AccessDeniedException: ")
    assert "is not authorized to perform: elasticmapreduce:ListEditors" in message


def test_create_is_refused_without_create_editor_and_keeps_the_draft(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    user = users.create(allow([OPEN_STUDIO, "elasticmapreduce:ListEditors"]))
    host = signed_in(browser, studios["A"], user)
    token = browser.get(host, "/").xsrf()
    answer = browser.post(
        host,
        "/console/workspaces",
        {"_xsrf": token, "name": "analysis", "description": "<b>draft</b>", "s3_location": ""},
    )
    assert answer.status == 403
    message = alert(answer.body)
    assert "is not authorized to perform: elasticmapreduce:CreateEditor" in message
    assert 'value="analysis"' in answer.body
    assert "&lt;b&gt;draft&lt;/b&gt;" in answer.body and "<b>draft</b>" not in answer.body


def test_create_validates_like_the_api(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    user = users.create(allow([OPEN_STUDIO, "elasticmapreduce:*"]))
    host = signed_in(browser, studios["A"], user)
    token = browser.get(host, "/").xsrf()
    answer = browser.post(
        host, "/console/workspaces", {"_xsrf": token, "name": "x", "description": "d" * 300}
    )
    assert answer.status == 400
    # Beside the field it is about, in the API's words, the form as it was sent.
    beside = re.search(
        r'<span class="field-error" id="ws-description-error">(.*?)</span>', answer.body
    )
    assert beside, answer.body[:3000]
    assert "at 'description' failed to satisfy constraint" in html.unescape(beside.group(1))
    assert 'value="x"' in answer.body and 'aria-invalid="true"' in answer.body


@pytest.mark.parametrize("action", ["start", "stop", "delete"])
def test_actions_are_authorized_as_the_user(
    browser: Browser,
    users: Users,
    studios: dict[str, str],
    editors: dict[str, str],
    action: str,
) -> None:
    user = users.create(allow([OPEN_STUDIO, "elasticmapreduce:ListEditors"]))
    host = signed_in(browser, studios["A"], user)
    token = browser.get(host, "/").xsrf()
    target = editors["idle"] if action == "start" else editors["mine"]
    answer = browser.post(host, f"/console/workspaces/{target}/{action}", {"_xsrf": token})
    assert answer.status == 403
    operation = {"start": "StartEditor", "stop": "StopEditor", "delete": "DeleteEditor"}[action]
    assert (
        f"is not authorized to perform: elasticmapreduce:{operation} on resource:"
        f" {editor_arn(target)}" in alert(answer.body)
    )


def test_an_invalid_action_reads_as_aws_says_it(
    browser: Browser, users: Users, studios: dict[str, str], editors: dict[str, str]
) -> None:
    user = users.create(allow([OPEN_STUDIO, "elasticmapreduce:*"]))
    host = signed_in(browser, studios["A"], user)
    token = browser.get(host, "/").xsrf()
    answer = browser.post(host, f"/console/workspaces/{editors['mine']}/start", {"_xsrf": token})
    message = alert(answer.body)
    # With the container runtime: it is Ready, not Idle; without: no runtime to start it.
    assert answer.status in (400, 501)
    assert "can be started only when Idle" in message or "container runtime" in message
    assert "Traceback" not in answer.body


def test_open_needs_open_editor_in_console_then_goes_through_the_proxy(
    browser: Browser, users: Users, studios: dict[str, str], editors: dict[str, str]
) -> None:
    denied = users.create(allow([OPEN_STUDIO, "elasticmapreduce:ListEditors"]))
    host = signed_in(browser, studios["A"], denied)
    answer = browser.get(host, f"/console/workspaces/{editors['mine']}/open")
    assert answer.status == 403
    assert "elasticmapreduce:OpenEditorInConsole" in alert(answer.body)

    allowed = users.create(allow([OPEN_STUDIO, "elasticmapreduce:OpenEditorInConsole"]))
    host = signed_in(browser, studios["A"], allowed)
    answer = browser.get(host, f"/console/workspaces/{editors['mine']}/open")
    assert answer.status == 302
    assert answer.location == f"/workspaces/{editors['mine']}/lab"
    assert browser.get(host, answer.location).body == "upstream-ok"
    idle = browser.get(host, f"/console/workspaces/{editors['idle']}/open")
    assert idle.status == 400
    assert "it can be opened only when Ready" in alert(idle.body)


def test_the_event_stream_reports_a_settled_workspace(
    browser: Browser, users: Users, studios: dict[str, str], editors: dict[str, str]
) -> None:
    user = users.create(allow([OPEN_STUDIO, "elasticmapreduce:DescribeEditor"]))
    host = signed_in(browser, studios["A"], user)
    stream = browser.get(
        host,
        f"/console/workspaces/{editors['mine']}/events",
        headers={"Accept": "text/event-stream"},
    )
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    events = [block.split("\n") for block in stream.body.strip().split("\n\n")]
    assert [e[0] for e in events] == ["event: status", "event: done"]
    state = json.loads(events[0][1].removeprefix("data: "))
    assert state == {
        "status": "Ready",
        "reason": None,
        "zone": "us-east-1a",
        "subnet": "subnet-test",
    }
    refused = users.create(allow(OPEN_STUDIO))
    host = signed_in(browser, studios["A"], refused)
    stream = browser.get(host, f"/console/workspaces/{editors['mine']}/events")
    assert stream.status == 403


def test_pages_carry_security_headers(
    browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    user = users.create(allow(OPEN_STUDIO))
    page = browser.get(signed_in(browser, studios["A"], user), "/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.body  # no inline script: the CSP forbids it


def test_page_actions_and_sign_ins_are_in_cloudtrail(
    gateway: GatewayProcess, browser: Browser, users: Users, studios: dict[str, str]
) -> None:
    user = users.create(allow([OPEN_STUDIO, "elasticmapreduce:ListEditors"]))
    assert browser.sign_in(studios["A"], user, "Wrong-password-1").status == 401
    host = signed_in(browser, studios["A"], user)
    token = browser.get(host, "/").xsrf()
    browser.post(host, "/console/workspaces", {"_xsrf": token, "name": "audited"})
    trail: Any = gateway.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": user}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    names = [r["eventName"] for r in records]
    for name in ("ConsoleLogin", "CreateStudioPresignedUrl", "ListEditors", "CreateEditor"):
        assert name in names
    logins = [
        r["responseElements"]["ConsoleLogin"] for r in records if r["eventName"] == "ConsoleLogin"
    ]
    assert sorted(logins) == ["Success"]  # the failed one names no known principal...
    create = next(r for r in records if r["eventName"] == "CreateEditor")
    assert create["errorCode"] == "AccessDeniedException"
    assert create["userIdentity"]["userName"] == user
    assert create["requestParameters"]["name"] == "audited"
