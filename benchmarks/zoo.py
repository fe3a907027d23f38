"""The model zoo's numbers: ``python -m benchmarks.zoo``.

For each architecture of ``tests/zoo`` (random seeded weights) and each opset of
:data:`tests.zoo.OPSETS`: the legacy torch.onnx export (dynamic batch and time), the conversion
as ``python -m pipeline convert`` does it (the graph module and both SavedModel signatures,
timed together: ``convert_s``), then one run at a batch and a length other than the export
example's through torch, onnxruntime, the SavedModel's ``serving_default`` (tf) and
``serving_xla`` (tf_xla), and the max abs difference of each pair. One thread for every
backend. Writes ``benchmarks/results/zoo.json`` (with the machine and its load) and ``zoo.md``
(the table the README shows). Options: ``--only NAME`` (repeatable), ``--out`` (folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import load_average, machine, set_threads

HERE = Path(__file__).resolve().parent
PAIRS = ("torch-onnxruntime", "torch-tf", "onnxruntime-tf", "torch-tf_xla")


def measure(name: str, opset: int) -> dict[str, Any]:
    """One model at one opset: timings, errors and whether every pair is within tolerance."""
    from tests.zoo import (
        CHECK_SHAPE,
        MODELS,
        compare,
        convert,
        run_onnxruntime,
        run_torch,
        saved_model_runners,
    )

    zoo_model = MODELS[name]
    model = zoo_model.build()
    row: dict[str, Any] = {"model": name, "family": zoo_model.family, "opset": opset,
                           "tolerance": {"atol": zoo_model.tolerance.atol, "rtol": zoo_model.tolerance.rtol}}
    start = time.perf_counter()
    graph = zoo_model.export(model, opset)
    row["export_s"] = round(time.perf_counter() - start, 2)
    row["onnx_nodes"] = len(graph.graph.node)
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "saved_model"
        start = time.perf_counter()
        try:
            convert(graph, saved)
        except Exception as error:  # noqa: BLE001  (a failure is a result here, shown in the table)
            row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            return row
        row["convert_s"] = round(time.perf_counter() - start, 2)
        inputs = zoo_model.inputs(*CHECK_SHAPE, seed=1)
        outputs = {"torch": run_torch(model, inputs), "onnxruntime": run_onnxruntime(graph, inputs)}
        for label, run in saved_model_runners(saved).items():
            start = time.perf_counter()
            try:
                outputs[label] = run(inputs)
            except Exception as error:  # noqa: BLE001  (a failure is a result here)
                row.setdefault("run_errors", {})[label] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            row[f"{label}_first_run_s"] = round(time.perf_counter() - start, 2)
    row["check_shape"] = [int(d) for d in outputs["torch"].shape]
    row["max_abs"] = compare(outputs)
    row["within_tolerance"] = all(
        zoo_model.tolerance.holds(outputs[pair.split("-")[1]], outputs[pair.split("-")[0]])
        for pair in row["max_abs"]
    ) and len(row["max_abs"]) == len(PAIRS)
    return row


def markdown(document: dict[str, Any]) -> str:
    """The README's table: one row per model and opset."""
    m = document["machine"]
    lines = [
        (
            f"Measured on {m['cpu']} ({m['cores']} cores, load average {m['load_average']} at the start, "
            f"{document['load_average_end']} at the end: other work shared the cores), one thread per "
            f"backend; inputs: batch {document['check_shape'][0]}, {document['check_shape'][1]} frames "
            f"(exported at batch {document['export_shape'][0]}, {document['export_shape'][1]} frames)."
        ),
        "",
        "| model | family | opset | convert (s) | torch-ORT | torch-TF | ORT-TF | torch-TF XLA | within tolerance |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['family']} | {row['opset']} | fails: {row['error']} | | | | | no |")
            continue
        errors = [f"{row['max_abs'][p]:.1e}" if p in row["max_abs"] else "—" for p in PAIRS]
        tolerance = row["tolerance"]
        rule = f"atol {tolerance['atol']:g}" + (f" + rtol {tolerance['rtol']:g}" if tolerance["rtol"] else "")
        verdict = f"yes ({rule})" if row["within_tolerance"] else f"**no** ({rule})"
        lines.append(f"| {row['model']} | {row['family']} | {row['opset']} | {row['convert_s']:.1f} | "
                     + " | ".join(errors) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="a model name (repeatable); default: all")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = parser.parse_args(argv)
    document: dict[str, Any] = {"machine": machine(), "threads": set_threads(1)}
    from tests.zoo import CHECK_SHAPE, EXPORT_SHAPE, MODELS, OPSETS

    names = args.only or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"error: unknown model {unknown[0]} (known: {', '.join(MODELS)})", file=sys.stderr)
        return 2
    document.update({"opsets": list(OPSETS), "export_shape": list(EXPORT_SHAPE), "check_shape": list(CHECK_SHAPE)})
    rows = []
    for name in names:
        for opset in OPSETS:
            rows.append(measure(name, opset))
            print(json.dumps(rows[-1]), flush=True)
    document["rows"] = rows
    document["load_average_end"] = load_average()
    args.out.mkdir(parents=True, exist_ok=True)
    for suffix, text in (("json", json.dumps(document, indent=1) + "\n"), ("md", markdown(document))):
        target = args.out / f"zoo.{suffix}"
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    failing = [f"{r['model']}@{r['opset']}" for r in rows if not r.get("within_tolerance")]
    print(f"{len(rows) - len(failing)}/{len(rows)} within tolerance" + (f"; not: {', '.join(failing)}" if failing else ""))
    return 0 if not failing else 1


if __name__ == "__main__":
    sys.exit(main())
