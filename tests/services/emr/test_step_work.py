"""What a step runs, decided before any container: the checks at submit, a JAR's main class,
the controller log, and where the logs go in LogUri."""

from __future__ import annotations

import io
import zipfile

import pytest

from emustudio.services.emr.common import ValidationException
from emustudio.services.emr.step_work import (
    check_step,
    command_for,
    controller_log,
    log_prefix,
    main_class_of,
)


def jar_with(manifest: str | None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        if manifest is not None:
            jar.writestr("META-INF/MANIFEST.MF", manifest)
        jar.writestr("Hello.class", b"\xca\xfe\xba\xbe")
    return buffer.getvalue()


def test_the_manifest_names_the_main_class() -> None:
    assert main_class_of(jar_with("Manifest-Version: 1.0\r\nMain-Class: com.x.Main\r\n")) == (
        "com.x.Main"
    )
    assert main_class_of(jar_with("Manifest-Version: 1.0\n")) is None
    assert main_class_of(jar_with(None)) is None
    assert main_class_of(b"not a zip") is None


@pytest.mark.parametrize(
    ("jar", "args", "message"),
    [
        ("command-runner.jar", [], "A command-runner.jar step needs Args (the command)."),
        ("s3://", ["x"], "The step's JAR s3:// is not a valid S3 path."),
        ("hdfs:///a.jar", [], "must be command-runner.jar, an s3:// location or a path"),
    ],
)
def test_what_submit_refuses(jar: str, args: list[str], message: str) -> None:
    with pytest.raises(ValidationException) as exc:
        check_step(jar, args)
    assert message in exc.value.message


def test_what_submit_takes() -> None:
    for jar in ("command-runner.jar", "/usr/lib/x.jar", "file:///x.jar", "s3://b/k/x.jar"):
        check_step(jar, ["a"])


async def test_a_local_jar_runs_as_hadoop_jar_would() -> None:
    command = await command_for(None, "p", "i-1", "s-1", "/opt/x.jar", "Main", ["a"],
                                [{"Key": "k", "Value": "v"}])  # fmt: skip
    assert command.argv == ["java", "-Dk=v", "-cp", "/opt/x.jar:/usr/lib/spark/jars/*", "Main",
                            "a"]  # fmt: skip
    runner = await command_for(None, "p", "i-1", "s-1", "command-runner.jar", None,
                               ["spark-submit", "x.py"], [])  # fmt: skip
    assert runner.argv == ["spark-submit", "x.py"] and runner.files == {}


def test_the_controller_log_and_the_layout() -> None:
    text = controller_log("command-runner.jar", ["bash", "-c", "true"], 0.0, 5.0, 0, False)
    assert text.decode().splitlines()[-1] == (
        "1970-01-01T00:00:05.000Z INFO Step succeeded with exitCode 0 and took 5 seconds"
    )
    failed = controller_log("x.jar", ["java"], 0.0, 1.0, 2, False).decode()
    assert "WARN Step failed with exitCode 2 and took 1 seconds" in failed
    assert log_prefix("s3://b/logs/", "j-1", "s-1") == "s3://b/logs/j-1/steps/s-1"
    assert log_prefix("s3://b/logs", "j-1", "s-1") == "s3://b/logs/j-1/steps/s-1"
