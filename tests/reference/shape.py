"""ONNX Shape in numpy (the test oracle): the dimensions as int64, sliced by ``start``/``end``
with each bound made non-negative by adding the rank and then clamped to [0, rank]."""

from __future__ import annotations

import numpy as np


class Shape:
    @staticmethod
    def run(x: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
        rank = x.ndim

        def bound(value: int) -> int:
            if value < 0:
                value += rank
            return min(max(value, 0), rank)

        first, last = bound(start), bound(rank if end is None else end)
        return np.array([x.shape[axis] for axis in range(first, last)], dtype=np.int64)
