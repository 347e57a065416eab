"""The gate in front of Workspaces: nothing reaches a Workspace's JupyterLab unless the
request carries a session of the Workspace's own Studio, the Workspace runs, and the user may
``elasticmapreduce:OpenEditorInConsole`` on it.

The Workspaces here are rows whose endpoint is a loopback listener that counts connections:
every refusal must leave it untouched, since the gate decides before the proxy connects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from emustudio.testing.backup import wait_for_status
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import Users, allow, editor_arn
from emustudio.testing.pages import Browser
from tests.web.doubles import Rows, Upstream

OPEN_STUDIO = "elasticmapreduce:CreateStudioPresignedUrl"
OPEN_WORKSPACE = "elasticmapreduce:OpenEditorInConsole"
XHR = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def workspace(rows: Rows, upstream: Upstream, studios: dict[str, str]) -> str:
    """A running Workspace of Studio A, answered by the counting listener."""
    return rows.add(studios["A"], endpoint=f"127.0.0.1:{upstream.port}")


@pytest.fixture(scope="module")
def opener(users: Users) -> str:
    """May open every Studio and every Workspace."""
    return users.create(allow([OPEN_STUDIO, OPEN_WORKSPACE]))


@pytest.fixture(scope="module")
def looker(users: Users) -> str:
    """May open every Studio, but no Workspace."""
    return users.create(allow(OPEN_STUDIO))


class Untouched:
    """Asserts that the upstream got no connection during the block."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def __enter__(self) -> None:
        self.before = self.upstream.connections

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.05)
        assert self.upstream.connections == self.before, "the gate let a request through"


def lab(workspace: str) -> str:
    return f"/workspaces/{workspace}/lab"


def test_without_a_session_a_page_redirects_to_sign_in_and_the_rest_is_refused(
    browser: Browser, studios: dict[str, str], workspace: str, upstream: Upstream
) -> None:
    a = studios["A"]
    host = browser.host(a)
    with Untouched(upstream):
        page = browser.get(host, lab(workspace))
        assert page.status == 302
        assert page.location == f"/signin?next=%2Fworkspaces%2F{workspace}%2Flab"
        path_form = browser.get("localhost", f"/studios/{a}{lab(workspace)}")
        assert path_form.status == 302
        assert path_form.location.startswith(f"/studios/{a}/signin?next=%2Fstudios%2F{a}")
        bare = browser.get("localhost", lab(workspace))
        assert bare.status == 302
        assert bare.location.startswith(f"/studios/{a}/signin?next=%2Fstudios%2F{a}")
        assert browser.get(host, f"/workspaces/{workspace}/api/status", headers=XHR).status == 403
        assert browser.post(host, f"/workspaces/{workspace}/api/contents", {}).status == 403
        websocket = browser.get(
            host,
            f"/workspaces/{workspace}/api/kernels/k/channels",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        assert websocket.status == 403


def test_an_allowed_user_reaches_the_workspace(
    browser: Browser, studios: dict[str, str], workspace: str, opener: str, upstream: Upstream
) -> None:
    """The positive control: the same requests, signed in, do reach the listener."""
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], opener).status == 303
    before = upstream.connections
    answer = browser.get(host, lab(workspace))
    assert answer.status == 200 and answer.body == "upstream-ok"
    assert upstream.connections == before + 1
    sent = upstream.requests[-1]
    assert "authorization: token upstream-token" in sent.lower()
    assert "emustudio-session" not in sent  # the gateway's cookie never goes upstream
    assert "upstream-token" not in answer.body


def test_the_path_form_lets_jupyterlab_urls_through_for_that_workspace_only(
    browser: Browser,
    studios: dict[str, str],
    workspace: str,
    opener: str,
    rows: Rows,
    upstream: Upstream,
) -> None:
    a = studios["A"]
    assert browser.sign_in(a, opener, path_form=True).status == 303
    with Untouched(upstream):
        entry = browser.get("localhost", f"/studios/{a}{lab(workspace)}?reset")
    assert entry.status == 302 and entry.location == f"{lab(workspace)}?reset"
    scoped = entry.cookie("emustudio-session")
    assert scoped.path == f"/workspaces/{workspace}/"
    assert "httponly" in scoped.attributes and "domain" not in scoped.attributes
    assert scoped.attributes["samesite"] == "Lax"
    # The page itself and JupyterLab's own absolute URLs (bare form) now pass...
    page = browser.get("localhost", entry.location)
    assert page.status == 200 and page.body == "upstream-ok"
    assert (
        browser.get("localhost", f"/workspaces/{workspace}/static/x.js", headers=XHR).status == 200
    )
    # ...and a script's call in the path form is proxied as is.
    status = browser.get(
        "localhost", f"/studios/{a}/workspaces/{workspace}/api/status", headers=XHR
    )
    assert status.status == 200
    # ...but another Workspace of the same Studio needs its own entry through the Studio.
    other = rows.add(a, endpoint=f"127.0.0.1:{upstream.port}")
    with Untouched(upstream):
        assert (
            browser.get("localhost", f"/workspaces/{other}/api/status", headers=XHR).status == 403
        )


