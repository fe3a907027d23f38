"""report.html: one self-contained page (inline CSS, images as base64 PNG from matplotlib Agg,
no script, no network) that a person reads to judge a conversion. Figures have fixed margins and
no minor ticks on log axes: tight_layout and minor ticks took most of the page's 4 s.

Top to bottom: the verdict band, failures, one metrics table per output, spectrogram images of
each backend's output side by side with an error heat map, error histograms (log scale), the
per-layer error curve with the first diverging node marked and the worst nodes, the sweep cases,
and the run's facts (model, backends, devices, versions, inputs, timings).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from pipeline.runtime.report_format import escape_html, png_img, scientific

from .backends import BACKEND_LABELS
from .layers import LayerReport
from .metrics import REL_ERR_FLOOR, percent
from .report_json import PADDING_POLICY, RELATIVE_ERROR, TOLERANCE_RULE
from .run import PairComparison, ParityResult

_LINE_STYLES = ("solid", "dashed", "dotted", "dashdot")
"""Pairs take them in turn, so that identical histograms (e.g. torch-tf and ort-tf) stay visible."""
PASS_COLOUR = "#1e7d32"
FAIL_COLOUR = "#c62828"
LAYER_ERROR_FLOOR = 1e-12
"""Exact zeros of the per-layer curve are drawn at this value (a log axis has no 0)."""

_CSS = f"""
body {{ font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
       color: #1f2328; background: #ffffff; font-size: 14px; }}
main {{ padding: 0 28px 40px 28px; }}
.verdict {{ color: #ffffff; padding: 22px 28px; }}
.verdict.pass {{ background: {PASS_COLOUR}; }}
.verdict.fail {{ background: {FAIL_COLOUR}; }}
.verdict h1 {{ margin: 0 0 6px 0; font-size: 30px; letter-spacing: 0.5px; }}
.verdict p {{ margin: 0; font-size: 15px; }}
h2 {{ margin: 30px 0 10px 0; font-size: 20px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }}
h3 {{ margin: 18px 0 6px 0; font-size: 16px; }}
table {{ border-collapse: collapse; margin: 6px 0 12px 0; }}
table.metrics {{ font-size: 12px; }}
table.metrics td, table.metrics th {{ padding: 3px 5px; }}
table.metrics td.num {{ font-size: 12px; }}
table.layers code {{ font-size: 12px; word-break: break-all; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; font-weight: 600; }}
td.num {{ text-align: right; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }}
tr.fail td {{ background: #fdecea; }}
td.num, td.name {{ white-space: nowrap; }}
.ok {{ color: {PASS_COLOUR}; font-weight: 600; }}
.bad {{ color: {FAIL_COLOUR}; font-weight: 600; }}
.failures {{ background: #fdecea; border-left: 5px solid {FAIL_COLOUR}; padding: 8px 14px; margin: 16px 0; }}
.divergence {{ background: #fff4e5; border-left: 5px solid #ef6c00; padding: 8px 14px; margin: 10px 0; }}
.note {{ color: #57606a; font-size: 13px; }}
code {{ font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }}
img {{ max-width: 100%; height: auto; display: block; margin: 6px 0; }}
"""


def render(result: ParityResult) -> str:
    """The whole page as one HTML string."""
    import matplotlib

    matplotlib.use("Agg")
    parts = [_verdict(result), "<main>"]
    failures = result.failures()
    if failures:
        items = "".join(f"<li>{escape_html(line)}</li>" for line in failures)
        parts.append(f'<div class="failures"><strong>Failures</strong><ul>{items}</ul></div>')
    parts.append(_metrics_tables(result))
    parts.append(_tflite(result))
    parts.append(_spectrograms(result))
    parts.append(_histograms(result))
    parts.append(_layers(result))
    parts.append(_sweep(result))
    parts.append(_facts(result))
    parts.append("</main>")
    body = "\n".join(p for p in parts if p)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Parity {'PASS' if result.passed else 'FAIL'}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _verdict(result: ParityResult) -> str:
    state = "pass" if result.passed else "fail"
    backends = " / ".join(BACKEND_LABELS[name] for name in result.backends)
    return (
        f'<header class="verdict {state}"><h1>Parity {state.upper()}</h1>'
        f"<p>{escape_html(result.summary_line())}</p>"
        f'<p class="sub">{escape_html(backends)} &middot; {escape_html(result.created_utc)}</p></header>'
    )


def _metrics_tables(result: ParityResult) -> str:
    sweep = len(result.cases) > 1
    parts = [
        (
            '<h2>Outputs</h2><p class="note">Max error at: b = batch, t = time, c = channel '
            "(f = feature for rank-2 outputs). Relative error: |candidate - reference| / "
            f"max(|reference|, {REL_ERR_FLOOR:g}).</p>"
        )
    ]
    if sweep:
        parts.append(f'<p class="note">Each row is the worst of {len(result.cases)} input cases for that output and pair.</p>')
    headers = ["pair", "max abs", "mean abs", "RMSE", "max rel", "cosine", "within tol", "atol / rtol",
               "max error at", "values there (ref / cand)", "shape, dtype", "NaN/Inf ref &middot; cand", "result"]
    if sweep:
        headers.insert(1, "case")
    for output in result.model["outputs"]:
        rows = [c for c in result.comparisons if c.output == output]
        if not rows:
            continue
        parts.append(f"<h3><code>{escape_html(output)}</code></h3><table class=\"metrics\"><tr>{''.join(f'<th>{h}</th>' for h in headers)}</tr>")
        for c in rows:
            parts.append(_metrics_row(c, sweep))
        parts.append("</table>")
    return "\n".join(parts)


def _metrics_row(c: PairComparison, sweep: bool) -> str:
    m = c.comparison
    at = m.max_abs_location()
    if at is not None:
        at_text = " ".join(f"{axis[0]}{index}" for axis, index in at.items())
    else:
        at_text = "n/a" if m.max_abs_index is None else str(list(m.max_abs_index))
    values = "n/a" if m.max_abs_reference is None else f"{m.max_abs_reference:.7g} / {m.max_abs_candidate:.7g}"
    shape = "x".join(map(str, m.shape_reference))
    if not m.shape_equal:
        shape += " vs " + "x".join(map(str, m.shape_candidate))
    dtype = m.dtype_reference if m.dtype_equal else f"{m.dtype_reference} vs {m.dtype_candidate}"
    nonfinite = f"{m.nan_reference}/{m.inf_reference} &middot; {m.nan_candidate}/{m.inf_candidate}"
    cells = [
        f"<td>{escape_html(c.pair)}</td>",
        *(f'<td class="num">{scientific(v)}</td>' for v in (m.max_abs, m.mean_abs, m.rmse, m.max_rel)),
        f'<td class="num">{"n/a" if m.cosine is None else f"{m.cosine:.9f}"}</td>',
        f'<td class="num">{percent(m.within_tolerance)}</td>',
        f'<td class="num">{m.tolerance.atol:g} / {m.tolerance.rtol:g}</td>',
        f'<td class="num" title="{escape_html(str(at))}">{escape_html(at_text)}</td>',
        f'<td class="num">{values}</td>',
        f"<td>{shape}, {escape_html(dtype)}</td>",
        f'<td class="num">{nonfinite}</td>',
        '<td class="ok">ok</td>' if m.passed else f'<td class="bad" title="{escape_html("; ".join(m.failures))}">FAIL</td>',
    ]
    if sweep:
        cells.insert(1, f"<td>{escape_html(c.case)}</td>")
    return f"<tr class=\"{'pass' if m.passed else 'fail'}\">{''.join(cells)}</tr>"


def _spectrograms(result: ParityResult) -> str:
    """Rank-3 (batch, time, channel) outputs: each backend's image and the largest pair error."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    outputs = result.shown_outputs
    names = [n for n in result.model["outputs"] if all(np.ndim(outputs[b].get(n)) == 3 for b in outputs)]
    if not names:
        return ""
    parts = [
        (
            f"<h2>Spectrograms</h2><p class=\"note\">Input case <code>{escape_html(result.shown_case)}</code>; "
            f"{_chunk_note(result)}the batch item shown is the one holding the largest error. Heat map: |candidate - reference| "
            "of the pair with the largest error, log colour scale; the cross marks the maximum.</p>"
        )
    ]
    for name in names:
        arrays = {b: np.asarray(outputs[b][name], np.float64) for b in outputs}
        reference, candidate, error = _largest_error_pair(arrays, result.pairs)
        item = int(np.unravel_index(np.argmax(error), error.shape)[0]) if error.size else 0
        fig, axes = plt.subplots(1, len(arrays) + 1, figsize=(4.2 * (len(arrays) + 1), 3.4), squeeze=False)
        axes = axes[0]
        low = min(float(a[item].min()) for a in arrays.values())
        high = max(float(a[item].max()) for a in arrays.values())
        for ax, (backend, array) in zip(axes, arrays.items()):
            image = ax.imshow(array[item].T, origin="lower", aspect="auto", cmap="viridis", vmin=low, vmax=high,
                              interpolation="nearest")
            ax.set_title(f"{BACKEND_LABELS[backend]}")
            ax.set_xlabel("time")
            ax.set_ylabel("channel")
        fig.colorbar(image, ax=axes[len(arrays) - 1], fraction=0.046, pad=0.04)
        ax = axes[-1]
        frame = error[item].T
        peak = float(frame.max())
        if peak > 0:
            image = ax.imshow(np.maximum(frame, peak * 1e-6), origin="lower", aspect="auto", cmap="magma",
                              norm=LogNorm(vmin=peak * 1e-6, vmax=peak), interpolation="nearest")
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.minorticks_off()
            t, ch = np.unravel_index(np.argmax(frame.T), frame.T.shape)
            ax.plot([t], [ch], marker="x", color="cyan", markersize=10, markeredgewidth=2)
            ax.set_title(f"|{candidate} - {reference}|, max {peak:.2e}")
        else:
            ax.imshow(frame, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            ax.set_title(f"|{candidate} - {reference}| = 0 everywhere")
        ax.set_xlabel("time")
        fig.suptitle(f"{name} (batch item {item + (result.shown_rows or (0, 0))[0]})", fontsize=12)
        fig.subplots_adjust(left=0.05, right=0.97, bottom=0.15, top=0.82, wspace=0.3)
        parts.append(f"<h3><code>{escape_html(name)}</code></h3>{png_img(fig, f'{name} spectrograms and error heat map')}")
    return "\n".join(parts)


def _largest_error_pair(
    arrays: dict[str, np.ndarray], pairs: list[tuple[str, str]]
) -> tuple[str, str, np.ndarray]:
    best: tuple[float, str, str, np.ndarray] | None = None
    for reference, candidate in pairs:
        if arrays[reference].shape != arrays[candidate].shape:
            continue
        error = np.nan_to_num(np.abs(arrays[candidate] - arrays[reference]), nan=np.inf)
        peak = float(error.max()) if error.size else 0.0
        if best is None or peak > best[0]:
            best = (peak, reference, candidate, error)
    if best is None:
        reference, candidate = pairs[0]
        return reference, candidate, np.zeros_like(arrays[reference])
    return best[1], best[2], best[3]


def _histograms(result: ParityResult) -> str:
    """|candidate - reference| per output, one line per pair, log-spaced bins and log counts."""
    import matplotlib.pyplot as plt

    outputs = result.shown_outputs
    names = [n for n in result.model["outputs"] if all(n in outputs[b] for b in outputs)]
    if not names:
        return ""
    fig, axes = plt.subplots(1, len(names), figsize=(5.6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        plotted = False
        for (reference, candidate), style in zip(result.pairs, itertools.cycle(_LINE_STYLES)):
            a = np.asarray(outputs[reference][name], np.float64)
            b = np.asarray(outputs[candidate][name], np.float64)
            if a.shape != b.shape:
                continue
            error = np.abs(b - a)
            error = error[np.isfinite(error)]
            zeros = int((error == 0).sum())
            positive = error[error > 0]
            label = f"{reference}-{candidate} ({zeros} exact)"
            if positive.size:
                low, high = positive.min(), positive.max()
                bins = np.logspace(np.log10(low), np.log10(high) + 1e-9, 40) if high > low else [low * 0.9, high * 1.1]
                ax.hist(positive, bins=bins, histtype="step", linewidth=1.6, linestyle=style, label=label)
                plotted = True
            else:
                ax.plot([], [], label=label)
        if plotted:  # a log axis with no positive value to show raises (every pair exact)
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.minorticks_off()  # hundreds of minor ticks cost more to draw than the rest of the figure
        ax.set_xlabel("|candidate - reference|")
        ax.set_ylabel("elements")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9, wspace=0.25)
    return (
        f"<h2>Error distribution</h2><p class=\"note\">Input case <code>{escape_html(result.shown_case)}</code>; "
        f"{_chunk_note(result)}"
        "exact zeros are counted in the legend (a log axis cannot show them).</p>"
        + png_img(fig, "error histograms")
    )


def _layers(result: ParityResult) -> str:
    layers = result.per_layer
    if layers is None:
        return '<h2>Per-layer</h2><p class="note">Per-layer localisation was not run.</p>'
    parts = ["<h2>Per-layer (onnxruntime vs TensorFlow, every ONNX node output)</h2>"]
    first = layers.first_divergence
    weights_class = "divergence" if layers.weight_mismatches else "note"
    parts.append(f'<p class="{weights_class}">{escape_html(layers.weights_line())}</p>')
    if first is None:
        parts.append(f'<p class="ok">No node exceeds the layer tolerance ({escape_html(str(layers.tolerance))}).</p>')
        why = layers.nodes_line({c.pair for c in result.comparisons if not c.passed})
        if why is not None:
            parts.append(f'<div class="divergence">{escape_html(why)}</div>')
    else:
        parts.append(
            '<div class="divergence"><strong>First divergence</strong>: node '
            f"<code>{escape_html(first.onnx_node)}</code> ({escape_html(first.op_type)}), torch module "
            f"<code>{escape_html(_module(first.torch_module))}</code>, output <code>{escape_html(first.output)}</code>, "
            f"max abs {scientific(first.max_abs)} (layer tolerance {escape_html(str(layers.tolerance))})</div>"
        )
    if layers.nodes:
        parts.append(png_img(_layer_curve(layers), "per-layer error curve"))
    if layers.input and not layers.input.get("whole_case"):
        rows = layers.input["rows"]
        parts.append(f'<p class="note">Run on batch chunk {layers.input["chunk"]} of {layers.input["chunks"]} '
                     f'(rows {rows[0]}-{rows[1] - 1}) of input case <code>{escape_html(str(layers.input["case"]))}</code>, '
                     "the chunk holding its largest error.</p>")
    parts.append(f'<p class="note">{len(layers.nodes)} of {layers.nodes_total} nodes compared '
                 "(non-float and empty outputs skipped). Worst nodes by tolerance ratio "
                 "(max error over allowed error; hover a node for its output):</p>")
    parts.append("<table class=\"metrics layers\"><tr><th>#</th><th>ONNX node</th><th>op</th><th>torch module</th>"
                 "<th>max abs</th><th>tolerance ratio</th><th>result</th></tr>")
    for node in layers.worst():
        parts.append(
            f"<tr class=\"{'pass' if node.passed else 'fail'}\"><td class=\"num\">{node.index}</td>"
            f"<td title=\"output {escape_html(node.output)}\"><code>{escape_html(node.onnx_node)}</code></td><td>{escape_html(node.op_type)}</td>"
            f"<td><code>{escape_html(_module(node.torch_module))}</code></td>"
            f'<td class="num">{scientific(node.max_abs)}</td><td class="num">{scientific(node.severity())}</td>'
            f"{'<td class=ok>ok</td>' if node.passed else '<td class=bad>FAIL</td>'}</tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def _layer_curve(layers: LayerReport) -> Any:
    """Max abs error per compared node along the graph, log scale, first divergence marked."""
    import matplotlib.pyplot as plt

    x = np.array([n.index for n in layers.nodes])
    y = np.array([np.nan if n.max_abs is None else n.max_abs for n in layers.nodes], np.float64)
    failed = np.array([not n.passed for n in layers.nodes])
    exact = y == 0
    top = max(float(np.nanmax(y, initial=0.0)), LAYER_ERROR_FLOOR)
    fig, ax = plt.subplots(figsize=(12, 3.8))
    ax.plot(x[~exact], y[~exact], color="#455a64", linewidth=1.0, marker="o", markersize=2.5,
            label="max abs per node")
    if exact.any():
        ax.scatter(x[exact], np.full(exact.sum(), LAYER_ERROR_FLOOR), color="#90a4ae", marker="v", s=12,
                   label=f"exactly equal (drawn at {LAYER_ERROR_FLOOR:g})")
    if failed.any():
        ax.scatter(x[failed], np.nan_to_num(y[failed], nan=top), color=FAIL_COLOUR, s=16, zorder=3,
                   label="outside tolerance")
    first = layers.first_divergence
    if first is not None:
        ax.axvline(first.index, color="#ef6c00", linestyle="--", linewidth=1.5, label="first divergence")
        ax.annotate(first.onnx_node, xy=(first.index, LAYER_ERROR_FLOOR), xytext=(6, 6),
                    textcoords="offset points", fontsize=8, color="#ef6c00")
    ax.set_yscale("log")
    ax.set_ylim(LAYER_ERROR_FLOOR / 3, top * 30)
    ax.minorticks_off()
    ax.set_xlabel("ONNX node index (topological order)")
    ax.set_ylabel("max abs error")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.95)
    return fig


def _sweep(result: ParityResult) -> str:
    if len(result.cases) < 2:
        return ""
    columns = [f"{c.output} {c.pair}" for c in result.comparisons]
    parts = [f"<h2>Sweep: {len(result.cases)} input cases</h2><p class=\"note\">max abs per output and pair.</p>",
             "<table class=\"metrics\"><tr><th>case</th><th>result</th>" + "".join(f"<th>{escape_html(c)}</th>" for c in columns) + "</tr>"]
    for case in result.cases:
        cells = "".join(
            f'<td class="num">{scientific(case.max_abs.get(c.output, {}).get(c.pair))}</td>' for c in result.comparisons
        )
        verdict = '<td class="ok">ok</td>' if case.passed else '<td class="bad">FAIL</td>'
        parts.append(
            f"<tr class=\"{'pass' if case.passed else 'fail'}\"><td class=\"name\">{escape_html(case.name)}</td>{verdict}{cells}</tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def _tflite(result: ParityResult) -> str:
    """The LiteRT files: size, conversion time, builtin ops, and each quantized variant's max abs
    error (reported, not held to the tolerance)."""
    if not result.tflite:
        return ""
    outputs = result.model["outputs"]
    reference = result.tflite.get("variants_reference") or "reference"
    headers = ["file", "variant", "size", "conversion"] + [f"max abs vs {reference}: {o}" for o in outputs] + ["builtin ops"]
    rows = []
    for model in result.tflite["models"]:
        errors = model.get("max_abs_vs_reference") or {}
        cells = [escape_html(model["path"]), escape_html(model["variant"]), f"{model['bytes'] / 1e6:.2f} MB",
                 f"{model['conversion_s']:.1f} s"]
        cells += [scientific(errors[o]) if o in errors else "litert rows above" if model["variant"] == "float32" else "n/a"
                  for o in outputs]
        cells.append(escape_html(", ".join(f"{op} x{n}" for op, n in model["ops"].items())))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<h2>LiteRT models</h2><p class="note">Builtin ops only (no Flex, no custom ops). Quantized '
        "variants are reported, not held to the tolerance.</p><table class=\"metrics\"><tr>"
        + "".join(f"<th>{escape_html(h)}</th>" for h in headers) + "</tr>" + "".join(rows) + "</table>"
    )


def _facts(result: ParityResult) -> str:
    rows: list[tuple[str, Any]] = [
        ("ONNX model", result.model["onnx_path"]),
        ("SavedModel", result.model["saved_model_dir"]),
        *((f"{BACKEND_LABELS[name]} model", path) for name, path in result.model.get("backend_models", {}).items()),
        ("opset", result.model["opset"]),
        ("weights", result.weights_origin or "not stated"),
    ]
    if result.devices is not None:
        rows.append(("device plan", result.devices))
    for name, info in result.backends.items():
        rows.append((f"backend {name}", {k: v for k, v in info.items() if k != "label"}))
    rows.append(("precision", result.precision))
    rows.append(("versions", result.versions))
    rows.append(("tolerance rule", TOLERANCE_RULE))
    rows.append(("relative error", RELATIVE_ERROR))
    rows.append(("padding", PADDING_POLICY))
    for case in result.inputs["cases"][:4]:
        described = {k: v for k, v in case.items() if k not in ("name", "tensors")}
        tensors = {name: _tensor_text(t) for name, t in case["tensors"].items()}
        rows.append((f"input case '{case['name']}'", {**described, **tensors}))
    if len(result.inputs["cases"]) > 4:
        rows.append(("more inputs", f"{len(result.inputs['cases']) - 4} more cases, listed in report.json"))
    if result.chunking:
        rows.append(("batch chunks", result.chunking))
    if result.provenance is not None:
        rows.append(("provenance", {k: v for k, v in result.provenance.items() if k != "inputs"}))
        for record in result.provenance.get("inputs", []):
            rows.append((f"input file ({record['role']})", f"{record['path']} sha256 {record['sha256']}"))
    rows.append(("timings (s)", result.timings))
    body = "".join(f"<tr><th>{escape_html(k)}</th><td>{_value(v)}</td></tr>" for k, v in rows)
    return f"<h2>Run</h2><table>{body}</table>"


def _chunk_note(result: ParityResult) -> str:
    """Which batch rows the images show, when the case ran in chunks."""
    case = next((c for c in result.cases if c.name == result.shown_case), None)
    if case is None or case.chunks is None or case.chunks.count == 1 or result.shown_rows is None:
        return ""
    start, stop = result.shown_rows
    return f"batch rows {start}-{stop - 1} (the chunk of {case.chunks.count} holding the largest error); "


def _tensor_text(tensor: dict[str, Any]) -> str:
    text = f"{'x'.join(map(str, tensor['shape']))} {tensor['dtype']}"
    if "min" in tensor:
        text += f", min {tensor['min']:.4g}, max {tensor['max']:.4g}, mean {tensor['mean']:.4g}"
    return text


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "<br>".join(f"{escape_html(str(k))}: {_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"<code>{escape_html(str(value))}</code>"




def _module(name: str | None) -> str:
    """A torch module name for display: "" is the top module's own forward, None is unknown."""
    return "n/a" if name is None else name or "(top module)"
