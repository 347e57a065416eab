"""The PySpark kernel's Spark session and sparkmagic's cell magics, run inside the kernel.

EMR's PySpark kernel is sparkmagic's: the notebook talks to a Livy session on the cluster, and
``%%sql``, ``%%configure``, ``%%info``, ``%%local`` and ``%%help`` are magics of that kernel. Here
the kernel itself runs on the master (Jupyter Enterprise Gateway starts it) and its driver is the
Livy session's equivalent, so the magics act on the kernel's own SparkSession with sparkmagic's
syntax, options and messages (docs/decisions.md, "The PySpark kernel's magics"):

* ``%%sql [-o VAR] [-q] [-n MAXROWS] [-m take|sample] [-r FRACTION] [-c]``: Spark SQL, shown as a
  table (a pandas DataFrame, as sparkmagic shows it); ``-o`` keeps the pandas DataFrame in VAR.
* ``%%configure [-f]``: Livy's session JSON (``conf``, ``driverMemory``, ``executorMemory``,
  ``executorCores``, ``numExecutors``, ``jars``...). Before the first cell that uses Spark it sets
  the session up; afterwards it needs ``-f`` and restarts the session (a new driver JVM), as
  sparkmagic deletes the Livy session and makes a new one.
* ``%%info``: the settings and the session's application, user and UIs.
* ``%%local``: the cell runs as plain Python (here the same interpreter, so ``-o`` results are
  there); ``%%display``: EMR Studio's table of a DataFrame; ``%%help``.

The session starts in a background thread as the kernel starts, so the kernel answers at once (a
Jupyter client gives up on a kernel that is silent for the ~10 s a SparkSession takes); the first
cell that needs it waits, as EMR's first PySpark cell waits for "Starting Spark application".
Spark names the application's user after KERNEL_USERNAME, the signed-in Studio user.
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import os
import re
import shlex
import sys
import threading
import warnings
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import HTML, display

# Imported here, in the kernel's main thread, never first in the session's thread: IPython
# edits sys.path while it runs the start-up file, and an import walking sys.path in another
# thread at that moment can skip site-packages ("No module named 'pyspark'", seen here).
from pyspark import SparkContext
from pyspark.sql import SparkSession, SQLContext

USER = re.sub(r"[^A-Za-z0-9._@-]", "_", os.environ.get("KERNEL_USERNAME", "") or "emr-notebook")
os.environ["SPARK_USER"] = USER

# Livy's session fields (POST /sessions) as Spark settings; numExecutors is special (below).
LIVY_FIELDS = {
    "driverMemory": "spark.driver.memory",
    "driverCores": "spark.driver.cores",
    "executorMemory": "spark.executor.memory",
    "executorCores": "spark.executor.cores",
    "name": "spark.app.name",
    "queue": "spark.yarn.queue",
    "jars": "spark.jars",
    "pyFiles": "spark.submit.pyFiles",
    "files": "spark.files",
    "archives": "spark.archives",
}
# Accepted by Livy, nothing to do here: one kind of kernel, sessions end with the kernel.
IGNORED_FIELDS = {"kind", "heartbeatTimeoutInSecond", "ttl"}
DEFAULT_MAXROWS = 2500  # sparkmagic's default_maxrows


class ConfigureError(ValueError):
    pass


def spark_settings(settings: dict[str, Any]) -> dict[str, str]:
    """Livy's session JSON as SparkConf entries; an unknown field is refused, as Livy does."""
    conf: dict[str, str] = {}
    for key, value in settings.items():
        if key == "conf":
            if not isinstance(value, dict):
                raise ConfigureError('"conf" must be an object of Spark settings.')
            conf.update({str(k): str(v) for k, v in value.items()})
        elif key in LIVY_FIELDS:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            conf[LIVY_FIELDS[key]] = text
        elif key == "numExecutors":
            # Standalone Spark has no executor count (spark.executor.instances is YARN's and
            # Kubernetes'): capping the application's cores at count x cores-per-executor gives
            # that many executors.
            conf["spark.executor.instances"] = str(int(value))
        elif key == "proxyUser":
            raise ConfigureError(
                "proxyUser cannot be set with %%configure: kernels run as the signed-in user."
            )
        elif key not in IGNORED_FIELDS:
            raise ConfigureError(f'Unrecognized field "{key}" in the session settings.')
    if "spark.executor.instances" in conf:
        cores = int(conf.get("spark.executor.cores", "1"))
        conf.setdefault("spark.executor.cores", str(cores))
        conf["spark.cores.max"] = str(int(conf["spark.executor.instances"]) * cores)
    # The driver is this kernel, on the master: Livy's cluster mode has no meaning for it.
    conf["spark.submit.deployMode"] = "client"
    return conf


