"""The pytest plugin as its users meet it: pytest run in a subprocess on a project of theirs
(``examples/pytest``, and small projects written here), with no conftest and no import of the
plugin: the ``pytest11`` entry point of the installed package brings the ``emu_`` fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pytest"

pytestmark = pytest.mark.timeout(1200)  # the example builds the Workspace image when missing


def run_pytest(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EMUSTUDIO_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_project(root: Path, ini: str, tests: str) -> Path:
    (root / "pytest.ini").write_text(textwrap.dedent(ini))
    (root / "test_it.py").write_text(textwrap.dedent(tests))
    return root


def instance_objects(instance_id: str) -> list[str]:
    client = docker.from_env()
    try:
        label = {"label": [f"emustudio.instance={instance_id}"]}
        found = [c.name for c in client.containers.list(all=True, filters=label)]
        return found + [n.name for n in client.networks.list(filters=label)]
    finally:
        client.close()


def test_the_example_project_passes() -> None:
    done = run_pytest(EXAMPLE, "-q")
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-4000:]
    assert "3 passed" in done.stdout


def test_fixtures_clean_up_after_each_test_and_the_session(tmp_path: Path) -> None:
    """What one test made (a Studio with its VPC, an IAM user) is gone in the next; what the
    session made (Docker networks of the instance) is gone after it."""
    record = tmp_path / "made.json"
    project = write_project(
        tmp_path,
        """
        [pytest]
        emu_gateway_env =
            EMUSTUDIO_ACCOUNT_ID=123456789012
        """,
        f"""
        import json, pathlib
        import pytest
        from botocore.exceptions import ClientError

        RECORD = pathlib.Path({str(record)!r})

        def test_make(emu_gateway, emu_boto3, emu_studio, emu_iam_user):
            user = emu_iam_user(
                {{"Version": "2012-10-17", "Statement": [
                    {{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}}]}},
                password="Example-Password-1",
            )
            me = user.client("sts").get_caller_identity()
            assert me["Arn"] == user.arn and me["Account"] == "123456789012"
            assert emu_studio.arn.split(":")[4] == "123456789012"
            assert emu_studio.url.startswith(f"http://{{emu_studio.studio_id}}.emrstudio.localhost:")
            assert emu_boto3("emr-studio").list_editors(StudioId=emu_studio.studio_id)["Editors"] == []
            RECORD.write_text(json.dumps({{
                "instance": emu_gateway.instance_id, "user": user.name, "vpc": emu_studio.vpc_id,
                "studio": emu_studio.studio_id,
            }}))

        def test_gone(emu_boto3):
            made = json.loads(RECORD.read_text())
            with pytest.raises(ClientError, match="NoSuchEntity"):
                emu_boto3("iam").get_user(UserName=made["user"])
            with pytest.raises(ClientError, match="InvalidVpcID.NotFound"):
                emu_boto3("ec2").describe_vpcs(VpcIds=[made["vpc"]])
            assert made["studio"] not in [
                s["StudioId"] for s in emu_boto3("emr").list_studios()["Studios"]
            ]
        """,
    )
    done = run_pytest(project, "-q")
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-4000:]
    assert "2 passed" in done.stdout
    assert instance_objects(json.loads(record.read_text())["instance"]) == []


def test_a_failing_test_reports_the_gateway_log_of_that_test(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        """
        [pytest]
        """,
        """
        def test_passes(emu_ec2):
            emu_ec2.describe_security_groups()

        def test_fails(emu_ec2):
            emu_ec2.describe_vpcs()
            assert False, "on purpose"

        def test_fails_without_the_gateway():
            assert False, "no gateway here"
        """,
    )
    done = run_pytest(project, "-q")
    assert done.returncode == 1, done.stdout[-8000:] + done.stderr[-4000:]
    out = done.stdout
    assert "2 failed, 1 passed" in out
    sections = out.split("emustudio gateway log (call)")
    assert len(sections) == 2, out  # test_fails only
    after = sections[1]
    assert "200 POST /" in after  # the DescribeVpcs call, as the gateway logged it
    assert "test_fails_without_the_gateway" in after  # ...and no section in that one
    assert "emustudio gateway log" not in after.split("test_fails_without_the_gateway", 1)[1]


def test_a_malformed_setting_is_a_usage_error(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        """
        [pytest]
        emu_gateway_env =
            EMUSTUDIO_ACCOUNT_ID
        """,
        """
        def test_nothing():
            pass
        """,
    )
    done = run_pytest(project, "-q")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "emu_gateway_env: expected NAME=VALUE, got 'EMUSTUDIO_ACCOUNT_ID'" in done.stderr
