"""ONNX Reduce* in numpy (the test oracle), in float64, straight from the operator definitions.

Missing or empty axes: every axis, or with ``noop_with_empty_axes`` the input itself (ReduceSumSquare:
its square, as ONNX's reference implementation does).
"""

from __future__ import annotations

import numpy as np

_FUNCTIONS = {
    "ReduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "ReduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "ReduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "ReduceL2": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "ReduceLogSum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "ReduceLogSumExp": lambda x, a, k: np.log(np.sum(np.exp(x), axis=a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
}
OPS = tuple(_FUNCTIONS)


class Reduce:
    @staticmethod
    def run(
        op_type: str,
        x: np.ndarray,
        axes: list[int] | None,
        keepdims: int = 1,
        noop_with_empty_axes: int = 0,
    ) -> np.ndarray:
        wide = x.astype(np.float64)
        if not axes:
            if noop_with_empty_axes:
                return (wide * wide if op_type == "ReduceSumSquare" else wide).astype(x.dtype)
            axes = None
        else:
            axes = tuple(axes)
        return np.asarray(_FUNCTIONS[op_type](wide, axes, bool(keepdims))).astype(x.dtype)
