"""The upstream client's response-head parser (the rest runs through the proxy tests)."""

from __future__ import annotations

import pytest

from emustudio.proxy.upstream import UpstreamClosed, parse_head


def test_head_fields() -> None:
    head = parse_head(
        "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nSet-Cookie: a=1\r\n"
        "Set-Cookie: b=2\r\nConnection: keep-alive, X-Hop\r\nX-Empty:"
    )
    assert (head.code, head.reason, head.length, head.chunked) == (201, "Created", 12, False)
    assert head.keep_alive
    assert head.connection == {"keep-alive", "x-hop"}
    assert head.headers[1:3] == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert head.headers[-1] == ("X-Empty", "")


@pytest.mark.parametrize(
    ("text", "keep_alive", "chunked"),
    [
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", True, True),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", False, False),
        ("HTTP/1.0 200 OK\r\nContent-Length: 0", False, False),
        ("HTTP/1.1 204", True, False),
    ],
)
def test_framing(text: str, keep_alive: bool, chunked: bool) -> None:
    head = parse_head(text)
    assert (head.keep_alive, head.chunked) == (keep_alive, chunked)


@pytest.mark.parametrize(
    "text",
    [
        "SSH-2.0-OpenSSH",
        "HTTP/2 200 OK",
        "HTTP/1.1 20 OK",
        "HTTP/1.1 200 OK\r\nno colon here",
        "HTTP/1.1 200 OK\r\nName : space before colon",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4",
        "HTTP/1.1 200 OK\r\nContent-Length: -1",
    ],
)
def test_malformed_heads_are_refused(text: str) -> None:
    with pytest.raises(UpstreamClosed):
        parse_head(text)
