"""Run by the PySpark kernel at start: ``spark``, ``sc`` and ``sqlContext`` for every cell.

The session runs on the cluster (spark.master comes from spark-defaults.conf). It is made in a
background thread as the kernel starts, so the kernel answers at once (a Jupyter client gives
up on a kernel that is silent for the ~10 s a SparkSession takes); the first cell waits for it,
as EMR's first PySpark cell waits for "Starting Spark application". Spark names the
application's user after KERNEL_USERNAME, the signed-in Studio user the gateway sets.
"""

import os
import re
import threading
import warnings

_user = re.sub(r"[^A-Za-z0-9._@-]", "_", os.environ.get("KERNEL_USERNAME", "") or "emr-notebook")
os.environ["SPARK_USER"] = _user
_made: dict = {}


def _make_session() -> None:
    try:
        from pyspark.sql import SparkSession, SQLContext

        session = SparkSession.builder.appName(f"{_user}-pyspark").getOrCreate()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _made.update(
                spark=session, sc=session.sparkContext, sqlContext=SQLContext(session.sparkContext)
            )
    except Exception as exc:  # shown to the user by the first cell
        _made["error"] = exc


_thread = threading.Thread(target=_make_session, name="spark-session", daemon=True)
_thread.start()


def _inject(*_args: object) -> None:
    shell = get_ipython()  # noqa: F821 - IPython's builtin in a kernel
    shell.events.unregister("pre_run_cell", _inject)
    _thread.join()
    if "error" in _made:
        raise RuntimeError(f"The Spark session could not start: {_made['error']}")
    shell.user_ns.update(_made)


get_ipython().events.register("pre_run_cell", _inject)  # noqa: F821
