"""``python -m pipeline``: export, convert, parity, train-parity.

Every subcommand prints stage progress on stderr and ends with one line. Failures the user can
act on print one ``error:`` line and exit 2 (bad arguments or input files) or 1 (a run that
failed); ``--debug`` prints the traceback first.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Callable, Sequence

from pipeline.runtime.errors import PipelineError, UsageError

COMMANDS = ("export", "convert", "parity", "train_parity")
"""The modules of :mod:`pipeline.commands`, in ``--help`` order; each has ``add_parser``."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pipeline.runtime.provenance import record_command

    record_command(sys.argv[1:] if argv is None else argv, parser.prog)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except (KeyboardInterrupt, Exception) as error:
        if args.debug:
            traceback.print_exc()
        # Ctrl-C inside an extension module's import surfaces as an ImportError caused by it.
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
        if cause is not None:
            print("interrupted: no output was written", file=sys.stderr)
            return 130
        if isinstance(error, PipelineError):
            print(f"error: {error}", file=sys.stderr)
            return error.exit_code
        if _is_bad_model(error):
            print(f"error: {error}", file=sys.stderr)
            return UsageError.exit_code
        first_line = (str(error).strip().splitlines() or [""])[0]  # a bug: say so in one line
        print(
            f"internal error: {type(error).__name__}: {first_line} (run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _is_bad_model(error: BaseException) -> bool:
    """An ONNX node our handlers refuse while translating it: a bad input, not a bug."""
    support = sys.modules.get("custom_ops.support")  # never imported just to answer this
    return support is not None and isinstance(error, support.UnsupportedOptionError)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say one line and exit 2 like every other usage error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(UsageError.exit_code)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pipeline",
        description="Convert AutoVC from PyTorch to TensorFlow through ONNX and prove the result exact.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        importlib.import_module(f"pipeline.commands.{command}").add_parser(commands)
    return parser
