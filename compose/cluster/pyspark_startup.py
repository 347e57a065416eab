"""Run by the PySpark kernel at start (``--IPKernelApp.exec_files``): ``spark``, ``sc`` and
``sqlContext`` for every cell, and sparkmagic's cell magics (``/opt/emr/emr_magics.py``)."""

import sys

sys.path.insert(0, "/opt/emr")
import emr_magics  # found through the path above

emr_magics.load(get_ipython())  # noqa: F821 - IPython's builtin in a kernel
del emr_magics, sys
