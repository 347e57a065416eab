"""Which URLs reach which Workspace, and what path goes upstream."""

from __future__ import annotations

import json

import pytest

from emustudio.proxy.headers import strip_cookie
from tests.proxy.conftest import DOMAIN, ECHO, ROOT, STUDIO, FakeGate, ProxyServer


@pytest.mark.parametrize(
    ("host", "path", "studio", "upstream_uri"),
    [
        # host form: the Studio from the host, whatever its case; the path unchanged
        (f"{STUDIO.lower()}.{DOMAIN}", f"/workspaces/{ECHO}/echo?a=1", STUDIO, None),
        (f"{STUDIO}.{DOMAIN.upper()}:8080", f"/workspaces/{ECHO}/echo", STUDIO, None),
        # path form: /studios/<id> is cut
        (
            "127.0.0.1",
            f"/studios/{STUDIO}/workspaces/{ECHO}/echo?a=1",
            STUDIO,
            f"/workspaces/{ECHO}/echo?a=1",
        ),
        (
            f"{STUDIO.lower()}.{DOMAIN}",
            f"/studios/{'es-' + 'T' * 25}/workspaces/{ECHO}/echo",
            "es-" + "T" * 25,
            f"/workspaces/{ECHO}/echo",
        ),
        # bare form: no Studio named, on any other host
        ("127.0.0.1:9", f"/workspaces/{ECHO}/echo", None, None),
        (f"{STUDIO.lower()}.other.example", f"/workspaces/{ECHO}/echo", None, None),
        (f"x.{DOMAIN}", f"/workspaces/{ECHO}/echo", None, None),
        # an encoded path goes upstream as the browser wrote it
        ("127.0.0.1", f"/workspaces/{ECHO}/a%20b/echo", None, None),
    ],
)
def test_routing(
    proxy: ProxyServer,
    gate: FakeGate,
    host: str,
    path: str,
    studio: str | None,
    upstream_uri: str | None,
) -> None:
    status, _, body = proxy.request("GET", path, host=host)
    assert status == 200, body
    assert gate.opened[-1] == (studio, ECHO)
    assert json.loads(body)["uri"] == (upstream_uri or path)


def test_upstream_base_url_replaces_the_prefix(proxy: ProxyServer, gate: FakeGate) -> None:
    status, _, body = proxy.request("GET", f"/studios/{STUDIO}/workspaces/{ROOT}/echo?x=1")
    assert status == 200
    assert json.loads(body)["uri"] == "/echo?x=1"


@pytest.mark.parametrize(
    "path",
    [
        f"/workspaces/{ECHO.lower()}/echo",  # ids are upper case in paths
        f"/workspaces/{ECHO}x/echo",
        f"/studios/{STUDIO.lower()}/workspaces/{ECHO}/echo",
        f"/studio/{STUDIO}/workspaces/{ECHO}/echo",
        "/workspaces/",
    ],
)
def test_other_paths_are_not_the_proxys(proxy: ProxyServer, gate: FakeGate, path: str) -> None:
    before = len(gate.opened)
    status, _, _ = proxy.request("GET", path)
    assert status == 404
    assert len(gate.opened) == before


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1; emustudio-session=x; b=2", "a=1; b=2"),
        ("emustudio-session=x; b=2", "b=2"),
        ("a=1; emustudio-session=x", "a=1"),
        ("emustudio-session=x", ""),
        (
            "emustudio-session-other=1; my-emustudio-session=2",
            "emustudio-session-other=1; my-emustudio-session=2",
        ),
        ("a=emustudio-session", "a=emustudio-session"),
    ],
)
def test_strip_cookie(header: str, expected: str) -> None:
    assert strip_cookie(header, "emustudio-session") == expected
