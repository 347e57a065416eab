"""Where a redirect of a cluster's Spark UI goes: under the gateway's path for that UI, never to
the master's own address (which a browser cannot reach)."""

from __future__ import annotations

import pytest

from emustudio.web.spark_ui import moved

ORIGIN = "http://10.1.2.3:18080"
BASE = "/studios/es-ABC/clusters/j-ABCDEFGHIJKLM/history"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (f"{ORIGIN}/history/app-1/jobs/", f"{BASE}/history/app-1/jobs/"),
        (ORIGIN, f"{BASE}/"),
        ("/history/app-1/", f"{BASE}/history/app-1/"),
        (f"{BASE}/history/app-1/", f"{BASE}/history/app-1/"),  # Spark already wrote the base
        ("jobs/", "jobs/"),  # relative: the browser resolves it under the base
    ],
)
def test_a_redirect_stays_under_the_gateway_path(location: str, expected: str) -> None:
    assert moved(location, ORIGIN, BASE) == expected
