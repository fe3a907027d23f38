"""Parity metrics, scope-name mapping and input batching: pure numpy, checked against
independent formulations (numpy.isclose, scipy's cosine distance, explicit loops)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cosine as cosine_distance

from pipeline.parity import (
    REL_ERR_FLOOR,
    Tolerance,
    compare_arrays,
    metadata_sweep_cases,
    pad_batch,
    torch_module_for_node,
)
from pipeline.parity.metrics import percent
from pipeline.runtime.errors import UsageError

FINITE = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@st.composite
def array_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 5)))
    reference = draw(arrays(np.float32, shape, elements=FINITE))
    noise = draw(arrays(np.float32, shape, elements=st.floats(-(2.0**-10), 2.0**-10, width=32)))
    return reference, (reference + noise).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(array_pairs(), st.sampled_from([Tolerance(1e-5, 1e-4), Tolerance(1e-4, 0.0), Tolerance(0.0, 1e-3)]))
def test_metrics_match_independent_formulas(pair: tuple[np.ndarray, np.ndarray], tolerance: Tolerance) -> None:
    reference, candidate = pair
    result = compare_arrays(reference, candidate, tolerance)
    ref64, cand64 = reference.astype(np.float64), candidate.astype(np.float64)
    diff = np.abs(cand64 - ref64)

    assert result.max_abs == pytest.approx(diff.max(), abs=0)
    assert result.mean_abs == pytest.approx(diff.mean())
    assert result.rmse == pytest.approx(np.sqrt((diff**2).mean()))
    assert result.max_rel == pytest.approx(max(d / max(abs(r), REL_ERR_FLOOR) for d, r in zip(diff.ravel(), ref64.ravel())))
    if np.any(ref64) and np.any(cand64):
        assert result.cosine == pytest.approx(1.0 - cosine_distance(ref64.ravel(), cand64.ravel()), abs=1e-9)
    within = np.isclose(cand64, ref64, atol=tolerance.atol, rtol=tolerance.rtol)  # |a-b| <= atol + rtol*|b|
    assert result.within_tolerance == pytest.approx(within.mean())
    assert result.passed == bool(within.all())
    assert abs(cand64[result.max_abs_index] - ref64[result.max_abs_index]) == diff.max()
    assert result.shape_equal and result.dtype_equal


def test_max_error_location_is_named_for_rank_3() -> None:
    reference = np.zeros((2, 7, 4), np.float32)
    candidate = reference.copy()
    candidate[1, 5, 2] = 0.5
    result = compare_arrays(reference, candidate, Tolerance(1e-5, 1e-4))
    assert result.max_abs_index == (1, 5, 2)
    assert result.max_abs_location() == {"batch": 1, "time": 5, "channel": 2}
    assert (result.max_abs_reference, result.max_abs_candidate) == (0.0, 0.5)
    assert not result.passed
    assert "1 of 56 elements outside tolerance" in result.failures[0]
    assert result.within_tolerance == pytest.approx(55 / 56)


def test_relative_error_uses_the_stated_floor() -> None:
    reference = np.array([1e-6, 2.0], np.float32)
    candidate = np.array([2e-6, 2.0], np.float32)
    result = compare_arrays(reference, candidate, Tolerance(1e-5, 0.0))
    assert result.max_rel == pytest.approx((np.float64(candidate[0]) - np.float64(reference[0])) / REL_ERR_FLOOR)
    assert result.passed


def test_nan_and_inf_on_both_sides_match_but_one_sided_ones_fail() -> None:
    reference = np.array([np.nan, np.inf, 1.0, 2.0], np.float32)
    same = reference.copy()
    result = compare_arrays(reference, same, Tolerance(0.0, 0.0))
    assert result.passed
    assert (result.nan_reference, result.inf_reference) == (1, 1)
    assert result.max_abs == 0.0

    one_sided = np.array([1.0, -np.inf, 1.0, np.nan], np.float32)
    result = compare_arrays(reference, one_sided, Tolerance(1.0, 1.0))
    assert not result.passed
    assert result.nonfinite_mismatch == 3
    assert (result.nan_candidate, result.inf_candidate) == (1, 1)
    assert result.within_tolerance == pytest.approx(1 / 4)
    assert any("NaN/Inf on one side only" in f for f in result.failures)


def test_shape_and_dtype_mismatches_fail() -> None:
    result = compare_arrays(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), Tolerance(1, 1))
    assert not result.passed and not result.shape_equal and result.max_abs is None
    result = compare_arrays(np.zeros(3, np.float32), np.zeros(3, np.float64), Tolerance(1, 1))
    assert not result.passed and not result.dtype_equal and result.max_abs == 0.0


def test_zero_tolerance_passes_only_exact_equality() -> None:
    reference = np.linspace(-1, 1, 11, dtype=np.float32)
    assert compare_arrays(reference, reference.copy(), Tolerance(0.0, 0.0)).passed
    nudged = np.nextafter(reference, np.float32(2))
    result = compare_arrays(reference, nudged, Tolerance(0.0, 0.0))
    assert not result.passed and result.worst_tolerance_ratio == np.inf


def test_percent_never_rounds_to_a_wrong_extreme() -> None:
    assert percent(1.0) == "100.0000%"
    assert percent(1 - 1e-9) == ">99.9999%"
    assert percent(1e-9) == "<0.0001%"
    assert percent(0.5) == "50.0000%"


@pytest.mark.parametrize(
    ("node_name", "module"),
    [
        ("/encoder/lstm/LSTM", "encoder.lstm"),
        ("/postnet/convolutions.2/convolutions.2.1/BatchNormalization", "postnet.convolutions.2.1"),
        ("/encoder/convolutions.0/convolutions.0.0/conv/Conv", "encoder.convolutions.0.0.conv"),
        ("/generator/decoder/linear_projection/linear_layer/MatMul", "generator.decoder.linear_projection.linear_layer"),
        ("/Transpose_1", ""),
        ("Constant_13", None),
    ],
)
def test_torch_module_from_scope_name(node_name: str, module: str | None) -> None:
    assert torch_module_for_node(node_name) == module


def test_torch_module_falls_back_to_the_deepest_existing_module() -> None:
    names = {"", "encoder", "encoder.convolutions.0"}
    assert torch_module_for_node("/encoder/convolutions.0/convolutions.0.0/conv/Conv", names) == "encoder.convolutions.0"


def test_pad_batch_zero_pads_at_the_end() -> None:
    a = np.ones((3, 2), np.float32)
    b = np.full((5, 2), 2.0, np.float32)
    batch, lengths = pad_batch([a, b])
    assert lengths == [3, 5] and batch.shape == (2, 5, 2) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, :3], a)
    np.testing.assert_array_equal(batch[0, 3:], 0)
    np.testing.assert_array_equal(batch[1], b)
    with pytest.raises(UsageError):
        pad_batch([a, np.ones((3, 4), np.float32)])


def test_metadata_sweep_covers_every_mel_with_every_embedding_pair(shared_data) -> None:
    cases = metadata_sweep_cases(shared_data / "metadata.npz")
    with np.load(shared_data / "metadata.npz") as data:
        speakers = list(data["speakers"])
        embeddings = data["embeddings"]
        mels = [data[f"mel_{s}"] for s in speakers]
    assert len(cases) == len(speakers) ** 2
    assert len({case.name for case in cases}) == len(cases)
    for case in cases:
        mel = case.arrays["mel"]
        assert mel.shape == (len(speakers), max(len(m) for m in mels), 80)
        for row, original in zip(mel, mels):
            np.testing.assert_array_equal(row[: len(original)], original)
            np.testing.assert_array_equal(row[len(original) :], 0)
        source = speakers.index(case.description["emb_src"])
        target = speakers.index(case.description["emb_trg"])
        np.testing.assert_array_equal(case.arrays["emb_src"], np.repeat(embeddings[source][None], len(speakers), 0))
        np.testing.assert_array_equal(case.arrays["emb_trg"], np.repeat(embeddings[target][None], len(speakers), 0))
        assert case.description["lengths"] == [len(m) for m in mels]
    pairs = {(c.description["emb_src"], c.description["emb_trg"]) for c in cases}
    assert len(pairs) == len(speakers) ** 2
