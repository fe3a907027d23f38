"""Error metrics between a reference array and a candidate array (pure numpy).

Tolerance rule, elementwise: ``|candidate - reference| <= atol + rtol * |reference|``; the
reference is the first backend of a pair (torch for torch-ort and torch-tf, onnxruntime for
ort-tf). Relative error is ``|candidate - reference| / max(|reference|, REL_ERR_FLOOR)``.

Non-finite values: an element where both sides are NaN, or both are the same infinity, counts
as equal; any other element where a side is NaN or infinite is a non-finite mismatch and fails
the comparison. Error statistics (max/mean abs, RMSE, relative error, cosine) are computed over
the elements that are finite on both sides. All arithmetic is in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

REL_ERR_FLOOR = 1e-3
"""Lower bound on ``|reference|`` in the relative error's denominator."""

AXIS_NAMES = {1: ("index",), 2: ("batch", "feature"), 3: ("batch", "time", "channel")}
"""Names of the axes of the max-error location, by rank (outputs are batch-major)."""


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance of the elementwise rule above."""

    atol: float
    rtol: float

    def to_json(self) -> dict[str, float]:
        return {"atol": self.atol, "rtol": self.rtol}

    def __str__(self) -> str:
        return f"atol={self.atol:g} rtol={self.rtol:g}"


DEFAULT_TOLERANCE = Tolerance(atol=1e-5, rtol=1e-4)
"""Default for float32 outputs: a few ulps of accumulated rounding over AutoVC's depth."""


@dataclass
class ArrayComparison:
    """Every metric of one reference/candidate pair of arrays, and whether it passes."""

    tolerance: Tolerance
    shape_reference: tuple[int, ...]
    shape_candidate: tuple[int, ...]
    dtype_reference: str
    dtype_candidate: str
    nan_reference: int
    nan_candidate: int
    inf_reference: int
    inf_candidate: int
    elements: int = 0
    nonfinite_mismatch: int = 0
    max_abs: float | None = None
    mean_abs: float | None = None
    rmse: float | None = None
    max_rel: float | None = None
    cosine: float | None = None
    within_tolerance: float | None = None
    worst_tolerance_ratio: float | None = None
    max_abs_index: tuple[int, ...] | None = None
    max_abs_reference: float | None = None
    max_abs_candidate: float | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def shape_equal(self) -> bool:
        return self.shape_reference == self.shape_candidate

    @property
    def dtype_equal(self) -> bool:
        return self.dtype_reference == self.dtype_candidate

    @property
    def passed(self) -> bool:
        return not self.failures

    def max_abs_location(self) -> dict[str, int] | None:
        """The max-error index with axis names (rank 1-3), e.g. ``{"batch": 0, "time": 12, "channel": 3}``."""
        if self.max_abs_index is None or len(self.max_abs_index) not in AXIS_NAMES:
            return None
        return dict(zip(AXIS_NAMES[len(self.max_abs_index)], self.max_abs_index))

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "tolerance": self.tolerance.to_json(),
            "shape": {
                "reference": list(self.shape_reference),
                "candidate": list(self.shape_candidate),
                "equal": self.shape_equal,
            },
            "dtype": {
                "reference": self.dtype_reference,
                "candidate": self.dtype_candidate,
                "equal": self.dtype_equal,
            },
            "elements": self.elements,
            "nan": {"reference": self.nan_reference, "candidate": self.nan_candidate},
            "inf": {"reference": self.inf_reference, "candidate": self.inf_candidate},
            "nonfinite_mismatch": self.nonfinite_mismatch,
            "max_abs": self.max_abs,
            "mean_abs": self.mean_abs,
            "rmse": self.rmse,
            "max_rel": self.max_rel,
            "cosine": self.cosine,
            "within_tolerance": self.within_tolerance,
            "worst_tolerance_ratio": self.worst_tolerance_ratio,
            "max_abs_at": None
            if self.max_abs_index is None
            else {
                "index": list(self.max_abs_index),
                "named": self.max_abs_location(),
                "reference": self.max_abs_reference,
                "candidate": self.max_abs_candidate,
            },
        }


