"""What a step runs on the master, and its logs in ``LogUri``.

* ``command-runner.jar``: its ``Args`` are the command (``spark-submit``, ``bash -c``...).
* A custom JAR (``s3://`` or a path on the master) with ``MainClass`` (else the manifest's
  ``Main-Class``): the JAR is fetched as the instance profile's role, put in the step's folder on
  the master, and run as ``hadoop jar`` runs it: ``java`` with the JAR and the cluster's Hadoop
  and Spark jars on the class path, ``Properties`` as ``-D`` system properties.

Logs go where EMR puts them: ``<LogUri>/<cluster id>/steps/<step id>/{controller,stdout,
stderr}.gz``, written as the master's instance profile role once the step ends (EMR pushes them
every few minutes; one push at the end is what a user sees after the step).
"""

from __future__ import annotations

import gzip
import io
import logging
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from emustudio.services.emr.common import ValidationException
from emustudio.services.emr.instance_s3 import InstanceProfileS3, S3Refused, split_s3_uri

log = logging.getLogger(__name__)

COMMAND_RUNNER = "command-runner.jar"
JAR_DIR = "/mnt/var/lib/hadoop/steps"  # a step's files on the master, as EMR keeps them
CLASS_PATH = "/usr/lib/spark/jars/*"  # the cluster's Hadoop client and Spark jars


class StepCannotRun(Exception):
    """The step's JAR could not be fetched or has no main class; the message says which."""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)


def check_step(jar: str, args: list[str]) -> None:
    """What ``AddJobFlowSteps``/``RunJobFlow`` refuse before the step is queued."""
    if jar.rsplit("/", 1)[-1] == COMMAND_RUNNER:
        if not args:
            raise ValidationException("A command-runner.jar step needs Args (the command).")
        return
    if jar.startswith(("s3://", "s3n://", "s3a://")):
        try:
            split_s3_uri(jar)
        except ValueError:
            raise ValidationException(f"The step's JAR {jar} is not a valid S3 path.") from None
        return
    if not jar.startswith(("/", "file:/")):
        raise ValidationException(
            f"The step's JAR {jar} must be command-runner.jar, an s3:// location or a path on"
            " the master."
        )


def main_class_of(data: bytes) -> str | None:
    """The ``Main-Class`` of a JAR's manifest."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as jar:
            manifest = jar.read("META-INF/MANIFEST.MF").decode(errors="replace")
    except (zipfile.BadZipFile, KeyError):
        return None
    for line in manifest.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Main-Class" and value.strip():
            return value.strip()
    return None


async def command_for(
    s3: InstanceProfileS3 | None,
    profile: str,
    master: str,
    step_id: str,
    jar: str,
    main_class: str | None,
    args: list[str],
    properties: list[dict[str, str]],
) -> Command:
    if jar.rsplit("/", 1)[-1] == COMMAND_RUNNER:
        return Command(list(args))
    system = [f"-D{p['Key']}={p.get('Value', '')}" for p in properties]
    if not jar.startswith(("s3://", "s3n://", "s3a://")):
        path = jar.removeprefix("file:")
        if main_class:
            return Command(["java", *system, "-cp", f"{path}:{CLASS_PATH}", main_class, *args])
        return Command(["java", *system, "-jar", path, *args])
    if s3 is None:
        raise StepCannotRun("Steps with a JAR in S3 need the gateway's S3.")
    try:
        data = await s3.get(profile, master, jar)
    except S3Refused as exc:
        raise StepCannotRun(f"Failed to download the step's JAR {jar}: {exc}") from exc
    main = main_class or main_class_of(data)
    if main is None:
        raise StepCannotRun(
            f"The JAR {jar} names no Main-Class in its manifest and the step gives no MainClass."
        )
    path = f"{JAR_DIR}/{step_id}/{jar.rsplit('/', 1)[-1]}"
    return Command(["java", *system, "-cp", f"{path}:{CLASS_PATH}", main, *args], {path: data})


def stamp(moment: float) -> str:
    """A log line's time, as EMR's controller logs write it."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def controller_log(
    jar: str, argv: list[str], started: float, ended: float, code: int, cancelled: bool
) -> bytes:
    """The step's ``controller`` log, in the spirit of EMR's step runner."""
    took = max(0, round(ended - started))
    last = (
        "INFO Step was cancelled."
        if cancelled
        else f"INFO Step succeeded with exitCode 0 and took {took} seconds"
        if code == 0
        else f"WARN Step failed with exitCode {code} and took {took} seconds"
    )
    lines = [
        f"{stamp(started)} INFO Step created jar: {jar}",
        f"{stamp(started)} INFO startExec '{' '.join(argv)}'",
        f"{stamp(ended)} INFO total process run time: {took} seconds",
        f"{stamp(ended)} {last}",
    ]
    return ("\n".join(lines) + "\n").encode()


def log_prefix(log_uri: str, cluster_id: str, step_id: str) -> str:
    return f"{log_uri.rstrip('/')}/{cluster_id}/steps/{step_id}"


async def upload_logs(
    s3: InstanceProfileS3,
    profile: str,
    instance: str,
    prefix: str,
    logs: dict[str, bytes],
) -> None:
    """Each log gzipped to ``prefix/<name>.gz``, written as ``instance``'s profile role; a
    refusal is logged, never the step's (or bootstrap action's) fate: EMR's log push does not
    fail them either."""
    for name in ("controller", "stdout", "stderr"):
        if name not in logs:
            continue
        try:
            await s3.put(profile, instance, f"{prefix}/{name}.gz", gzip.compress(logs[name]))
        except S3Refused as exc:
            log.warning("logs: %s/%s.gz not written: %s", prefix, name, exc)
