"""A real browser for Studio tests: Debian's Chromium, driven by Playwright.

Playwright's own browser download needs the internet; Debian's ``chromium`` package does not,
so the context is launched from ``executable_path``. Host names under ``.localhost`` (the Studio
hosts ``es-….emrstudio.localhost``) resolve to loopback in Chromium without any DNS set-up.
A missing browser is an error that says how to install it, never a skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No traffic of the browser's own: only loopback, as the machine allows.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumMissing(RuntimeError):
    """No Chromium at the executable path."""


def _require(executable: str) -> None:
    if shutil.which(executable) is None:
        raise ChromiumMissing(
            f"{executable} is missing: install Debian's chromium (scripts/setup does)"
        )


@contextmanager
def chromium_context(
    profile_dir: Path, *, executable: str = CHROMIUM, timeout_ms: float = 30_000
) -> Iterator[Any]:
    """A Playwright ``BrowserContext`` of a fresh Chromium profile in ``profile_dir``."""
    _require(executable)
    from playwright.sync_api import sync_playwright  # a test dependency, not the gateway's

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        context.set_default_timeout(timeout_ms)
        try:
            yield context
        finally:
            context.close()


@contextmanager
def chromium_browser(*, executable: str = CHROMIUM) -> Iterator[Any]:
    """A Playwright ``Browser``: one Chromium, for as many fresh contexts as wanted.

    Launching Chromium (and Playwright's driver) costs a second or more; a new context of a
    running browser a tenth of that, and it shares nothing with the others: no cookies, storage,
    cache or permissions, as a new profile.
    """
    _require(executable)
    from playwright.sync_api import sync_playwright  # a test dependency, not the gateway's

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_context(browser: Any, *, timeout_ms: float = 30_000) -> Iterator[Any]:
    """A new ``BrowserContext`` of ``browser`` (as a fresh profile), closed afterwards."""
    context = browser.new_context()
    context.set_default_timeout(timeout_ms)
    try:
        yield context
    finally:
        context.close()
