"""Stage-by-stage progress on stderr, with timings kept for the machine-readable report."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO


class Progress:
    """Prints ``[stage] ...`` lines to stderr and records each stage's wall time in seconds."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.info(f"[{name}] ...")
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = round(elapsed, 3)
        self.info(f"[{name}] done in {elapsed:.1f} s")
