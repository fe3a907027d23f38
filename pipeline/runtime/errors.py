"""Errors the command line turns into one line on stderr and an exit code.

Anything that is not one of these is a bug and keeps its traceback (or, without
``--debug``, is reported as an internal error).
"""


class PipelineError(Exception):
    """A run that failed for a reason the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(PipelineError):
    """Bad arguments or a bad input file (exit code 2)."""

    exit_code = 2