class Session:
    """The kernel's SparkSession: started in the background, restarted by ``%%configure -f``."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}
        self.number = 0
        self.used = False
        self.made: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.number += 1
        self.made = {}
        conf = spark_settings(self.settings)
        self._thread = threading.Thread(
            target=self._make, args=(conf,), name="spark-session", daemon=True
        )
        self._thread.start()

    def _make(self, conf: dict[str, str]) -> None:
        try:
            builder = SparkSession.builder.appName(f"{USER}-pyspark")
            for key, value in conf.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sql_context = SQLContext(session.sparkContext)
            self.made.update(spark=session, sc=session.sparkContext, sqlContext=sql_context)
        except Exception as exc:  # shown to the user by the cell that needs the session
            self.made["error"] = exc

    def ready(self) -> dict[str, Any]:
        if self._thread is not None:
            self._thread.join()
        if "error" in self.made:
            raise RuntimeError(f"The Spark session could not start: {self.made['error']}")
        return self.made

    def stop(self) -> None:
        """Ends the application and its driver JVM, so driver settings apply to the next."""
        if self._thread is not None:
            self._thread.join()
        spark = self.made.get("spark")
        if spark is not None:
            spark.stop()
        gateway = SparkContext._gateway
        if gateway is not None:
            proc = getattr(gateway, "proc", None)
            gateway.shutdown()
            if proc is not None:
                # The JVM exits when its stdin closes (PythonGatewayServer watches it).
                proc.stdin.close()
                try:
                    proc.wait(30)
                except Exception:
                    proc.kill()
        SparkContext._gateway = None
        SparkContext._jvm = None
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
        SQLContext._instantiatedContext = None
        self.made = {}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a message for the cell, not an exit
        raise ValueError(message)


def _bodiless(lines: list[str]) -> list[str]:
    """``%%info`` alone in a cell, as sparkmagic takes it (IPython refuses a cell magic with an
    empty body): the cell gets a blank body line."""
    if len(lines) == 1 and re.fullmatch(r"%%(info|help)\s*", lines[0]):
        return [lines[0].rstrip() + "\n", " \n"]
    return lines


def _table(rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{v}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


@magics_class
class SparkMagics(Magics):
    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session

    # -- the session -----------------------------------------------------------------------

    def spark(self) -> Any:
        made = self.session.ready()
        self.session.used = True
        self.shell.user_ns.update(made)
        return made["spark"]

    def _info_rows(self) -> str:
        made = self.session.made
        sc = made.get("sc")
        if sc is None:
            return "No active sessions."
        ui = sc.uiWebUrl or ""
        row = {
            "ID": str(self.session.number),
            "Spark Application ID": html.escape(sc.applicationId),
            "Kind": "pyspark",
            "State": "idle",
            "Spark UI": f'<a target="_blank" href="{html.escape(ui)}">Link</a>' if ui else "",
            "Driver log": "",
            "User": html.escape(sc.sparkUser()),
            "Current session?": "\u2714",
        }
        return _table([row])

    def _show_settings(self) -> None:
        print(f"Current session configs: {json.dumps(self.session.settings)}")

    @cell_magic
    def configure(self, line: str, cell: str) -> None:
        """%%configure [-f]: Livy session settings as JSON; -f restarts a running session."""
        force = "-f" in shlex.split(line) or "--force" in shlex.split(line)
        try:
            settings = json.loads(cell)
            if not isinstance(settings, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            print(f"Could not parse JSON object from input '{cell.strip()}': error: {exc}.")
            return
        if self.session.used and not force:
            print(
                "A session has already been started. If you intend to recreate the session"
                " with new configurations, please include the -f argument."
            )
            return
        try:
            spark_settings(settings)
        except ConfigureError as exc:
            print(f"Invalid session settings: {exc}")
            return
        self.session.stop()
        self.session.settings = settings
        self._show_settings()
        self.session.start()
        print("Starting Spark application")
        self.spark()
        display(HTML(self._info_rows()))
        print("SparkSession available as 'spark'.")

    @cell_magic
    def info(self, line: str, cell: str) -> None:
        """%%info: the session's settings and application."""
        self._show_settings()
        if self.session.used:
            self.spark()
        display(HTML(self._info_rows()))

    @cell_magic
    def sql(self, line: str, cell: str) -> Any:
        """%%sql [-o VAR] [-q] [-n MAXROWS] [-m take|sample] [-r FRACTION] [-c]"""
        parser = _Parser(prog="%%sql", add_help=False)
        parser.add_argument("-o", "--output")
        parser.add_argument("-q", "--quiet", action="store_true")
        parser.add_argument("-n", "--maxrows", type=int, default=DEFAULT_MAXROWS)
        parser.add_argument("-m", "--samplemethod", choices=["take", "sample"], default="take")
        parser.add_argument("-r", "--samplefraction", type=float, default=0.1)
        parser.add_argument("-c", "--coerce", default=None)
        try:
            args = parser.parse_args(shlex.split(line))
        except ValueError as exc:
            print(f"%%sql: {exc}\n{parser.format_usage()}", file=sys.stderr)
            return None
        frame = self.spark().sql(cell)
        if args.samplemethod == "sample":
            frame = frame.sample(False, args.samplefraction)
        if args.maxrows >= 0:
            frame = frame.limit(args.maxrows)
        result = frame.toPandas()
        if args.output:
            self.shell.user_ns[args.output] = result
        if args.quiet or not len(result.columns):
            return None
        return result

    @cell_magic
    def local(self, line: str, cell: str) -> Any:
        """%%local: plain Python in the kernel (where ``%%sql -o`` results are)."""
        tree = ast.parse(cell)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<local>", "exec"), self.shell.user_ns)
        if last is not None:
            expr = ast.Expression(last.value)
            return eval(compile(expr, "<local>", "eval"), self.shell.user_ns)
        return None

    @cell_magic
    def display(self, line: str, cell: str) -> Any:
        """%%display: a DataFrame expression shown as a table (EMR Studio's magic)."""
        self.spark()
        value = eval(cell.strip(), self.shell.user_ns)
        if hasattr(value, "toPandas"):
            return value.limit(DEFAULT_MAXROWS).toPandas()
        return value

    @cell_magic
    def help(self, line: str, cell: str) -> None:
        rows = [
            {"Magic": "%%sql", "Example": "%%sql -o df -n 100<br>SELECT * FROM t",
             "Explanation": "Spark SQL; -o keeps the result as a pandas DataFrame, -q shows"
             " nothing, -n the most rows, -m take|sample and -r the sample fraction."},
            {"Magic": "%%configure", "Example": '%%configure -f<br>{"executorMemory": "1g"}',
             "Explanation": "Livy session settings; -f restarts a running session."},
            {"Magic": "%%info", "Example": "%%info", "Explanation": "The session's settings."},
            {"Magic": "%%local", "Example": "%%local<br>a = 1",
             "Explanation": "Plain Python in the kernel."},
            {"Magic": "%%display", "Example": "%%display<br>df",
             "Explanation": "A DataFrame as a table."},
        ]  # fmt: skip
        display(HTML(_table(rows)))


def load(shell: Any) -> Session:
    """Starts the session and registers the magics and the first-cell wait on ``shell``."""
    session = Session()
    session.start()
    magics = SparkMagics(shell, session)
    shell.register_magics(magics)
    shell.input_transformers_cleanup.append(_bodiless)
    # Cells that set the session up do not wait for the default one first.
    setup = re.compile(r"\s*%%(configure|info|help|local)\b")

    def before(info: Any = None) -> None:
        raw = getattr(info, "raw_cell", "") or ""
        if not session.used and not setup.match(raw):
            try:
                magics.spark()
            except RuntimeError as exc:  # the cell then fails on `spark`; this says why
                print(exc, file=sys.stderr)

    shell.events.register("pre_run_cell", before)
    return session
