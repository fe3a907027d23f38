"""Parity on a batch too large to run at once: the batch is split along axis 0 into chunks within
a frames budget, each chunk runs through every backend and is compared, and the metrics are
running totals. Checked: the merge of the metric totals against numpy over the concatenated
arrays (an independent oracle), the chunk plan, a real export compared in >= 3 chunks against
the same backends' outputs concatenated and compared at once, the same run unsplit, and the
``--parity-chunk-frames`` flag of ``parity`` and ``export`` through the real CLI."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cosine as cosine_distance

from pipeline.parity import REL_ERR_FLOOR, ParityResult, Tolerance, compare_arrays, run_parity
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES, plan_chunks
from pipeline.parity.metrics import ComparisonTotals
from pipeline.parity.report_json import report_dict

TOLERANCE = Tolerance(1e-5, 1e-4)
METRICS = ("max_abs", "mean_abs", "rmse", "max_rel", "cosine", "within_tolerance", "worst_tolerance_ratio")
COUNTS = ("elements", "nonfinite_mismatch", "nan_reference", "nan_candidate", "inf_reference", "inf_candidate")
LENGTHS = [100, 113, 90, 60, 113]
"""The test batch: five utterances (padded to 113 frames)."""
BUDGET = 2 * max(LENGTHS)
"""Two rows per chunk: chunks of 2, 2 and 1 rows."""


# --- the metric merge against numpy over the concatenated arrays --------------------------------


def _numpy_oracle(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> dict[str, Any]:
    """Every metric straight from its definition, over the whole arrays at once."""
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    finite = np.isfinite(ref) & np.isfinite(cand)
    both_nan = np.isnan(ref) & np.isnan(cand)
    error = np.where(finite, np.abs(cand - np.where(finite, ref, 0.0)), 0.0)
    allowed = tolerance.atol + tolerance.rtol * np.abs(np.where(finite, ref, 0.0))
    within = np.isclose(cand, ref, atol=tolerance.atol, rtol=tolerance.rtol, equal_nan=True)
    oracle: dict[str, Any] = {
        "elements": ref.size,
        "nonfinite_mismatch": int((~finite & ~(both_nan | (ref == cand))).sum()),
        "nan_reference": int(np.isnan(reference).sum()),
        "nan_candidate": int(np.isnan(candidate).sum()),
        "inf_reference": int(np.isinf(reference).sum()),
        "inf_candidate": int(np.isinf(candidate).sum()),
        "within_tolerance": within.mean(),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error > 0, error / allowed, 0.0)
    if finite.any():
        errors = error[finite]
        a, b = ref[finite], cand[finite]
        oracle.update(
            max_abs=errors.max(),
            mean_abs=errors.mean(),
            rmse=np.sqrt(np.mean(errors**2)),
            max_rel=np.max(errors / np.maximum(np.abs(a), REL_ERR_FLOOR)),
            cosine=(1.0 - cosine_distance(a, b)) if a.any() and b.any() else float(not a.any() and not b.any()),
            worst_tolerance_ratio=np.max(ratio),
            max_abs_index=np.unravel_index(np.argmax(error), error.shape),
        )
    return oracle


@st.composite
def chunked_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A reference/candidate pair (B, T, C) with some NaN/Inf, and chunk boundaries along B."""
    rows = draw(st.integers(1, 7))
    shape = (rows, draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(shape).astype(np.float32) * draw(st.sampled_from([1e-4, 1.0, 100.0]))
    noise = rng.standard_normal(shape).astype(np.float32) * draw(st.sampled_from([0.0, 1e-7, 1e-5, 1e-2]))
    candidate = (reference + noise).astype(np.float32)
    if draw(st.booleans()):
        for array in (reference, candidate):
            flat = array.reshape(-1)
            picks = rng.integers(0, flat.size, size=rng.integers(0, 3))
            flat[picks] = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), size=picks.size)
    if draw(st.booleans()):
        candidate[rng.integers(0, rows)] = reference[0, 0, 0]  # a row far off, maybe a tie
    cuts = sorted(set(draw(st.lists(st.integers(1, rows - 1), max_size=rows - 1)))) if rows > 1 else []
    return reference, candidate, cuts


