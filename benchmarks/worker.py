"""One benchmark section in a fresh process: ``python -m benchmarks.worker SECTION --threads N
--json OUT [--artifact DIR] [--quick]``.

TensorFlow fixes its thread pools when it starts, so every thread count gets its own process;
a fresh process also keeps one section's memory and caches out of the next one's numbers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

LATENCY, MIXED, LSTM, PROFILE, CONV = "latency", "mixed", "lstm", "profile", "conv"
PROFILE_SHAPES = ((1, 512), (8, 512))
"""The shapes of the latency targets, profiled per op type."""


def _latency_shapes(quick: bool) -> list[Any]:
    from .latency import Shape

    if quick:
        return [Shape(1, 128, 5), Shape(8, 128, 3), Shape(1, 512, 5), Shape(8, 512, 3)]
    return [
        Shape(1, 128, 15), Shape(8, 128, 9), Shape(1, 512, 11), Shape(8, 512, 7),
        Shape(1, 2048, 5), Shape(8, 2048, 3),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    parser.add_argument("section", choices=(LATENCY, MIXED, LSTM, PROFILE, CONV))
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--artifact", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from .common import set_threads

    threads = set_threads(args.threads)
    if args.section == LATENCY:
        from . import latency

        result = latency.run(args.artifact, _latency_shapes(args.quick), args.threads)
    elif args.section == MIXED:
        from . import latency

        result = latency.mixed_lengths(args.artifact, args.threads)
    elif args.section == PROFILE:
        from . import profile

        shapes = PROFILE_SHAPES[:1] if args.quick else PROFILE_SHAPES
        result = {"shapes": [profile.run(args.artifact, b, t, args.threads) for b, t in shapes]}
    elif args.section == CONV:
        from . import conv

        steps, repeats = (128, 3) if args.quick else (512, 9)
        result = conv.run((1, 8), steps, repeats, args.threads)
    else:
        from . import lstm

        steps, repeats = (128, 3) if args.quick else (512, 7)
        result = lstm.run(lstm.AUTOVC_LAYERS, (1, 8), steps, repeats, args.threads)
    args.json.write_text(json.dumps({"threads": threads, **result}, indent=1))


if __name__ == "__main__":
    main()
