"""The train-parity report: report.json (every number), report.html (one self-contained page:
inline CSS, matplotlib images as base64 PNG, no script, no network) and summary.txt (the
terminal table).

The folder is written through :class:`~pipeline.runtime.artifacts.AtomicOutputDir`: it appears whole or
not at all, and a folder this tool did not write is not replaced without ``force``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.runtime.artifacts import AtomicOutputDir
from pipeline.runtime.report_format import escape_html, finite_or_null, png_img, scientific

from . import tolerances
from .results import StepReport, TensorCheck, TrainParityResult

SCHEMA_VERSION = 1
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
SUMMARY_TXT = "summary.txt"
TOLERANCE_NOTES = {
    "elementwise rule": "|tf - torch| <= atol + rtol * |torch| for every element",
    "loss": f"elementwise, atol {tolerances.LOSS.atol:g}, rtol {tolerances.LOSS.rtol:g}",
    "gradients": f"per parameter, ||tf - torch|| <= {tolerances.GRADIENT_RELATIVE_L2:g} ||torch|| + "
    f"{tolerances.GRADIENT_FLOOR_OF_SCALE:g} G sqrt(n); G = largest |gradient| element of the model at that "
    "step. L2, not elementwise: float32 rounding scales with G, and a ReLU pre-activation within rounding "
    "noise of 0 may take the other branch in either framework, which moves every upstream gradient by that "
    "one position's contribution",
    "running_stats": f"elementwise, atol {tolerances.BN_STATS.atol:g}, rtol {tolerances.BN_STATS.rtol:g}; "
    "num_batches_tracked exactly",
    "optimizer_tf": "TF's weights after its step vs torch.optim.Adam's update of the same state with TF's "
    f"gradient: elementwise, atol {tolerances.OPTIMIZER.atol:g}, rtol {tolerances.OPTIMIZER.rtol:g} "
    "(a few ulps of the weight)",
    "optimizer_torch": "TorchAdam vs torch.optim.Adam, both fed PyTorch's gradients since step 1: same tolerance",
    "weights vs torch": "reported in units of lr, not judged: Adam divides every gradient element by its own "
    "size, so elements whose gradient is rounding noise (biases that BatchNorm cancels) or sits at a kink "
    "step by up to lr either way",
}


def report_dict(result: TrainParityResult) -> dict[str, Any]:
    """Everything in the report, as plain JSON types (non-finite floats become null)."""
    report = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": result.created_utc,
        "passed": result.passed,
        "summary": result.summary_line(),
        "failures": result.failures(),
        "versions": result.versions,
        "weights_origin": result.weights_origin,
        "hyperparameters": result.hyperparameters,
        "batch": result.batch,
        "adam": {"lr": result.adam.lr, "betas": list(result.adam.betas), "eps": result.adam.eps, "weight_decay": 0.0},
        "tolerances": TOLERANCE_NOTES,
        "gradient_free_parameters": result.gradient_free,
        "float64_gradients_step1": result.float64_gradients,
        "steps": [step.to_json() for step in result.steps],
        "free_running": result.free_running,
        "timings_s": result.timings,
    }
    return finite_or_null(report)


def write_report(result: TrainParityResult, report_dir: Path, *, force: bool = False) -> Path:
    """Write report.json, report.html and summary.txt into ``report_dir``; returns report.json."""
    output = AtomicOutputDir(Path(report_dir), force=force)
    with output as temp:
        output.manifest["kind"] = "train-parity-report"
        (temp / REPORT_JSON).write_text(json.dumps(report_dict(result), indent=2, allow_nan=False) + "\n")
        (temp / REPORT_HTML).write_text(render_html(result), encoding="utf-8")
        (temp / SUMMARY_TXT).write_text(summary_table(result), encoding="utf-8")
    return Path(report_dir) / REPORT_JSON


def _worst(checks: list[TensorCheck]) -> TensorCheck:
    return max(checks, key=lambda c: c.ratio)


def _max_weight_lr(step: StepReport) -> float:
    return max(v["max_abs_lr"] for v in step.weights_vs_torch.values())


def summary_table(result: TrainParityResult) -> str:
    """Verdict, one row per step, the free-running line and every failure."""
    header = ["step", "loss err", "grad", "BN stats", "optim tf", "optim torch", "w-torch (lr)", "keras (lr)",
              "worst gradient"]
    rows = [header]
    for step in result.steps:
        worst_gradient = _worst(step.gradients)
        rows.append([
            str(step.step),
            f"{step.loss['loss']['abs_error']:.2e}",
            f"{worst_gradient.ratio:.3f}",
            f"{_worst(step.running_stats).ratio:.3f}" if step.running_stats else "n/a",
            f"{_worst(step.optimizer_tf).ratio:.3f}",
            f"{_worst(step.optimizer_torch).ratio:.3f}",
            f"{_max_weight_lr(step):.3g}",
            f"{max(step.keras_drift_lr.values()):.3g}",
            worst_gradient.name,
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        result.summary_line(),
        (
            "grad, BN stats, optim: worst error / allowance (<= 1 passes); "
            "w-torch, keras: max |w - w_torch| / lr (reported)"
        ),
    ]
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    free = result.free_running
    weights = free["weights_after_last_step"].values()
    lines.append(
        f"free running {len(result.steps)} steps (reported, not judged): last loss torch "
        f"{free['loss']['torch'][-1]:.7g}, tf {free['loss']['tf'][-1]:.7g}, control {free['loss']['control'][-1]:.7g}; "
        f"max weight divergence from torch: tf {max(v['tf_vs_torch_lr'] for v in weights):.3g} lr, "
        f"control {max(v['control_vs_torch_lr'] for v in weights):.3g} lr"
    )
    lines += [f"failure: {line}" for line in result.failures()]
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
       color: #1f2328; font-size: 14px; }
main { padding: 0 28px 40px 28px; }
.verdict { color: #fff; padding: 22px 28px; }
.verdict.pass { background: #1e7d32; } .verdict.fail { background: #c62828; }
.verdict h1 { margin: 0 0 6px 0; font-size: 30px; }
h2 { margin: 30px 0 10px 0; font-size: 20px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 6px 0 12px 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; }
th { background: #f6f8fa; }
td.num { text-align: right; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: nowrap; }
tr.fail td { background: #fdecea; }
.ok { color: #1e7d32; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
.failures { background: #fdecea; border-left: 5px solid #c62828; padding: 8px 14px; margin: 16px 0; }
.note { color: #57606a; font-size: 13px; max-width: 1100px; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
"""


