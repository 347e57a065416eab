"""The one pagination helper: pages, and tokens that refuse whatever they did not issue."""

from __future__ import annotations

import pytest

from emustudio.aws.errors import AwsError
from emustudio.services import pages


class Invalid(AwsError):
    code = "InvalidNextToken"


def test_pages_walk_the_whole_listing_once() -> None:
    items = list(range(7))
    seen, token, calls = [], None, 0
    while True:
        page, token = pages.page(items, token, 3, Invalid("bad"), "call-1")
        seen += page
        calls += 1
        if token is None:
            break
    assert seen == items and calls == 3
    assert pages.page(items, None, None, Invalid("bad")) == (items, None)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "%%%",
        pages.encode_token([2], "another-call"),
        pages.encode_token([-1], "call-1"),
        pages.encode_token([1, 2], "call-1"),
        "bnVsbA",  # base64 of JSON null
    ],
)
def test_a_token_not_issued_for_this_call_is_refused(token: str) -> None:
    with pytest.raises(Invalid):
        pages.page(list(range(7)), token, 3, Invalid("bad"), "call-1")


def test_keyset_tokens_carry_their_position() -> None:
    token = pages.encode_token([1700000000, 42], pages.fingerprint({"a": 1}))
    assert pages.decode_token(token, 2, pages.fingerprint({"a": 1}), Invalid("bad")) == (
        1700000000,
        42,
    )
    with pytest.raises(Invalid):
        pages.decode_token(token, 2, pages.fingerprint({"a": 2}), Invalid("bad"))