def compare_arrays(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> ArrayComparison:
    """All metrics of ``candidate`` against ``reference`` under ``tolerance``."""
    reference = np.asarray(reference)
    candidate = np.asarray(candidate)
    result = ArrayComparison(
        tolerance=tolerance,
        shape_reference=tuple(int(d) for d in reference.shape),
        shape_candidate=tuple(int(d) for d in candidate.shape),
        dtype_reference=str(reference.dtype),
        dtype_candidate=str(candidate.dtype),
        nan_reference=_count(reference, np.isnan),
        nan_candidate=_count(candidate, np.isnan),
        inf_reference=_count(reference, np.isinf),
        inf_candidate=_count(candidate, np.isinf),
    )
    if not result.dtype_equal:
        result.failures.append(f"dtype {result.dtype_candidate} != reference {result.dtype_reference}")
    if not result.shape_equal:
        result.failures.append(f"shape {result.shape_candidate} != reference {result.shape_reference}")
        return result

    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    result.elements = int(ref.size)
    finite = np.isfinite(ref) & np.isfinite(cand)
    same_nonfinite = ~finite & ((np.isnan(ref) & np.isnan(cand)) | (ref == cand))
    mismatch = ~finite & ~same_nonfinite
    result.nonfinite_mismatch = int(mismatch.sum())

    abs_err = np.abs(np.subtract(cand, ref, out=np.zeros_like(ref), where=finite))
    allowed = tolerance.atol + tolerance.rtol * np.abs(np.where(finite, ref, 0.0))
    within = (abs_err <= allowed) & ~mismatch
    if result.elements:
        result.within_tolerance = float(within.mean())
    if finite.any():
        errors = abs_err[finite]
        result.max_abs = float(errors.max())
        result.mean_abs = float(errors.mean())
        result.rmse = float(np.sqrt(np.mean(errors**2)))
        result.max_rel = float(np.max(errors / np.maximum(np.abs(ref[finite]), REL_ERR_FLOOR)))
        result.cosine = _cosine(ref[finite], cand[finite])
        with np.errstate(divide="ignore"):
            ratio = np.divide(abs_err, allowed, out=np.zeros_like(abs_err), where=abs_err > 0)
        result.worst_tolerance_ratio = float(ratio.max())
        flat = int(np.argmax(abs_err))
        index = np.unravel_index(flat, ref.shape)
        result.max_abs_index = tuple(int(i) for i in index)
        result.max_abs_reference = float(ref[index])
        result.max_abs_candidate = float(cand[index])

    if result.nonfinite_mismatch:
        result.failures.append(f"{result.nonfinite_mismatch} elements NaN/Inf on one side only")
    outside = int((~within).sum()) - result.nonfinite_mismatch
    if outside:
        result.failures.append(
            f"{outside} of {result.elements} elements outside tolerance "
            f"(max abs {result.max_abs:.3g}, {tolerance})"
        )
    return result


def percent(fraction: float | None) -> str:
    """A share as a percentage that never rounds a partial share up to 100% or down to 0%."""
    if fraction is None:
        return "n/a"
    text = f"{100 * fraction:.4f}%"
    if fraction < 1 and text == "100.0000%":
        return ">99.9999%"
    if fraction > 0 and text == "0.0000%":
        return "<0.0001%"
    return text


def _count(array: np.ndarray, predicate: Any) -> int:
    if not np.issubdtype(array.dtype, np.floating):
        return 0
    return int(predicate(array).sum())


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of the flattened arrays; 1 when both are all zeros, 0 when one is."""
    norm_a = float(np.linalg.norm(a))
    norm_b = float(np.linalg.norm(b))
    if norm_a == 0.0 and norm_b == 0.0:
        return 1.0
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0))