def render_html(result: TrainParityResult) -> str:
    import matplotlib

    matplotlib.use("Agg")
    state = "pass" if result.passed else "fail"
    parts = [
        (
            f'<header class="verdict {state}"><h1>Train parity {state.upper()}</h1>'
            f"<p>{escape_html(result.summary_line())}</p><p>{escape_html(result.created_utc)}</p></header><main>"
        )
    ]
    if result.failures():
        items = "".join(f"<li>{escape_html(line)}</li>" for line in result.failures()[:200])
        parts.append(f'<div class="failures"><strong>Failures</strong><ul>{items}</ul></div>')
    parts.append(
        '<p class="note">At every step TensorFlow (the trainable SavedModel, reloaded) starts from PyTorch\'s '
        "state before the step (weights, BatchNorm buffers, Adam moments) and is compared with PyTorch's state "
        "after it. Step 1 starts from the common initial weights.</p>"
    )
    parts.append(_table(["check", "tolerance"], [[escape_html(k), escape_html(v)] for k, v in TOLERANCE_NOTES.items()]))
    parts.append(_steps_section(result))
    parts.append(_gradients_section(result))
    first, last = result.steps[0], result.steps[-1]
    for step in [first] if first is last else [first, last]:
        parts.append(_weights_section(result, step))
        parts.append(_running_stats_section(step))
    parts.append(_optimizer_section(result))
    parts.append(_free_running_section(result))
    facts = {
        "weights": result.weights_origin,
        "hyperparameters": result.hyperparameters,
        "batch": result.batch,
        "adam": {"lr": result.adam.lr, "betas": result.adam.betas, "eps": result.adam.eps},
        "versions": result.versions,
        "timings (s)": result.timings,
    }
    parts.append("<h2>Run</h2>" + _table(["", ""], [[escape_html(k), escape_html(json.dumps(v, default=str))] for k, v in facts.items()]))
    parts.append("</main>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Train parity {state.upper()}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _steps_section(result: TrainParityResult) -> str:
    rows = []
    for step in result.steps:
        loss = step.loss["loss"]
        rows.append([
            step.step, f"{loss['torch']:.9g}", f"{loss['tf']:.9g}", scientific(loss["abs_error"]), scientific(step.gradient_scale),
            *(f"{_worst(checks).ratio:.3g}" if checks else "n/a" for checks in step.checks().values()),
            f"{_max_weight_lr(step):.3g}", f"{max(step.keras_drift_lr.values()):.3g}", _verdict(not step.failures()),
        ])
    return (
        '<h2>Steps</h2><p class="note">Check columns: worst error / allowance (at most 1 passes).</p>'
        + _table(["step", "loss torch", "loss tf", "|diff|", "G", "gradients", "BN stats", "optimizer (TF grads)",
                  "optimizer (torch grads)", "max |w_tf - w_torch| / lr", "Keras drift (lr)", "result"], rows)
    )


def _gradients_section(result: TrainParityResult) -> str:
    import matplotlib.pyplot as plt

    step = result.steps[0]
    scale = step.gradient_scale
    float64 = result.float64_gradients
    names = [c.name for c in step.gradients]
    floor = 1e-12
    fig, ax = plt.subplots(figsize=(12, 4.4))
    x = np.arange(len(names))
    ax.semilogy(x, [max(c.relative_l2, floor) for c in step.gradients], "o", ms=4, label="||tf - torch|| / ||torch||")
    ax.semilogy(x, [max(c.max_abs_error / scale, floor) for c in step.gradients], ".", ms=5,
                label="max |tf - torch| / G")
    ax.semilogy(x, [max(float64[n]["torch_float32"], floor) for n in names], "_", ms=9,
                label="max |torch float32 - float64| / G")
    ax.semilogy(x, [max(float64[n]["tf_float32"], floor) for n in names], "x", ms=4, label="max |tf - float64| / G")
    ax.axhline(tolerances.GRADIENT_RELATIVE_L2, color="#c62828", ls="--", lw=1, label="relative L2 tolerance")
    ax.set_xticks(x, names, rotation=90, fontsize=6)
    ax.legend(fontsize=8)
    fig.tight_layout()
    rows = [
        [
            f"<code>{escape_html(c.name)}</code>" + (" (exact gradient 0)" if c.name in result.gradient_free else ""),
            "x".join(map(str, c.shape)), scientific(c.reference_max_abs), scientific(c.relative_l2), scientific(c.max_abs_error / scale),
            scientific(float64[c.name]["torch_float32"]), scientific(float64[c.name]["tf_float32"]), f"{c.ratio:.3g}",
            _verdict(c.passed),
        ]
        for c in step.gradients
    ]
    return (
        f"<h2>Gradients at step 1 (same weights), G = {scale:.4g}</h2>"
        '<p class="note">Per PyTorch parameter. The float64 columns compare with PyTorch in float64: float32 '
        'PyTorch is itself that far from exact. "Exact gradient 0" marks biases that training-mode BatchNorm '
        "cancels; both frameworks return rounding noise for them.</p>"
        + png_img(fig, "gradient errors per parameter")
        + _table(["parameter", "shape", "max |grad| torch", "relative L2", "max abs err / G", "torch32 vs f64 / G",
                  "tf vs f64 / G", "tolerance ratio", "result"], rows)
    )


def _weights_section(result: TrainParityResult, step: StepReport) -> str:
    checks = {c.name: c for c in step.optimizer_tf}
    rows = [
        [
            f"<code>{escape_html(name)}</code>" + (" (exact gradient 0)" if name in result.gradient_free else ""),
            f"{values['max_abs_lr']:.3g}", scientific(values["update_relative_l2"]), f"{checks[name].ratio:.3g}",
            _verdict(checks[name].passed),
        ]
        for name, values in step.weights_vs_torch.items()
    ]
    return (
        f"<h2>Weights after step {step.step} (lr = {result.adam.lr:g})</h2>"
        "<p class=\"note\">Against PyTorch's weights: reported. Against torch.optim.Adam applied to TF's own "
        "gradient from the same state: judged (optimizer columns).</p>"
        + _table(["parameter", "max |w_tf - w_torch| / lr", "||dw_tf - dw_torch|| / ||dw_torch||",
                  "optimizer tolerance ratio", "result"], rows)
    )


def _running_stats_section(step: StepReport) -> str:
    rows = [
        [f"<code>{escape_html(c.name)}</code>", scientific(c.reference_max_abs), scientific(c.max_abs_error), f"{c.ratio:.3g}", c.outside,
         _verdict(c.passed)]
        for c in step.running_stats
    ]
    return f"<h2>BatchNorm buffers after step {step.step}</h2>" + _table(
        ["buffer", "max |torch|", "max abs err", "tolerance ratio", "elements outside", "result"], rows
    )


def _optimizer_section(result: TrainParityResult) -> str:
    beta2 = result.adam.betas[1]
    first, last = result.steps[0], result.steps[-1]
    effective = {t: result.adam.eps / math.sqrt(1 - beta2**t) for t in (first.step, last.step)}
    rows = [
        [f"<code>{escape_html(name)}</code>", f"{first.keras_drift_lr[name]:.3g}", f"{last.keras_drift_lr[name]:.3g}"]
        for name in first.keras_drift_lr
    ]
    ours = max(_worst(step.optimizer_torch).ratio for step in result.steps)
    return (
        "<h2>Optimizer on PyTorch's gradients</h2>"
        f'<p class="note">TorchAdam against torch.optim.Adam, both fed PyTorch\'s gradients: worst tolerance '
        f"ratio {ours:.3g} over {len(result.steps)} steps. Keras' Adam adds eps to sqrt(v) before the bias "
        f"correction, i.e. uses eps / sqrt(1 - beta2^t): {effective[first.step]:.3g} at step {first.step} and "
        f"{effective[last.step]:.3g} at step {last.step} instead of {result.adam.eps:g}. Its drift from "
        "torch.optim.Adam on the same gradients, max |w_keras - w_torch| / lr per parameter:</p>"
        + _table(["parameter", f"after step {first.step}", f"after step {last.step}"], rows)
    )


def _free_running_section(result: TrainParityResult) -> str:
    import matplotlib.pyplot as plt

    free = result.free_running
    steps = np.arange(1, len(free["loss"]["torch"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.6))
    for label, values in free["loss"].items():
        ax1.plot(steps, values, marker="o", ms=3, label=label)
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss (before the step)")
    ax1.legend(fontsize=8)
    torch_loss = np.asarray(free["loss"]["torch"])
    for label in ("tf", "control"):
        ax2.semilogy(steps, np.maximum(np.abs(np.asarray(free["loss"][label]) - torch_loss), 1e-12), marker="o",
                     ms=3, label=f"|{label} - torch|")
    ax2.set_xlabel("step")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    per_parameter = free["weights_after_last_step"]
    worst = sorted(per_parameter, key=lambda n: per_parameter[n]["tf_vs_torch_lr"], reverse=True)[:12]
    rows = [
        [f"<code>{escape_html(n)}</code>",
         *(f"{per_parameter[n][k]:.3g}" for k in ("tf_vs_torch_lr", "control_vs_torch_lr", "tf_vs_control_lr"))]
        for n in worst
    ]
    return (
        "<h2>Free running (reported, not judged)</h2>"
        '<p class="note">TF trains alone from the initial weights. Float32 training of AutoVC is chaotic at '
        "rounding level: Adam divides each gradient element by its own size, so elements whose gradient is near "
        "rounding noise or at a ReLU kink step by up to lr either way, and two float32 runs drift apart. The "
        "control is PyTorch whose first step uses TF's gradient, then trains on its own.</p>"
        + png_img(fig, "free-running losses")
        + _table(["parameter (largest TF divergence)", "tf vs torch (lr)", "control vs torch (lr)",
                  "tf vs control (lr)"], rows)
    )


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """Cells are HTML already (callers escape text); numbers are right-aligned."""
    head = "".join(f"<th>{escape_html(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text = str(cell)
            numeric = isinstance(cell, (int, float)) or text[:1].isdigit() or text[:2] in ("-0", "-1", "n/")
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        failed = _verdict(False) in row
        body.append(f"<tr{' class=fail' if failed else ''}>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _verdict(passed: bool) -> str:
    return '<span class="ok">ok</span>' if passed else '<span class="bad">FAIL</span>'
