"""The start page takes only a browser's plain ``GET /``; every request an SDK could send to
``/`` goes on to the API (and keeps AWS's answer)."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from emustudio.web.start_page import BrowserNavigation

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def request(method: str, uri: str, **headers: str) -> HTTPServerRequest:
    line = RequestStartLine(method, uri, "HTTP/1.1")
    return HTTPServerRequest(start_line=line, headers=HTTPHeaders({"Host": "localhost", **headers}))


def test_a_browser_navigation_is_the_start_page() -> None:
    assert BrowserNavigation().match(request("GET", "/", Accept=HTML)) == {}


@pytest.mark.parametrize(
    "sent",
    [
        request("GET", "/"),  # no Accept: curl, an SDK
        request("GET", "/", Accept="*/*"),
        request("POST", "/", Accept=HTML),
        request("GET", "/?Action=ListUsers&Version=2010-05-08", Accept=HTML),  # presigned / query
        request("GET", "/", Accept=HTML, Authorization="AWS4-HMAC-SHA256 Credential=..."),
        request("GET", "/", Accept=HTML, **{"X-Amz-Date": "20240101T000000Z"}),
        request("GET", "/bucket", Accept=HTML),
    ],
)
def test_anything_an_sdk_could_send_stays_the_apis(sent: HTTPServerRequest) -> None:
    assert BrowserNavigation().match(sent) is None
