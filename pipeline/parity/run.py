"""Run the same inputs through PyTorch (optional), onnxruntime and the TF SavedModel (its
``serving_default`` signature, and ``serving_xla`` when it has one) and compare every output of
every pair with torch or onnxruntime as reference: torch-ort, torch-tf, torch-tf_xla, ort-tf,
ort-tf_xla (only the ort pairs without a torch module; see :mod:`.backends`).

A sweep runs several input cases; for each output and pair the result keeps the comparison of
the case where it is worst (largest tolerance ratio), and passes only if every case passes.

A case whose batch is larger than the frames budget runs in batch chunks (:mod:`.chunks`): each
chunk goes through every backend, is compared, and its outputs are dropped; the metrics are
running totals over the chunks. Per-layer localisation runs on one chunk, the one of the worst
case that holds its largest tolerance ratio (the whole case when it was not split).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from pipeline.runtime import provenance as provenance_record
from pipeline.runtime.devices import verify_placement
from pipeline.runtime.errors import UsageError
from pipeline.runtime.progress import Progress
from pipeline.stages.onnx_io import load_onnx, real_inputs

from .backends import (
    Backend,
    BackendSpec,
    OrtBackend,
    TorchBackend,
    float32_precision,
    reference_pairs,
    tf_backends,
)
from .cases import InputCase
from .chunks import DEFAULT_CHUNK_FRAMES, ChunkPlan, plan_chunks, take
from .chunks import RULE as CHUNK_RULE
from .layers import DEFAULT_TOP_K, LayerReport, localise
from .metrics import DEFAULT_TOLERANCE, ArrayComparison, ComparisonTotals, Tolerance
from .sequences import comparable, structure_problems

ToleranceLike = Tolerance | tuple[float, float]


@dataclass
class PairComparison:
    """One output compared between a reference backend and a candidate backend on one case."""

    output: str
    reference: str
    candidate: str
    case: str
    comparison: ArrayComparison

    @property
    def pair(self) -> str:
        return f"{self.reference}-{self.candidate}"

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    def severity(self) -> float:
        """Worst error over allowed error; infinite when shapes differ or values are non-finite."""
        if not self.comparison.shape_equal or self.comparison.nonfinite_mismatch:
            return float("inf")
        return self.comparison.worst_tolerance_ratio or 0.0

    def rank(self) -> tuple[float, float]:
        """Sort key, larger is worse: severity, then max abs."""
        return self.severity(), self.comparison.max_abs or 0.0


@dataclass
class CaseSummary:
    """One input case of a sweep: pass/fail, max abs and tolerance ratio per output and pair."""

    name: str
    passed: bool
    max_abs: dict[str, dict[str, float | None]]
    tolerance_ratio: dict[str, dict[str, float]]
    seconds: dict[str, float]
    chunks: ChunkPlan | None = None


@dataclass
class ParityResult:
    """Everything a parity run measured; ``write_report`` turns it into report.json/html."""

    model: dict[str, Any]
    backends: dict[str, dict[str, Any]]
    pairs: list[tuple[str, str]]
    comparisons: list[PairComparison]
    default_tolerance: Tolerance
    tolerances: dict[str, Tolerance]
    inputs: dict[str, Any]
    cases: list[CaseSummary]
    shown_case: str
    shown_outputs: dict[str, dict[str, np.ndarray]]
    per_layer: LayerReport | None
    versions: dict[str, str | None]
    weights_origin: str | Mapping[str, Any] | None
    devices: Mapping[str, Any] | None
    precision: dict[str, Any]
    timings: dict[str, float]
    problems: list[str] = field(default_factory=list)
    created_utc: str = ""
    chunking: dict[str, Any] = field(default_factory=dict)
    shown_rows: tuple[int, int] | None = None  # batch rows of the shown case that shown_outputs hold
    provenance: dict[str, Any] | None = None
    tflite: dict[str, Any] | None = None  # LiteRT files written and their variants' errors (pipeline.stages.tflite)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.comparisons)

    def failures(self) -> list[str]:
        """One line per failing comparison (output, pair, case, why) and per structural problem."""
        lines = list(self.problems)
        for c in self.comparisons:
            if not c.passed:
                case = f" [case {c.case}]" if len(self.cases) > 1 else ""
                lines.append(f"{c.output} {c.pair}{case}: {'; '.join(c.comparison.failures)}")
        return lines

    def worst(self) -> PairComparison | None:
        return max(self.comparisons, key=PairComparison.rank, default=None)

    def summary_line(self) -> str:
        """One line for the end of a CLI run."""
        n_outputs = len({c.output for c in self.comparisons})
        what = f"{n_outputs} outputs x {len(self.pairs)} pairs"
        if len(self.cases) > 1:
            what += f" x {len(self.cases)} cases"
        if self.passed:
            worst = self.worst()
            detail = "" if worst is None else (
                f" (worst: {worst.output} {worst.pair} max abs {_g(worst.comparison.max_abs)})"
            )
            return f"parity PASS: {what} within tolerance{detail}"
        failing = [c for c in self.comparisons if not c.passed]
        named = ", ".join(f"{c.output} {c.pair} (max abs {_g(c.comparison.max_abs)})" for c in failing)
        line = f"parity FAIL: {len(failing)} of {len(self.comparisons)} comparisons outside tolerance"
        line += f": {named}" if named else ""
        if self.problems:
            line += f"; {'; '.join(self.problems)}"
        first = self.per_layer.first_divergence if self.per_layer else None
        if first is not None:
            module = f" ({first.torch_module})" if first.torch_module else ""
            line += f"; first divergence at {first.onnx_node}{module}"
        elif self.per_layer is not None and self.per_layer.first_weight_mismatch is not None:
            line += f"; SavedModel {self.per_layer.first_weight_mismatch.describe()}"
        return line


def run_parity(
    onnx_path: Path,
    saved_model_dir: Path,
    inputs: Mapping[str, np.ndarray],
    *,
    input_description: Mapping[str, Any] | None = None,
    **options: Any,
) -> ParityResult:
    """Compare the backends on one input dict (arrays by ONNX input name).

    ``input_description`` (JSON types only: source, lengths, ...) is recorded with the inputs;
    ``options`` are those of :func:`run_sweep`.
    """
    case = InputCase("input", dict(inputs), dict(input_description or {}))
    return run_sweep(onnx_path, saved_model_dir, [case], **options)


def run_sweep(
    onnx_path: Path,
    saved_model_dir: Path,
    cases: Sequence[InputCase],
    *,
    torch_module: Any = None,
    ort_providers: Sequence[str] | None = None,
    tf_device: str | None = None,
    default_tolerance: ToleranceLike = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, ToleranceLike] | None = None,
    per_layer: bool = True,
    layer_tolerance: ToleranceLike | None = None,
    top_k: int = DEFAULT_TOP_K,
    allow_tf32: bool = False,
    weights_origin: str | Mapping[str, Any] | None = None,
    devices: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
    input_files: Sequence[tuple[str, Path | None]] = (),
    paths_relative_to: Path | None = None,
    onnx_model: onnx.ModelProto | None = None,
    tf_module: Any = None,
    extra_backends: Sequence[BackendSpec] = (),
) -> ParityResult:
    """Compare the backends on every case. A failed comparison does not raise: see ``passed``.

    - ``torch_module``: called with the inputs in ONNX input order; returns the outputs in ONNX
      output order (or a dict by name). Without it only the ort pairs are compared.
    - ``ort_providers``: onnxruntime providers by priority (default CPU only); the ones the
      session really used are recorded.
    - ``tf_device``: a ``tf.device`` string (default: the first GPU, else the CPU).
    - ``default_tolerance``, ``tolerances``: (atol, rtol), overridden per output by ONNX name,
      e.g. ``{"codes": (1e-4, 1e-3)}``.
    - ``per_layer``: localise the first diverging ONNX node on the worst case, under
      ``layer_tolerance`` (default: ``default_tolerance``), keeping the ``top_k`` worst nodes.
    - ``allow_tf32``: let GPUs use TensorFloat-32 (off by default, restored after the run).
    - ``weights_origin`` (text or JSON object) and ``devices`` (the device plan, e.g.
      ``DevicePlan.to_json()``): recorded as given. ``progress``: stage lines on stderr.
    - ``chunk_frames``: frames budget (batch rows x padded time) per batch chunk; a larger batch
      runs chunk by chunk (see :mod:`pipeline.parity.chunks`); None or 0 never splits.
    - ``input_files``: ``(role, path)`` of the files the inputs and weights were read from, hashed
      into ``provenance`` with the ONNX model and the SavedModel's saved_model.pb.
    - ``paths_relative_to``: an output folder still being written (e.g. the temp folder of an
      export): paths inside it are recorded relative to it.
    - ``onnx_model``: the model at ``onnx_path``, already loaded and checked, when the caller
      still has it (export has just written it); otherwise it is read from ``onnx_path``.
    - ``tf_module``: the :class:`pipeline.stages.tf_convert.OnnxGraphModule` the SavedModel was written
      from, when the caller still has it: the per-layer check reuses its traced node outputs
      instead of importing and tracing the ONNX graph again.
    - ``extra_backends``: more backends (e.g. LiteRT), loaded and run after tf, compared with
      every backend before them (their model files go into ``provenance`` and ``model``).

    Raises :class:`UsageError` for inputs or tolerances that do not fit the model and
    :class:`PipelineError` when a backend cannot load its model.
    """
    if not cases:
        raise UsageError("no input cases to compare")
    if chunk_frames is not None and chunk_frames < 0:
        raise UsageError(f"the parity chunk budget must be >= 0 frames (0: never split), got {chunk_frames}")
    progress = progress or Progress(quiet=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    created_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    model = onnx_model
    if model is None:
        with _stage(progress, timings, "parity: load onnx"):
            model = load_onnx(Path(onnx_path))
    input_names, output_names = _graph_io(model)
    default = _tolerance(default_tolerance)
    per_output = _per_output_tolerances(tolerances, output_names)
    for case in cases:
        _check_inputs(case, model, input_names)
    static_batch = _static_batch_inputs(model, input_names)
    plans = {case.name: plan_chunks(case.arrays, chunk_frames, static_batch) for case in cases}
    record = provenance_record.collect(
        [
            *input_files,
            ("onnx_model", Path(onnx_path)),
            ("saved_model", Path(saved_model_dir) / "saved_model.pb"),
            *((f"{spec.name}_model", spec.model_file) for spec in extra_backends if spec.model_file is not None),
        ],
        relative_to=paths_relative_to,
    )

    with float32_precision(allow_tf32) as precision:
        backends: list[Backend] = []
        if torch_module is not None:
            backends.append(TorchBackend(torch_module, input_names, output_names))
        with _stage(progress, timings, "parity: load onnxruntime"):
            backends.append(OrtBackend(Path(onnx_path), ort_providers, allow_tf32))
        with _stage(progress, timings, "parity: load tf savedmodel"):
            backends.extend(tf_backends(Path(saved_model_dir), output_names, tf_device))
        for spec in extra_backends:
            with _stage(progress, timings, f"parity: load {spec.name}"):
                backends.append(spec.load(output_names))
        pairs = reference_pairs([backend.name for backend in backends])
        tolerance_of = {name: per_output.get(name, default) for name in output_names}
        require_gpu = (devices or {}).get("requested") == "cuda"
        sweep = _run_cases(cases, plans, backends, pairs, output_names, tolerance_of, progress, timings, require_gpu)

        layer_report = None
        if per_layer:
            with _stage(progress, timings, "parity: per-layer"):
                shown = next(c for c in cases if c.name == sweep.shown_case)
                plan = plans[shown.name]
                layer_report = localise(
                    model,
                    take(shown.arrays, sweep.shown_chunk) if plan.count > 1 else shown.arrays,
                    tolerance=_tolerance(layer_tolerance) if layer_tolerance is not None else default,
                    ort_providers=list(ort_providers) if ort_providers else None,
                    tf_device=tf_device,
                    allow_tf32=allow_tf32,
                    module_names={n for n, _ in torch_module.named_modules()} if torch_module is not None else None,
                    top_k=top_k,
                    tf_module=tf_module,
                    saved_model_dir=Path(saved_model_dir),
                    require_gpu=require_gpu,
                )
                start, stop = plan.rows_of(sweep.shown_chunk)
                layer_report.input = {
                    "case": shown.name,
                    "chunk": plan.slices().index(sweep.shown_chunk) + 1 if plan.count > 1 else 1,
                    "chunks": plan.count,
                    "rows": [start, stop],
                    "whole_case": plan.count == 1,
                }
    timings["parity: total"] = round(time.perf_counter() - started, 3)

    return ParityResult(
        model={
            "onnx_path": provenance_record.display_path(onnx_path, paths_relative_to),
            "saved_model_dir": provenance_record.display_path(saved_model_dir, paths_relative_to),
            "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
            "inputs": input_names,
            "outputs": output_names,
            "nodes": len(model.graph.node),
            **({"backend_models": {
                spec.name: provenance_record.display_path(spec.model_file, paths_relative_to)
                for spec in extra_backends if spec.model_file is not None
            }} if extra_backends else {}),
        },
        backends={backend.name: backend.describe() for backend in backends},
        pairs=pairs,
        comparisons=[sweep.worst[(o, f"{a}-{b}")] for o in output_names for a, b in pairs if (o, f"{a}-{b}") in sweep.worst],
        default_tolerance=default,
        tolerances=tolerance_of,
        inputs={"cases": [case.to_json() for case in cases]},
        cases=sweep.summaries,
        shown_case=sweep.shown_case,
        shown_outputs=sweep.shown_outputs,
        per_layer=layer_report,
        versions=library_versions(),
        weights_origin=weights_origin,
        devices=devices,
        precision=precision,
        timings=timings,
        problems=sorted(set(sweep.problems)),
        created_utc=created_utc,
        chunking={
            "frames_budget": chunk_frames or None,
            "rule": CHUNK_RULE,
            "chunks": sum(plan.count for plan in plans.values()),
            "split": any(plan.count > 1 for plan in plans.values()),
        },
        shown_rows=plans[sweep.shown_case].rows_of(sweep.shown_chunk),
        provenance=record,
    )


@dataclass
class _Sweep:
    """What running every case gave: the worst comparison per (output, pair), a summary per
    case, structural problems, and the worst case's worst chunk: its rows and outputs (for the
    report's images and the per-layer localisation)."""

    worst: dict[tuple[str, str], PairComparison] = field(default_factory=dict)
    summaries: list[CaseSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    shown_case: str = ""
    shown_chunk: slice = field(default_factory=lambda: slice(None))
    shown_outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    shown_severity: float = -1.0


def _run_cases(
    cases: Sequence[InputCase],
    plans: Mapping[str, ChunkPlan],
    backends: list[Backend],
    pairs: list[tuple[str, str]],
    output_names: list[str],
    tolerance_of: dict[str, Tolerance],
    progress: Progress,
    timings: dict[str, float],
    require_gpu: bool = False,
) -> _Sweep:
    """Every case through every backend, compared; ``require_gpu`` (``--device cuda``): stop
    after the first call when a backend did not run on the GPU."""
    sweep = _Sweep()
    for number, case in enumerate(cases, 1):
        plan = plans[case.name]
        seconds: dict[str, float] = {}
        totals: dict[tuple[str, str, str], ComparisonTotals] = {}
        case_chunk, case_outputs, case_severity = slice(None), {}, -1.0
        chunks = plan.slices()
        for chunk_number, chunk in enumerate(chunks, 1):
            arrays = take(case.arrays, chunk) if plan.count > 1 else case.arrays
            raw: dict[str, dict[str, Any]] = {}
            for backend in backends:
                start = time.perf_counter()
                raw[backend.name] = backend.run(arrays)
                elapsed = time.perf_counter() - start
                seconds[backend.name] = round(seconds.get(backend.name, 0.0) + elapsed, 3)
                key = f"parity: run {backend.name}"
                timings[key] = round(timings.get(key, 0.0) + elapsed, 3)
            if require_gpu and number == 1 and chunk_number == 1:
                verify_placement(backends)
            sweep.problems.extend(structure_problems(raw, pairs))
            outputs = {name: {o: comparable(v) for o, v in values.items()} for name, values in raw.items()}
            rows = plan.rows_of(chunk)
            compared = _compare_chunk(outputs, pairs, output_names, tolerance_of, sweep.problems, plan, rows)
            severity = 0.0
            for key, part in compared.items():
                severity = max(severity, _severity(part.finish()))
                totals[key] = totals[key].merge(part) if key in totals else part
            if severity > case_severity:
                case_chunk, case_outputs, case_severity = chunk, outputs, severity
            del outputs, arrays
            if plan.count > 1:
                which = f"case {number}/{len(cases)} {case.name}, " if len(cases) > 1 else ""
                progress.info(
                    f"[parity] {which}chunk {chunk_number}/{plan.count}: rows {rows[0]}-{rows[1] - 1} of "
                    f"{plan.rows} ({rows[1] - rows[0]} x {plan.frames_per_row} frames), "
                    f"worst tolerance ratio {severity:.3g}"
                )
        compared_case = [
            PairComparison(output, reference, candidate, case.name, part.finish())
            for (output, reference, candidate), part in totals.items()
        ]
        for c in compared_case:
            kept = sweep.worst.get((c.output, c.pair))
            if kept is None or c.rank() > kept.rank():
                sweep.worst[(c.output, c.pair)] = c
        severity = max((c.severity() for c in compared_case), default=0.0)
        if severity > sweep.shown_severity:
            sweep.shown_case, sweep.shown_chunk, sweep.shown_outputs = case.name, case_chunk, case_outputs
            sweep.shown_severity = severity
        del case_outputs
        passed = all(c.passed for c in compared_case)
        sweep.summaries.append(
            CaseSummary(
                case.name,
                passed,
                _table(compared_case, lambda c: c.comparison.max_abs),
                _table(compared_case, PairComparison.severity),
                seconds,
                plan,
            )
        )
        if len(cases) > 1:
            progress.info(f"[parity] case {number}/{len(cases)} {case.name}: {'PASS' if passed else 'FAIL'}")
    return sweep


def library_versions() -> dict[str, str | None]:
    """Versions of Python and of every library a parity run goes through (None if absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorflow", "onnx-tf"):
        try:
            versions[package.replace("-", "_")] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package.replace("-", "_")] = None
    return versions


def _compare_chunk(
    outputs: dict[str, dict[str, np.ndarray]],
    pairs: list[tuple[str, str]],
    output_names: list[str],
    tolerance_of: dict[str, Tolerance],
    problems: list[str],
    plan: ChunkPlan,
    rows: tuple[int, int],
) -> dict[tuple[str, str, str], ComparisonTotals]:
    """The totals of every output and pair on one chunk, by (output, reference, candidate), in
    output then pair order."""
    compared = {}
    for output in output_names:
        for reference, candidate in pairs:
            missing = [b for b in (reference, candidate) if output not in outputs[b]]
            if missing:
                problems.append(f"output {output} missing from {' and '.join(missing)}")
                continue
            ref, cand = outputs[reference][output], outputs[candidate][output]
            if plan.count > 1 and (np.ndim(ref) == 0 or np.shape(ref)[0] != rows[1] - rows[0]):
                problems.append(
                    f"output {output} has no batch axis 0 (shape {list(np.shape(ref))} for "
                    f"{rows[1] - rows[0]} rows), so it cannot be compared in batch chunks; "
                    "rerun with --parity-chunk-frames 0"
                )
                continue
            compared[(output, reference, candidate)] = ComparisonTotals.of(ref, cand, tolerance_of[output])
    return compared


def _severity(comparison: ArrayComparison) -> float:
    """Worst error over allowed error of one comparison; infinite for a shape or non-finite mismatch."""
    if not comparison.shape_equal or comparison.nonfinite_mismatch:
        return float("inf")
    return comparison.worst_tolerance_ratio or 0.0


def _static_batch_inputs(model: onnx.ModelProto, input_names: list[str]) -> list[str]:
    """Inputs whose axis 0 has a fixed size in the ONNX graph (a chunk would not fit them)."""
    fixed = []
    for value in model.graph.input:
        if value.name not in input_names:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            fixed.append(value.name)
    return fixed


def _table(compared: list[PairComparison], value: Callable[[PairComparison], Any]) -> dict[str, dict[str, Any]]:
    """``{output: {pair: value(comparison)}}``."""
    table: dict[str, dict[str, Any]] = {}
    for c in compared:
        table.setdefault(c.output, {})[c.pair] = value(c)
    return table


def _graph_io(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    inputs = [value.name for value in real_inputs(model.graph)]
    return inputs, [value.name for value in model.graph.output]


def _check_inputs(case: InputCase, model: onnx.ModelProto, input_names: list[str]) -> None:
    given = set(case.arrays)
    if given != set(input_names):
        raise UsageError(
            f"input case '{case.name}' has inputs {sorted(given)}; the ONNX model needs {input_names}"
        )
    for value in model.graph.input:
        if value.name not in given:
            continue
        want = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        got = np.asarray(case.arrays[value.name]).dtype
        if got != want:
            raise UsageError(f"input '{value.name}' of case '{case.name}' is {got}; the ONNX model needs {want}")


def _tolerance(value: ToleranceLike) -> Tolerance:
    tolerance = value if isinstance(value, Tolerance) else Tolerance(*map(float, value))
    if not (tolerance.atol >= 0 and tolerance.rtol >= 0):
        raise UsageError(f"tolerances must be >= 0, got {tolerance}")
    return tolerance


def _per_output_tolerances(
    tolerances: Mapping[str, ToleranceLike] | None, output_names: list[str]
) -> dict[str, Tolerance]:
    unknown = sorted(set(tolerances or {}) - set(output_names))
    if unknown:
        raise UsageError(f"tolerance given for unknown outputs {unknown}; the model's outputs are {output_names}")
    return {name: _tolerance(value) for name, value in (tolerances or {}).items()}


@contextmanager
def _stage(progress: Progress, timings: dict[str, float], name: str) -> Iterator[None]:
    with progress.stage(name):
        yield
    timings[name] = progress.timings[name]


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
