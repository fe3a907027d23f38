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

    def allowed(self, reference: Any) -> np.ndarray:
        """``atol + rtol * |reference|`` elementwise, in float64: each element's allowed error."""
        return self.atol + self.rtol * np.abs(np.asarray(reference, np.float64))


def tolerance_ratio(error: np.ndarray, allowed: Any) -> np.ndarray:
    """``error / allowed`` elementwise (0 where the error is 0, inf where only the allowance is):
    how many times its allowance each element's error is; at most 1 passes."""
    error = np.asarray(error, np.float64)
    bound = np.broadcast_to(np.asarray(allowed, np.float64), error.shape)
    with np.errstate(divide="ignore"):
        return np.divide(error, bound, out=np.zeros_like(error), where=error > 0)


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
    return ComparisonTotals.of(reference, candidate, tolerance).finish()


@dataclass
class ComparisonTotals:
    """Running totals of one comparison, from which :meth:`finish` gives every metric.

    ``ComparisonTotals.of(a1, b1, tol).merge(ComparisonTotals.of(a2, b2, tol)).finish()`` equals
    ``compare_arrays(concat(a1, a2), concat(b1, b2), tol)`` (concatenated along axis 0, the batch
    axis), up to the order of floating-point summation in the mean, RMSE and cosine: counts,
    sums, sums of squares and dot products add, maxima (with their index) take the larger, the
    earlier chunk winning ties as ``argmax`` does. A batch is compared chunk by chunk this way
    without its outputs ever being concatenated. :func:`compare_arrays` is ``of(...).finish()``.
    """

    tolerance: Tolerance
    shape_reference: tuple[int, ...]
    shape_candidate: tuple[int, ...]
    dtype_reference: str
    dtype_candidate: str
    nan_reference: int = 0
    nan_candidate: int = 0
    inf_reference: int = 0
    inf_candidate: int = 0
    shapes_consistent: bool = True  # every part had equal shapes and the parts line up on axis 0
    elements: int = 0
    nonfinite_mismatch: int = 0
    within: int = 0
    finite: int = 0
    sum_abs: float = 0.0
    sum_sq: float = 0.0
    dot: float = 0.0
    sum_sq_reference: float = 0.0
    sum_sq_candidate: float = 0.0
    max_rel: float = 0.0
    worst_ratio: float = 0.0
    peak: float | None = None  # max of |candidate - reference| (0 where non-finite) over all elements
    peak_index: tuple[int, ...] | None = None
    peak_reference: float | None = None
    peak_candidate: float | None = None

    @classmethod
    def of(cls, reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> ComparisonTotals:
        """The totals of one pair of arrays."""
        reference = np.asarray(reference)
        candidate = np.asarray(candidate)
        totals = cls(
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
        if totals.shape_reference != totals.shape_candidate:
            totals.shapes_consistent = False
            return totals

        ref = reference.astype(np.float64)
        cand = candidate.astype(np.float64)
        totals.elements = int(ref.size)
        finite = np.isfinite(ref) & np.isfinite(cand)
        same_nonfinite = ~finite & ((np.isnan(ref) & np.isnan(cand)) | (ref == cand))
        mismatch = ~finite & ~same_nonfinite
        totals.nonfinite_mismatch = int(mismatch.sum())

        abs_err = np.abs(np.subtract(cand, ref, out=np.zeros_like(ref), where=finite))
        allowed = tolerance.allowed(np.where(finite, ref, 0.0))
        totals.within = int(((abs_err <= allowed) & ~mismatch).sum())
        totals.finite = int(finite.sum())
        if totals.finite:
            errors = abs_err[finite]
            ref_finite, cand_finite = ref[finite], cand[finite]
            totals.sum_abs = float(errors.sum())
            totals.sum_sq = float(np.dot(errors, errors))
            totals.dot = float(np.dot(ref_finite, cand_finite))
            totals.sum_sq_reference = float(np.dot(ref_finite, ref_finite))
            totals.sum_sq_candidate = float(np.dot(cand_finite, cand_finite))
            totals.max_rel = float(np.max(errors / np.maximum(np.abs(ref_finite), REL_ERR_FLOOR)))
        if totals.elements:
            totals.worst_ratio = float(tolerance_ratio(abs_err, allowed).max())
            index = np.unravel_index(int(np.argmax(abs_err)), ref.shape)
            totals.peak = float(abs_err[index])
            totals.peak_index = tuple(int(i) for i in index)
            totals.peak_reference = float(ref[index])
            totals.peak_candidate = float(cand[index])
        return totals

    def merge(self, later: ComparisonTotals) -> ComparisonTotals:
        """The totals of this part followed by ``later`` along axis 0 (the batch axis)."""
        rows = self.shape_reference[0] if self.shape_reference else 0
        merged = ComparisonTotals(
            tolerance=self.tolerance,
            shape_reference=_stacked(self.shape_reference, later.shape_reference),
            shape_candidate=_stacked(self.shape_candidate, later.shape_candidate),
            dtype_reference=self.dtype_reference,
            dtype_candidate=self.dtype_candidate,
            nan_reference=self.nan_reference + later.nan_reference,
            nan_candidate=self.nan_candidate + later.nan_candidate,
            inf_reference=self.inf_reference + later.inf_reference,
            inf_candidate=self.inf_candidate + later.inf_candidate,
            shapes_consistent=(
                self.shapes_consistent
                and later.shapes_consistent
                and len(self.shape_reference) > 0
                and self.shape_reference[1:] == later.shape_reference[1:]
            ),
            elements=self.elements + later.elements,
            nonfinite_mismatch=self.nonfinite_mismatch + later.nonfinite_mismatch,
            within=self.within + later.within,
            finite=self.finite + later.finite,
            sum_abs=self.sum_abs + later.sum_abs,
            sum_sq=self.sum_sq + later.sum_sq,
            dot=self.dot + later.dot,
            sum_sq_reference=self.sum_sq_reference + later.sum_sq_reference,
            sum_sq_candidate=self.sum_sq_candidate + later.sum_sq_candidate,
            max_rel=max(self.max_rel, later.max_rel),
            worst_ratio=max(self.worst_ratio, later.worst_ratio),
        )
        keep = self
        if later.peak is not None and (self.peak is None or later.peak > self.peak):
            keep = later
        if keep.peak_index is not None:
            offset = rows if keep is later else 0
            merged.peak = keep.peak
            merged.peak_index = (keep.peak_index[0] + offset, *keep.peak_index[1:])
            merged.peak_reference, merged.peak_candidate = keep.peak_reference, keep.peak_candidate
        return merged

    def finish(self) -> ArrayComparison:
        """Every metric and the verdict, as :func:`compare_arrays` gives them."""
        result = ArrayComparison(
            tolerance=self.tolerance,
            shape_reference=self.shape_reference,
            shape_candidate=self.shape_candidate,
            dtype_reference=self.dtype_reference,
            dtype_candidate=self.dtype_candidate,
            nan_reference=self.nan_reference,
            nan_candidate=self.nan_candidate,
            inf_reference=self.inf_reference,
            inf_candidate=self.inf_candidate,
        )
        if not result.dtype_equal:
            result.failures.append(f"dtype {result.dtype_candidate} != reference {result.dtype_reference}")
        if not result.shape_equal or not self.shapes_consistent:
            detail = "" if result.shape_equal else f" {result.shape_candidate} != reference {result.shape_reference}"
            result.failures.append(f"shape{detail or ' differs from the reference in a batch chunk'}")
            return result

        result.elements = self.elements
        result.nonfinite_mismatch = self.nonfinite_mismatch
        if self.elements:
            result.within_tolerance = self.within / self.elements
        if self.finite:
            result.max_abs = self.peak
            result.mean_abs = self.sum_abs / self.finite
            result.rmse = float(np.sqrt(self.sum_sq / self.finite))
            result.max_rel = self.max_rel
            result.cosine = _cosine(self.dot, self.sum_sq_reference, self.sum_sq_candidate)
            result.worst_tolerance_ratio = self.worst_ratio
            result.max_abs_index = self.peak_index
            result.max_abs_reference = self.peak_reference
            result.max_abs_candidate = self.peak_candidate

        if result.nonfinite_mismatch:
            result.failures.append(f"{result.nonfinite_mismatch} elements NaN/Inf on one side only")
        outside = self.elements - self.within - self.nonfinite_mismatch
        if outside:
            result.failures.append(
                f"{outside} of {result.elements} elements outside tolerance "
                f"(max abs {result.max_abs:.3g}, {self.tolerance})"
            )
        return result


def _stacked(first: tuple[int, ...], later: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``first`` and ``later`` concatenated along axis 0 (``first``'s other axes)."""
    if not first or not later:
        return first
    return (first[0] + later[0], *first[1:])


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


def _cosine(dot: float, sum_sq_a: float, sum_sq_b: float) -> float:
    """Cosine similarity from the dot product and the squared norms; 1 when both are all zeros,
    0 when one is."""
    if sum_sq_a == 0.0 and sum_sq_b == 0.0:
        return 1.0
    if sum_sq_a == 0.0 or sum_sq_b == 0.0:
        return 0.0
    return float(np.clip(dot / (np.sqrt(sum_sq_a) * np.sqrt(sum_sq_b)), -1.0, 1.0))
