"""``python -m benchmarks``: conversion, inference latency, LSTM and convolution benchmarks; a table on the
terminal, every measurement in ``benchmarks/results/latest.json`` and the tables in
``benchmarks/RESULTS.md``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.runtime.artifacts import check_output_file, write_file
from pipeline.runtime.errors import UsageError

from . import conversion, report
from .common import machine

HERE = Path(__file__).resolve().parent
SECTIONS = ("conversion", "latency", "mixed", "profile", "lstm", "conv")


def build_parser() -> argparse.ArgumentParser:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the AutoVC conversion and the converted model against onnxruntime and torch.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer shapes and repeats (T <= 512; LSTM at T=128): a few minutes")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, cores}),
                        help=f"intra-op threads for every backend; one run per value (default: 1 and {cores})")
    parser.add_argument("--artifact", type=Path,
                        help="an export folder (model.onnx, saved_model/, manifest.json; model.tflite adds "
                             "LiteRT) for the latency benchmark; default: the conversion benchmark's export "
                             "(with --tflite), or a fresh one")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "latest.json",
                        help="where the JSON goes (default: benchmarks/results/latest.json)")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md",
                        help="where the tables go (default: benchmarks/RESULTS.md)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    try:  # before minutes of measuring: never replace a folder with a result file
        for path in (args.results, args.markdown):
            check_output_file(path)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    results: dict[str, Any] = {
        "command": command,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="autovc-bench-") as scratch:
        artifact = args.artifact
        if "conversion" in sections:  # the command the export-time target is about
            print("[conversion] python -m pipeline export ...", file=sys.stderr, flush=True)
            results["conversion"] = conversion.run_export(Path(scratch) / "plain")
            print(report.conversion_table(results["conversion"]), file=sys.stderr)
        if "conversion" in sections or (artifact is None and {"latency", "mixed", "profile"} & set(sections)):
            print("[conversion] python -m pipeline export --tflite ...", file=sys.stderr, flush=True)
            measured = conversion.run_export(Path(scratch) / "export", ["--tflite"])
            if "conversion" in sections:
                results["conversion_tflite"] = measured
            artifact = artifact or Path(scratch) / "export"
        for section in SECTIONS[1:]:
            if section not in sections:
                continue
            results[section] = []
            for threads in args.threads:
                out = Path(scratch) / f"{section}-{threads}.json"
                worker = [sys.executable, "-m", "benchmarks.worker", section, "--threads", str(threads),
                          "--json", str(out)]
                worker += ["--artifact", str(artifact)] if section in ("latency", "mixed", "profile") else []
                worker += ["--quick"] if args.quick else []
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
                subprocess.run(worker, check=True, cwd=HERE.parent, env=env, stdin=subprocess.DEVNULL)
                results[section].append(json.loads(out.read_text()))
    results["machine"]["load_average_end"] = machine()["load_average"]

    markdown = report.render(results, _shown(args.results))
    write_file(args.results, json.dumps(results, indent=1) + "\n")
    write_file(args.markdown, markdown)
    print(markdown)
    print(f"results: {args.results}, tables: {args.markdown}", file=sys.stderr)
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)

