"""``python -m pipeline``: the command line (see :mod:`pipeline.cli`)."""

import atexit
import os
import sys

from pipeline.cli import main

code = main()
# Everything is written and closed by now. Run the exit handlers, then end the process without
# the interpreter's teardown, which spends 1.5-2 s freeing TensorFlow's and torch's objects
# one by one after an export.
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
