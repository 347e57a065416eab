"""The examples the README points at (examples/boto3/*.py, examples/cli.sh) run as written
against a gateway, here the plugin's own ``emu_gateway``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emustudio.testing import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.timeout(1200)  # a Workspace start may build the Workspace image


def run_example(gateway: GatewayProcess, *argv: str) -> str:
    env = gateway.cli_env()
    env.update(
        EMUSTUDIO_ENDPOINT=gateway.endpoint_url,
        PYTHON=sys.executable,
        # The AWS CLI and python of this environment first (the CLI comes from PyPI here).
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def example_json(gateway: GatewayProcess, script: str, *args: str) -> Any:
    return json.loads(run_example(gateway, sys.executable, str(EXAMPLES / "boto3" / script), *args))


def test_the_boto3_examples(emu_gateway: GatewayProcess) -> None:
    studio = example_json(emu_gateway, "create_studio.py")
    assert studio["Url"] == (f"http://{studio['StudioId']}.emrstudio.localhost:{emu_gateway.port}")
    user = example_json(emu_gateway, "studio_user.py", studio["StudioId"])
    assert user["ListStudiosAsThisUser"] == "AccessDeniedException"
    assert user["SignInUrl"] == studio["Url"]
    workspace = example_json(emu_gateway, "start_workspace.py", studio["StudioId"])
    assert workspace["Status"] == "Ready"
    assert workspace["Url"].startswith(studio["Url"] + "/workspaces/")


def test_the_cli_example(emu_gateway: GatewayProcess) -> None:
    out = run_example(emu_gateway, "bash", str(EXAMPLES / "cli.sh"))
    assert "refused (AccessDeniedException)" in out
    assert "\tReady\t" in out
    assert out.rstrip().endswith("done")


def test_the_setup_guide_against_a_fresh_gateway() -> None:
    """AWS's EMR Studio setup guide (examples/setup-guide.sh) runs unchanged on a new gateway:
    its names exist once per account, so it gets one of its own."""
    gateway = GatewayProcess()
    try:
        out = run_example(gateway.start(), "bash", str(EXAMPLES / "setup-guide.sh"))
    finally:
        gateway.close()
    assert "make_bucket: emr-studio-000000000000-us-east-1" in out
    assert "arn:aws:sso:::instance/ssoins-" in out
    assert "GROUP\tanalysts" in out and "USER\tbob" in out
    assert out.count("CreateStudio\troot") == 2
    assert out.rstrip().endswith("done")
