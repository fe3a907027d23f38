"""The parity summary as an aligned plain-text table (for stderr and summary.txt)."""

from __future__ import annotations

from pipeline.runtime.report_format import scientific

from .metrics import percent
from .run import ParityResult

COLUMNS = ("output", "pair", "max abs", "mean abs", "rmse", "max rel", "cosine", "within tol", "atol/rtol", "result")
NUMERIC = {"max abs", "mean abs", "rmse", "max rel", "cosine", "within tol"}


def summary_table(result: ParityResult) -> str:
    """Verdict line, one row per output and pair, then the sweep and first diverging layer."""
    sweep = len(result.cases) > 1
    columns = list(COLUMNS) + (["worst case"] if sweep else [])
    rows = [columns]
    for c in result.comparisons:
        m = c.comparison
        row = [
            c.output,
            c.pair,
            scientific(m.max_abs),
            scientific(m.mean_abs),
            scientific(m.rmse),
            scientific(m.max_rel),
            "n/a" if m.cosine is None else f"{m.cosine:.9f}",
            percent(m.within_tolerance),
            f"{m.tolerance.atol:g}/{m.tolerance.rtol:g}",
            "ok" if m.passed else "FAIL",
        ]
        rows.append(row + ([c.case] if sweep else []))
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [result.summary_line()]
    for number, row in enumerate(rows):
        cells = [
            cell.rjust(width) if column in NUMERIC else cell.ljust(width)
            for column, cell, width in zip(columns, row, widths)
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("pass if |candidate - reference| <= atol + rtol * |reference| for every element")
    for problem in result.problems:
        lines.append(f"problem: {problem}")
    if sweep:
        failing = [case.name for case in result.cases if not case.passed]
        lines.append(f"sweep: {len(result.cases)} cases, {len(failing)} failing" + (f": {', '.join(failing)}" if failing else ""))
    if result.chunking.get("split"):
        lines.append(_chunk_line(result))
    lines.extend(_tflite_lines(result))
    if result.per_layer is not None:
        first = result.per_layer.first_divergence
        lines.append(result.per_layer.weights_line())
        if first is None:
            lines.append(f"per-layer: all {len(result.per_layer.nodes)} compared node outputs within tolerance (ort vs tf)")
            why = result.per_layer.nodes_line({c.pair for c in result.comparisons if not c.passed})
            if why is not None:
                lines.append(f"  {why}")
        else:
            module = "n/a" if first.torch_module is None else first.torch_module or "(top module)"
            lines.append(
                f"first divergence: node {first.onnx_node} ({first.op_type}), torch module {module}, "
                f"output {first.output}, max abs {scientific(first.max_abs)}"
            )
    return "\n".join(lines) + "\n"


def _chunk_line(result: ParityResult) -> str:
    """How the batch was split, and which chunk the per-layer comparison ran on."""
    split = [case for case in result.cases if case.chunks is not None and case.chunks.count > 1]
    line = (
        f"chunked: {result.chunking['chunks']} batch chunks of at most {result.chunking['frames_budget']} frames"
        f" ({len(split)} of {len(result.cases)} cases split)"
    )
    scope = result.per_layer.input if result.per_layer is not None else {}
    if scope and not scope.get("whole_case"):
        line += f"; per-layer on chunk {scope['chunk']}/{scope['chunks']} (rows {scope['rows'][0]}-{scope['rows'][1] - 1})"
    return line


def _tflite_lines(result: ParityResult) -> list[str]:
    """One line per LiteRT file written: size, and a quantized variant's max abs per output."""
    if not result.tflite:
        return []
    reference = result.tflite.get("variants_reference")
    lines = []
    for model in result.tflite["models"]:
        errors = model.get("max_abs_vs_reference")
        detail = (
            f", max abs vs {reference}: " + ", ".join(f"{k} {scientific(v)}" for k, v in errors.items())
            if errors else ", compared above (litert)" if model["variant"] == "float32" else ""
        )
        lines.append(f"tflite {model['path']} ({model['variant']}): {model['bytes'] / 1e6:.1f} MB{detail}")
    ops = sorted({op for model in result.tflite["models"] for op in model["ops"]})
    lines.append(f"tflite builtin ops: {', '.join(ops)}")
    return lines