@settings(max_examples=120, deadline=None)
@given(chunked_pairs(), st.sampled_from([Tolerance(1e-5, 1e-4), Tolerance(0.0, 0.0), Tolerance(1e-3, 0.0)]))
def test_merged_totals_equal_numpy_over_the_concatenated_arrays(
    case: tuple[np.ndarray, np.ndarray, list[int]], tolerance: Tolerance
) -> None:
    reference, candidate, cuts = case
    parts = [
        ComparisonTotals.of(r, c, tolerance)
        for r, c in zip(np.split(reference, cuts), np.split(candidate, cuts))
    ]
    merged = reduce(ComparisonTotals.merge, parts).finish()
    oracle = _numpy_oracle(reference, candidate, tolerance)

    assert merged.shape_reference == reference.shape and merged.shape_candidate == candidate.shape
    for key in COUNTS:
        assert getattr(merged, key) == oracle[key], key
    assert merged.within_tolerance == pytest.approx(oracle["within_tolerance"], rel=1e-12)
    if "max_abs" not in oracle:
        assert merged.max_abs is None and merged.max_abs_index is None
    else:
        for key in METRICS:
            assert getattr(merged, key) == pytest.approx(oracle[key], rel=1e-7, abs=1e-300), key
        assert merged.max_abs_index == tuple(int(i) for i in oracle["max_abs_index"])
        index = merged.max_abs_index
        assert merged.max_abs_reference == pytest.approx(float(reference[index]), nan_ok=True)
        assert merged.max_abs_candidate == pytest.approx(float(candidate[index]), nan_ok=True)
    assert merged.passed == bool(np.isclose(candidate.astype(np.float64), reference.astype(np.float64),
                                            atol=tolerance.atol, rtol=tolerance.rtol, equal_nan=True).all())
    whole = compare_arrays(reference, candidate, tolerance)
    assert merged.failures == whole.failures


def test_merging_chunks_of_different_shapes_fails_as_a_shape_mismatch() -> None:
    a = ComparisonTotals.of(np.zeros((2, 3)), np.zeros((2, 3)), TOLERANCE)
    b = ComparisonTotals.of(np.zeros((1, 3)), np.zeros((1, 4)), TOLERANCE)
    merged = a.merge(b).finish()
    assert not merged.passed and merged.max_abs is None
    assert merged.shape_reference == (3, 3) and merged.shape_candidate == (3, 3)
    assert any("shape" in failure for failure in merged.failures)


# --- the chunk plan ----------------------------------------------------------------------------


def _batch(rows: int, frames: int) -> dict[str, np.ndarray]:
    return {"mel": np.zeros((rows, frames, 80), np.float32), "emb": np.zeros((rows, 256), np.float32)}


@pytest.mark.parametrize(
    ("rows", "frames", "budget", "rows_per_chunk", "chunks"),
    [
        (5, 113, 226, 2, 3),
        (5, 113, 225, 1, 5),
        (5, 113, 10_000, 5, 1),
        (3, 8192, DEFAULT_CHUNK_FRAMES, 2, 2),
        (1, 9000, DEFAULT_CHUNK_FRAMES, 1, 1),  # longer than the budget: a chunk of its own
        (4, 9000, DEFAULT_CHUNK_FRAMES, 1, 4),
        (4, 100, 0, 4, 1),  # 0: never split
    ],
)
def test_chunks_hold_as_many_rows_as_the_frames_budget_allows(rows, frames, budget, rows_per_chunk, chunks):
    plan = plan_chunks(_batch(rows, frames), budget)
    assert (plan.rows_per_chunk, plan.count, plan.frames_per_row) == (rows_per_chunk, chunks, frames)
    slices = plan.slices()
    assert len(slices) == chunks
    covered = np.concatenate([np.arange(rows)[s] for s in slices])
    np.testing.assert_array_equal(covered, np.arange(rows))  # every row once, in order
    assert all(np.arange(rows)[s].size * frames <= max(budget, frames) or budget == 0 for s in slices)


def test_a_model_with_a_fixed_batch_size_is_not_split():
    plan = plan_chunks(_batch(4, 100), 100, static_batch_inputs=["mel"])
    assert plan.count == 1 and "fixed" in plan.not_split_because


# --- a real export, compared in chunks --------------------------------------------------------


