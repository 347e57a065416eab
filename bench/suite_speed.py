"""The whole suite's speed against the 2f0140f baseline (issue 10), on the same tests.

``suite_2f0140f.json`` holds what the suite was at 2f0140f: its pytest wall time (682.6 s for
1120 tests, run serially, images and the compose stack's image built first) and each test's
seconds by junit name. This script runs exactly the tests of the current suite whose names
are in that list (no test added since is run; see ``baseline_name``), the way ``scripts/test``
does (``-n 3 --dist loadfile``, or ``--workers N``; ``--workers 0`` serially), and prints the
wall time against the baseline's. Build the images first (one whole ``scripts/test`` does), as
they were for the baseline, and note the load it prints: a figure taken at a load above the core
count says little.

    .venv/bin/python bench/suite_speed.py [--workers 3] [--junitxml PATH] [-- PYTEST ARGS]

It is also the pytest plugin (``-p suite_speed``) that keeps only those tests in every worker.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE = HERE / "suite_2f0140f.json"
NAMES_ENV = "EMU_SUITE_SPEED_NAMES"
AIM = 0.8


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the plugin (in pytest's processes) ---------------------------------------------------------


# Tests renamed since 2f0140f, what they do unchanged: current name -> the name it had.
RENAMED = {
    # Its save -> S3 latency is bench/backup.py's figure now, no longer asserted as "< 1 s".
    "test_a_saved_notebook_reaches_s3_and_comes_back_after_a_restart": (
        "test_a_saved_notebook_reaches_s3_within_a_second_and_comes_back_after_a_restart"
    ),
}


def baseline_name(name: str) -> str:
    """The name a test had at 2f0140f: the proxy's tests have since been run on two paths
    (``[handler]``, ``[handler-PUT]``; and ``fast``, new), and the handler is the one it had;
    a few were renamed (`RENAMED`)."""
    name = RENAMED.get(name, name)
    return re.sub(r"\[handler\]$", "", name).replace("[handler-", "[", 1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    names = set(Path(os.environ[NAMES_ENV]).read_text().splitlines())
    keep = [item for item in items if baseline_name(item.name) in names]
    dropped = [item for item in items if baseline_name(item.name) not in names]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


# -- the script ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3, help="xdist workers; 0: serially")
    parser.add_argument("--junitxml", type=Path, help="keep the run's junit XML here")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()

    baseline = json.loads(BASELINE.read_text())
    by_name: dict[str, float] = baseline["seconds_by_name"]
    with tempfile.TemporaryDirectory(prefix="suite-speed-") as tmp:
        names = Path(tmp) / "names"
        names.write_text("\n".join(by_name) + "\n")
        junit = args.junitxml or Path(tmp) / "junit.xml"
        env = {**os.environ, NAMES_ENV: str(names)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        parallel = ["-n", str(args.workers), "--dist", "loadfile"] if args.workers else []
        argv = [sys.executable, "-m", "pytest", "-p", "suite_speed", *parallel]
        argv += ["-q", f"--junitxml={junit}", *args.pytest_args]
        print("load before:", load(), flush=True)
        started = time.monotonic()
        code = subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
        wall = time.monotonic() - started
        print("load after: ", load())
        report(baseline, junit, wall, args.workers)
    return code


def report(baseline: dict, junit: Path, wall: float, workers: int) -> None:
    by_name: dict[str, float] = baseline["seconds_by_name"]
    root = ET.parse(junit).getroot()
    suite = next(root.iter("testsuite"))
    ran: dict[str, float] = {}
    failed = cases = 0
    for case in root.iter("testcase"):
        cases += 1
        name = baseline_name(case.get("name", ""))
        ran[name] = ran.get(name, 0.0) + float(case.get("time", 0))
        failed += any(case.find(tag) is not None for tag in ("failure", "error"))
    gone = set(by_name) - set(ran)
    same = sum(by_name[n] for n in ran if n in by_name)
    base_wall = baseline["pytest_seconds"]
    mode = f"{workers} workers" if workers else "serially"
    print(f"\nran {cases} tests ({mode}): {failed} failed or errored")
    print(
        f"baseline {baseline['commit']}: {baseline['tests']} tests, pytest {base_wall:.0f} s;"
        f" the {len(ran)} names run here took {same:.0f} s there"
        f" ({len(gone)} baseline names not run: {sum(by_name[n] for n in gone):.0f} s)"
    )
    now = float(suite.get("time", wall))
    print(f"now: pytest {now:.0f} s, wall {wall:.0f} s (with start-up)")
    print(f"pytest time / baseline pytest time:         {now / base_wall:.3f}  (aim <= {AIM})")
    print(f"pytest time / baseline seconds of these tests: {now / same:.3f}  (aim <= {AIM})")


if __name__ == "__main__":
    sys.exit(main())
