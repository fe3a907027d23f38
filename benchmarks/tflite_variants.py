"""``python -m benchmarks.tflite_variants ARTIFACT NAME=FILE.tflite ...``: several LiteRT files of the
same AutoVC (e.g. two lowerings of its LSTMs) timed interleaved with onnxruntime on the artefact's
``model.onnx``, one thread each; JSON rows on stdout (median ms, paired ratios, max abs vs onnxruntime).

How README's table of LSTM loop lowerings for LiteRT was measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .common import interleaved, load_average, machine, paired_ratio
from .latency import ORT, litert_backend, model_inputs, ort_backend

SHAPES = ((1, 128, 3), (8, 128, 3), (1, 512, 3), (8, 512, 2), (1, 2048, 1))  # batch, frames, rounds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tflite_variants", description=__doc__)
    parser.add_argument("artifact", type=Path, help="an export folder (model.onnx)")
    parser.add_argument("files", nargs="+", metavar="NAME=FILE.tflite")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-frames-for", action="append", default=[], metavar="NAME=T",
                        help="skip NAME above T frames (a slow variant)")
    args = parser.parse_args(argv)
    limits = {name: int(t) for name, t in (item.split("=", 1) for item in args.max_frames_for)}
    backends = {ORT: ort_backend(args.artifact, args.threads)}
    for item in args.files:
        name, path = item.split("=", 1)
        backends[name] = litert_backend(Path(path), args.threads)
    print(json.dumps({"machine": machine(), "threads": args.threads}), flush=True)
    for batch, frames, rounds in SHAPES:
        inputs = model_inputs(batch, frames)
        calls = {n: bind(inputs) for n, bind in backends.items() if frames <= limits.get(n, frames)}
        outputs = {n: call() for n, call in calls.items()}  # first calls: warm-up, and the outputs
        times = interleaved(calls, rounds, warmup=0)
        reference = outputs[ORT]
        print(json.dumps({
            "batch": batch, "frames": frames, "load_average": load_average(),
            "median_ms": {n: round(1000 * float(np.median(t)), 1) for n, t in times.items()},
            "ratio_over_ort": {n: paired_ratio(t, times[ORT]) for n, t in times.items() if n != ORT},
            "max_abs_vs_ort": {
                n: max(float(np.max(np.abs(out[k] - reference[k]))) for k in reference)
                for n, out in outputs.items() if n != ORT
            },
        }), flush=True)


if __name__ == "__main__":
    main()