def test_another_studios_session_is_refused(
    browser: Browser, studios: dict[str, str], workspace: str, opener: str, upstream: Upstream
) -> None:
    a, b = studios["A"], studios["B"]
    assert browser.sign_in(b, opener).status == 303
    b_cookie = browser.cookie_value("emustudio-session", browser.host(b))
    assert browser.sign_in(b, opener, path_form=True).status == 303
    with Untouched(upstream):
        # B's cookie on A's host.
        on_a = browser.get(
            browser.host(a),
            f"/workspaces/{workspace}/api/status",
            headers={**XHR, "Cookie": f"emustudio-session={b_cookie}"},
        )
        assert on_a.status == 403
        # A's Workspace through B's Studio URL, host and path form: not B's Workspace.
        assert browser.get(browser.host(b), lab(workspace)).status == 404
        assert browser.get("localhost", f"/studios/{b}{lab(workspace)}").status == 404
        # B's session in the bare form: the Workspace is A's.
        bare = browser.get(
            "localhost",
            f"/workspaces/{workspace}/api/status",
            headers={**XHR, "Cookie": f"emustudio-session={b_cookie}"},
        )
        assert bare.status == 403


def test_a_user_without_open_editor_in_console_is_refused(
    browser: Browser, studios: dict[str, str], workspace: str, looker: str, upstream: Upstream
) -> None:
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], looker).status == 303
    with Untouched(upstream):
        page = browser.get(host, lab(workspace))
        assert page.status == 403
        assert "not allowed to open this Workspace" in page.body
        assert browser.get(host, f"/workspaces/{workspace}/api/status", headers=XHR).status == 403


def test_open_editor_in_console_follows_the_workspace_arn(
    browser: Browser,
    users: Users,
    studios: dict[str, str],
    workspace: str,
    rows: Rows,
    upstream: Upstream,
) -> None:
    other = rows.add(studios["A"], endpoint=f"127.0.0.1:{upstream.port}")
    frank = users.create(allow(OPEN_STUDIO), allow(OPEN_WORKSPACE, editor_arn(workspace)))
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], frank).status == 303
    assert browser.get(host, lab(workspace)).status == 200
    with Untouched(upstream):
        assert browser.get(host, lab(other)).status == 403


def test_a_stopped_workspace_is_not_reached(
    browser: Browser, studios: dict[str, str], rows: Rows, opener: str, upstream: Upstream
) -> None:
    idle = rows.add(studios["A"], endpoint=None, status="Idle")
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], opener).status == 303
    with Untouched(upstream):
        answer = browser.get(host, lab(idle))
        assert answer.status == 409
        assert "Workspace not running" in answer.body and "Start the Workspace" in answer.body


def test_signing_out_closes_the_workspace_at_once(
    browser: Browser, studios: dict[str, str], workspace: str, opener: str, upstream: Upstream
) -> None:
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], opener).status == 303
    assert browser.get(host, lab(workspace)).status == 200  # admitted (and remembered)
    stolen = browser.cookie_value("emustudio-session", host)
    assert browser.post(host, "/signout", {"_xsrf": browser.get(host, "/").xsrf()}).status == 303
    with Untouched(upstream):
        replayed = browser.get(
            host,
            f"/workspaces/{workspace}/api/status",
            headers={**XHR, "Cookie": f"emustudio-session={stolen}"},
        )
        assert replayed.status == 403


def test_an_unknown_workspace_is_refused_without_a_hint(
    browser: Browser, studios: dict[str, str], upstream: Upstream
) -> None:
    ghost = "e-" + "Q" * 25
    with Untouched(upstream):
        assert browser.get("localhost", lab(ghost)).status == 403
        assert browser.get(browser.host(studios["A"]), lab(ghost)).status == 302


