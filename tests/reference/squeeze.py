"""ONNX Squeeze in numpy (the test oracle): remove the listed size-1 axes (negative ones count
from the end of the input), or every size-1 axis when no axes are given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Squeeze:
    @staticmethod
    def run(x: np.ndarray, axes: Sequence[int] | None = None) -> np.ndarray:
        if axes is None:
            kept = [d for d in x.shape if d != 1]
        else:
            removed = {a + x.ndim if a < 0 else a for a in axes}
            assert len(removed) == len(axes), f"repeated axis in {axes}"
            assert all(x.shape[a] == 1 for a in removed), f"axes {axes} of {x.shape} are not 1"
            kept = [d for i, d in enumerate(x.shape) if i not in removed]
        return x.reshape(kept)