def _mels() -> list[np.ndarray]:
    from pipeline.models.autovc.default_input import default_batch

    mel = default_batch(256)["mel"][0]
    rng = np.random.default_rng(3)
    return [
        (np.roll(mel, 7 * i, axis=0)[:length] + 0.01 * rng.standard_normal((length, 80))).astype(np.float32)
        for i, length in enumerate(LENGTHS)
    ]


@dataclass
class Runs:
    onnx_path: Path
    saved_model: Path
    module: Any
    arrays: dict[str, np.ndarray]
    chunked: ParityResult
    unsplit: ParityResult


@pytest.fixture(scope="module")
def runs(exported_autovc) -> Runs:
    from pipeline.models.autovc import AutoVC, random_generator
    from pipeline.models.autovc.inputs import pad_batch

    out, _ = exported_autovc
    module = AutoVC(random_generator(0)[0]).eval()
    mel, _ = pad_batch(_mels())
    rng = np.random.default_rng(5)
    emb = (0.05 * rng.standard_normal((len(LENGTHS), 256))).astype(np.float32)
    arrays = {"mel": mel, "emb_src": emb, "emb_trg": emb[::-1].copy()}
    common = dict(torch_module=module, weights_origin="random weights, seed 0")
    chunked = run_parity(out / "model.onnx", out / "saved_model", arrays, chunk_frames=BUDGET, **common)
    unsplit = run_parity(out / "model.onnx", out / "saved_model", arrays, chunk_frames=0, per_layer=False, **common)
    return Runs(out / "model.onnx", out / "saved_model", module, arrays, chunked, unsplit)


@pytest.mark.slow
def test_the_chunk_count_and_budget_are_recorded(runs: Runs) -> None:
    report = report_dict(runs.chunked)
    assert report["chunking"]["frames_budget"] == BUDGET
    assert report["chunking"]["chunks"] == 3 and report["chunking"]["split"] is True
    assert report["cases"][0]["chunks"] == {
        "chunks": 3, "rows": 5, "rows_per_chunk": 2, "frames_per_row": 113, "not_split_because": None,
    }
    scope = report["per_layer"]["input"]
    assert scope["whole_case"] is False and scope["chunks"] == 3 and 1 <= scope["chunk"] <= 3
    assert scope["rows"] == [[0, 2], [2, 4], [4, 5]][scope["chunk"] - 1]
    assert report["per_layer"]["nodes_compared"] > 80
    unsplit = report_dict(runs.unsplit)
    assert unsplit["chunking"]["chunks"] == 1 and unsplit["chunking"]["split"] is False
    assert unsplit["cases"][0]["chunks"]["not_split_because"].startswith("chunking is off")


@pytest.mark.slow
def test_chunked_metrics_equal_the_whole_batch_compared_at_once(runs: Runs) -> None:
    """The oracle: the same backends run on the same three chunks, their outputs concatenated
    and compared in one go. Every metric agrees to 1e-7 relative (summation order only)."""
    from pipeline.parity.backends import OrtBackend, TorchBackend, tf_backends

    outputs = runs.chunked.model["outputs"]
    backends = [
        TorchBackend(runs.module, runs.chunked.model["inputs"], outputs),
        OrtBackend(runs.onnx_path),
        *tf_backends(runs.saved_model, outputs),
    ]
    whole = {}
    for backend in backends:
        parts = [backend.run({k: v[rows] for k, v in runs.arrays.items()})
                 for rows in (slice(0, 2), slice(2, 4), slice(4, 5))]
        whole[backend.name] = {name: np.concatenate([p[name] for p in parts]) for name in outputs}
    assert len(runs.chunked.comparisons) == 3 * 5  # outputs x pairs (two TF signatures)
    for c in runs.chunked.comparisons:
        oracle = compare_arrays(whole[c.reference][c.output], whole[c.candidate][c.output], c.comparison.tolerance)
        _assert_same_metrics(c.comparison, oracle, rel=1e-7, where=f"{c.output} {c.pair}")


