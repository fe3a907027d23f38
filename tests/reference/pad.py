"""ONNX Pad and Split in numpy, element by element (the test oracle).

Pad: output position ``i`` on an axis with pads ``(b, e)`` reads input position ``i - b``;
outside ``[0, L)`` that is the constant (``constant``), the mirror image without the edge
(``reflect``), the nearest edge (``edge``) or the position modulo L (``wrap``). A negative pad
drops that many elements. Split: consecutive parts of the given sizes.
"""

from __future__ import annotations

import itertools

import numpy as np


def _source(position: int, length: int, mode: str) -> int | None:
    if 0 <= position < length:
        return position
    if mode == "constant":
        return None
    if mode == "edge":
        return min(max(position, 0), length - 1)
    if mode == "wrap":
        return position % length
    period = 2 * (length - 1)  # reflect
    position %= period
    return position if position < length else period - position


class Pad:
    @staticmethod
    def run(
        x: np.ndarray, pads: list[int], mode: str = "constant", value: float = 0.0
    ) -> np.ndarray:
        rank = x.ndim
        begins, ends = pads[:rank], pads[rank:]
        shape = [x.shape[a] + begins[a] + ends[a] for a in range(rank)]
        y = np.empty(shape, dtype=x.dtype)
        for index in itertools.product(*(range(s) for s in shape)):
            sources = [_source(index[a] - begins[a], x.shape[a], mode) for a in range(rank)]
            y[index] = value if None in sources else x[tuple(sources)]
        return y


class Split:
    @staticmethod
    def run(x: np.ndarray, sizes: list[int], axis: int = 0) -> list[np.ndarray]:
        starts = np.cumsum([0, *sizes])
        return [
            np.take(x, np.arange(starts[i], starts[i + 1]), axis=axis) for i in range(len(sizes))
        ]
