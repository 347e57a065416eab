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


@contextmanager
def chromium_context(
    profile_dir: Path, *, executable: str = CHROMIUM, timeout_ms: float = 30_000
) -> Iterator[Any]:
    """A Playwright ``BrowserContext`` of a fresh Chromium profile in ``profile_dir``."""
    if shutil.which(executable) is None:
        raise ChromiumMissing(
            f"{executable} is missing: install Debian's chromium (scripts/setup does)"
        )
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
