"""ONNX Where in numpy (the test oracle): element-wise ``x if condition else y`` after
broadcasting all three inputs to their common shape, numpy style."""

from __future__ import annotations

import numpy as np


class Where:
    @staticmethod
    def run(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        condition, x, y = np.broadcast_arrays(condition, x, y)
        out = np.empty(x.shape, dtype=np.result_type(x, y))
        for index in np.ndindex(out.shape):
            out[index] = x[index] if condition[index] else y[index]
        return out
