"""Sequence and optional outputs in a parity run.

onnxruntime returns an ONNX sequence as a list of arrays and an empty optional as None, and the
TF backends decode their signatures to the same (:mod:`pipeline.stages.signature_values`). The
comparison, the metrics and the report work on arrays, so each such output is first checked for
the same structure on both sides of every pair (element count and shapes, or both empty), a
mismatch being a problem of the run, and then compared as one array: its elements flattened and
concatenated (an empty optional or sequence: an empty array).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def structure(value: Any) -> list[tuple[int, ...]] | None:
    """The element shapes of a sequence, ``[]`` for an empty optional, None for an array."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [tuple(np.shape(element)) for element in value]
    return None


def structure_problems(outputs: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """One line per output and pair (``outputs``: backend -> output -> value) whose sequences
    or optionals differ in structure."""
    problems = []
    for reference, candidate in pairs:
        for name, value in outputs[reference].items():
            if name not in outputs[candidate]:
                continue
            want, got = structure(value), structure(outputs[candidate][name])
            if (want is not None or got is not None) and want != got:
                problems.append(
                    f"output {name}: {candidate} gives {_describe(got)}, {reference} {_describe(want)}"
                )
    return problems


def comparable(value: Any) -> np.ndarray:
    """``value`` as the one array the comparison sees."""
    if structure(value) is None:
        return value
    elements = [np.ravel(element) for element in value or []]
    return np.concatenate(elements) if elements else np.zeros(0, np.float32)


def _describe(shapes: list[tuple[int, ...]] | None) -> str:
    if shapes is None:
        return "an array"
    if not shapes:
        return "no element"
    return f"a sequence of {len(shapes)} ({', '.join('x'.join(map(str, s)) or 'scalar' for s in shapes)})"
