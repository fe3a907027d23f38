"""``python -m pipeline``: the command line (see :mod:`pipeline.cli`).

A finished run ends with ``os._exit`` from the last exit handler instead of the interpreter's
teardown, which spends 1.5-2 s freeing TensorFlow's and torch's objects one by one after an
export. This is safe because everything a run leaves behind is already complete by then: output
folders are published by an atomic rename before ``main`` returns, the handler is registered
first and so runs after every other exit handler (``weakref.finalize``, ``logging``, temp-folder
clean-up: ``atexit`` runs them last-registered first), non-daemon threads were joined before
exit handlers run, and it flushes stdout and stderr itself. Runs that end by ``SystemExit``
(``--help``, usage errors) tear down normally.
"""

import atexit
import os
import sys

_status: int | None = None


def _end_without_teardown() -> None:
    if _status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status)


atexit.register(_end_without_teardown)

from pipeline.cli import main  # noqa: E402 (after the handler: it must be the first registered)

_status = main()
sys.exit(_status)
