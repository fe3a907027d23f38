"""ONNX Unsqueeze in numpy (the test oracle): axes index the output, of rank
``x.ndim + len(axes)``; negative axes count from its end; their order does not matter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Unsqueeze:
    @staticmethod
    def run(x: np.ndarray, axes: Sequence[int]) -> np.ndarray:
        out_rank = x.ndim + len(axes)
        new = {a + out_rank if a < 0 else a for a in axes}
        assert len(new) == len(axes) and all(0 <= a < out_rank for a in new), axes
        dims = iter(x.shape)
        return x.reshape([1 if i in new else next(dims) for i in range(out_rank)])