def test_a_policy_change_takes_effect_at_the_next_request(
    browser: Browser, studios: dict[str, str], workspace: str, users: Users, upstream: Upstream
) -> None:
    """Admissions and refusals are remembered, but never past a write that may change them."""
    name = users.create(allow([OPEN_STUDIO, OPEN_WORKSPACE]))

    def policy(*statements: dict[str, object]) -> None:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        users.iam.put_user_policy(
            UserName=name, PolicyName="studio", PolicyDocument=json.dumps(document)
        )

    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], name).status == 303
    assert browser.get(host, lab(workspace)).status == 200  # admitted, and remembered
    assert browser.get(host, lab(workspace)).status == 200
    policy(allow(OPEN_STUDIO))  # revoked
    with Untouched(upstream):
        assert browser.get(host, lab(workspace)).status == 403
        assert browser.get(host, lab(workspace)).status == 403  # the refusal, remembered
    policy(allow([OPEN_STUDIO, OPEN_WORKSPACE]))  # granted again
    assert browser.get(host, lab(workspace)).status == 200
    users.iam.delete_user_policy(UserName=name, PolicyName="studio")
    with Untouched(upstream):
        assert browser.get(host, lab(workspace)).status == 403


def test_a_polled_refusal_is_logged_once_when_decided(
    browser: Browser,
    studios: dict[str, str],
    rows: Rows,
    opener: str,
    upstream: Upstream,
    gateway: GatewayProcess,
) -> None:
    """A client polling a Workspace that is not running gets its 409 every time, but the
    gateway's log says so once (the gate's decision), not once per request."""
    starting = rows.add(studios["A"], endpoint=None, status="Starting")
    host = browser.host(studios["A"])
    assert browser.sign_in(studios["A"], opener).status == 303
    with Untouched(upstream):
        for _ in range(5):
            polled = browser.get(host, f"/workspaces/{starting}/api/status", headers=XHR)
            assert polled.status == 409
    log = gateway.log()
    assert log.count(f"workspace {starting}: 409 for ") == 1
    assert f"/workspaces/{starting}/api/status" not in log  # no access-log line per request


@pytest.fixture(scope="module")
def kept_upstream() -> Iterator[Upstream]:
    server = Upstream(keep_alive=True)
    yield server
    server.close()


def test_revocations_reach_requests_answered_from_memory(
    browser: Browser,
    studios: dict[str, str],
    rows: Rows,
    users: Users,
    kept_upstream: Upstream,
) -> None:
    """With its connections to the Workspace kept, a remembered request is proxied without a
    handler (the fast path): a policy change and a sign-out still take effect at once."""
    workspace = rows.add(studios["A"], endpoint=f"127.0.0.1:{kept_upstream.port}")
    name = users.create(allow([OPEN_STUDIO, OPEN_WORKSPACE]))
    host = browser.host(studios["A"])
    status = f"/workspaces/{workspace}/api/status"
    assert browser.sign_in(studios["A"], name).status == 303
    for _ in range(5):  # the first decides; the others are answered from memory
        assert browser.get(host, status, headers=XHR).status == 200
    assert kept_upstream.connections == 1 and len(kept_upstream.requests) == 5

    def policy(*statements: dict[str, object]) -> None:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        users.iam.put_user_policy(
            UserName=name, PolicyName="studio", PolicyDocument=json.dumps(document)
        )

    policy(allow(OPEN_STUDIO))  # revoked
    assert browser.get(host, status, headers=XHR).status == 403
    assert len(kept_upstream.requests) == 5
    policy(allow([OPEN_STUDIO, OPEN_WORKSPACE]))  # granted again
    for _ in range(2):
        assert browser.get(host, status, headers=XHR).status == 200
    assert len(kept_upstream.requests) == 7
    stolen = browser.cookie_value("emustudio-session", host)
    assert browser.post(host, "/signout", {"_xsrf": browser.get(host, "/").xsrf()}).status == 303
    replayed = browser.get(host, status, headers={**XHR, "Cookie": f"emustudio-session={stolen}"})
    assert replayed.status == 403
    assert len(kept_upstream.requests) == 7


def test_stopping_a_workspace_reaches_requests_answered_from_memory(
    browser: Browser,
    studios: dict[str, str],
    rows: Rows,
    opener: str,
    gateway: GatewayProcess,
    kept_upstream: Upstream,
) -> None:
    editors = gateway.client("emr-studio")
    workspace = rows.add(studios["A"], endpoint=f"127.0.0.1:{kept_upstream.port}")
    host = browser.host(studios["A"])
    status = f"/workspaces/{workspace}/api/status"
    assert browser.sign_in(studios["A"], opener).status == 303
    for _ in range(3):  # the first decides; the others are answered from memory
        assert browser.get(host, status, headers=XHR).status == 200
    answered = len(kept_upstream.requests)
    editors.stop_editor(EditorId=workspace)
    wait_for_status(editors, workspace, "Idle")
    stopped = browser.get(host, status, headers=XHR)
    assert stopped.status == 409
    assert len(kept_upstream.requests) == answered