@pytest.mark.slow
def test_chunked_and_unsplit_runs_agree(runs: Runs) -> None:
    """Against the run that feeds the whole batch at once, the numbers agree to within what
    PyTorch and TensorFlow change on CPU when the batch size changes (oneDNN picks kernels by
    shape; onnxruntime does not), far below the tolerance."""
    assert runs.chunked.passed == runs.unsplit.passed
    assert [(c.output, c.pair) for c in runs.chunked.comparisons] == [(c.output, c.pair) for c in runs.unsplit.comparisons]
    for chunked, unsplit in zip(runs.chunked.comparisons, runs.unsplit.comparisons):
        a, b = chunked.comparison, unsplit.comparison
        for key in COUNTS:
            assert getattr(a, key) == getattr(b, key), key
        assert a.shape_reference == b.shape_reference and a.shape_reference[0] == len(LENGTHS)
        for key in ("max_abs", "mean_abs", "rmse"):
            assert abs(getattr(a, key) - getattr(b, key)) <= 0.5 * TOLERANCE.atol, (chunked.output, chunked.pair, key)
        assert a.cosine == pytest.approx(b.cosine, abs=1e-9)


def _assert_same_metrics(a, b, *, rel: float, where: str) -> None:
    assert a.passed == b.passed, where
    assert (a.shape_reference, a.shape_candidate) == (b.shape_reference, b.shape_candidate), where
    for key in COUNTS:
        assert getattr(a, key) == getattr(b, key), (where, key)
    for key in METRICS:
        assert getattr(a, key) == pytest.approx(getattr(b, key), rel=rel, abs=1e-300), (where, key)
    assert a.max_abs_index == b.max_abs_index, where
    assert (a.max_abs_reference, a.max_abs_candidate) == (b.max_abs_reference, b.max_abs_candidate), where


# --- through the real CLI ---------------------------------------------------------------------


def _write_mels(folder: Path, count: int) -> list[Path]:
    paths = []
    for i, mel in enumerate(_mels()[:count]):
        paths.append(folder / f"utterance{i}.npy")
        np.save(paths[-1], mel)
    return paths


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_parity_cli_runs_in_chunks_and_records_them(exported_autovc, tmp_path):
    out, _ = exported_autovc
    mels = _write_mels(tmp_path, 3)
    report = tmp_path / "report"
    result = run_cli("parity", "--onnx", str(out / "model.onnx"), "--saved-model", str(out / "saved_model"),
                     "--report", str(report), *[f"--mel={m}" for m in mels], "--parity-chunk-frames", "113")
    assert result.returncode == 0, result.stderr[-3000:]
    for number in (1, 2, 3):
        assert f"[parity] chunk {number}/3: rows {number - 1}-{number - 1} of 3 (1 x 113 frames)" in result.stderr
    assert "chunked: 3 batch chunks of at most 113 frames" in result.stderr
    data = json.loads((report / "report.json").read_text())
    assert data["passed"] and data["chunking"]["chunks"] == 3 and data["chunking"]["frames_budget"] == 113
    assert data["cases"][0]["chunks"]["rows_per_chunk"] == 1
    assert data["per_layer"]["input"]["whole_case"] is False
    assert data["provenance"]["command"]["argv"][-2:] == ["--parity-chunk-frames", "113"]
    recorded = {(r["role"], r["path"]): r["sha256"] for r in data["provenance"]["inputs"]}
    expected = {("mel", str(m)): _sha256(m) for m in mels}
    expected[("onnx_model", str(out / "model.onnx"))] = _sha256(out / "model.onnx")
    expected[("saved_model", str(out / "saved_model" / "saved_model.pb"))] = _sha256(out / "saved_model" / "saved_model.pb")
    assert recorded == expected
    assert "batch chunk" in (report / "report.html").read_text()


@pytest.mark.slow
def test_export_cli_passes_the_chunk_budget_to_its_parity_stage(tmp_path):
    mels = _write_mels(tmp_path, 3)
    out = tmp_path / "autovc"
    result = run_cli("export", "--out", str(out), *[f"--mel={m}" for m in mels], "--parity-chunk-frames", "226",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[parity] chunk 2/2: rows 2-2 of 3 (1 x 113 frames)" in result.stderr
    data = json.loads((out / "report" / "report.json").read_text())
    assert data["chunking"] == {**data["chunking"], "frames_budget": 226, "chunks": 2, "split": True}
    assert data["model"]["onnx_path"] == "model.onnx" and data["model"]["saved_model_dir"] == "saved_model"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(r["role"], r["sha256"]) for r in manifest["provenance"]["inputs"]] == [("mel", _sha256(m)) for m in mels]
