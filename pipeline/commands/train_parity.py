"""``python -m pipeline train-parity``: AutoVC fine-tuned in torch and in the trainable TF
export, compared step by step (:mod:`pipeline.training.train_parity`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands.flags import common
from pipeline.models.autovc.flags import FREQ


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train-parity",
        help="fine-tune AutoVC in torch and in the trainable TF export; compare losses, gradients, Adam steps",
        description=(
            "Train the same AutoVC (--checkpoint, or random weights) in PyTorch and in the trainable "
            "TensorFlow SavedModel on the same batch, with the authors' objective and PyTorch's Adam, "
            "and compare losses, every gradient, the weights after each step and the BatchNorm running "
            "statistics. Exit 1 when a tolerance is broken; --report writes report.json/html."
        ),
    )
    p.add_argument("--checkpoint", type=Path, help="AutoVC generator checkpoint (default: random weights, seed 0)")
    FREQ.add_to(p)
    p.add_argument("--steps", type=int, default=10, help="Adam steps to compare (default 10)")
    p.add_argument("--report", type=Path, help="folder for report.json, report.html, summary.txt")
    p.add_argument("--data", type=Path, metavar="METADATA.npz",
                   help="training batch: every mel of an AutoVC metadata.npz (default: the embedded utterance)")
    p.add_argument("--frames", type=int, default=64, help="frames per utterance, a multiple of --freq (default 64)")
    common(p)
    p.set_defaults(command=run_args)


def run_args(args: argparse.Namespace) -> int:
    from pipeline.training import train_parity
    from pipeline.training.report import summary_table

    result = train_parity(args.checkpoint, args.steps, args.report, freq=args.freq, data=args.data,
                          frames=args.frames, force=args.force)
    print(summary_table(result), file=sys.stderr, end="")
    return 0 if result.passed else 1
