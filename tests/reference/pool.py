"""ONNX AveragePool / MaxPool / LpPool in plain numpy, one output element at a time (the test oracle).

For each output position the window is enumerated explicitly: per spatial axis the input
positions ``o * stride + j * dilation - pad_begin`` for ``j < kernel``. Positions in ``[0, L)``
hold input values; the others are padding (inside ``[-pad_begin, L + pad_end)``) or past the
padded input (only when ``ceil_mode`` rounds the output size up). An average divides by the
count of input positions, or of input and padding positions with ``count_include_pad``; a max
ignores every non-input position, and so does an Lp norm ``(sum |x|^p)^(1/p)`` (as zeros would).
Output sizes follow the ONNX spec (see ``output_size``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def output_size(
    length: int,
    kernel: int,
    stride: int,
    dilation: int,
    pads: tuple[int, int],
    auto_pad: str,
    ceil_mode: bool,
) -> tuple[int, int, int]:
    """``(out, pad_begin, pad_end)`` for one spatial axis."""
    span = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = math.ceil(length / stride)
        total = max((out - 1) * stride + span - length, 0)
        half = total // 2
        return (out, half, total - half) if auto_pad == "SAME_UPPER" else (out, total - half, half)
    if auto_pad == "VALID":
        return (length - span) // stride + 1, 0, 0
    begin, end = pads
    exact = (length + begin + end - span) / stride + 1
    if not ceil_mode:
        return math.floor(exact), begin, end
    out = math.ceil(exact)
    if (out - 1) * stride >= length + begin:  # the last window must start inside
        out -= 1
    return out, begin, end


class Pool:
    @staticmethod
    def run(
        x: np.ndarray,
        kind: str,
        kernel_shape: list[int],
        strides: list[int] | None = None,
        dilations: list[int] | None = None,
        pads: list[int] | None = None,
        auto_pad: str = "NOTSET",
        ceil_mode: int = 0,
        count_include_pad: int = 0,
        p: float = 2,
    ) -> np.ndarray:
        """``kind`` is ``"avg"``, ``"max"`` or ``"lp"`` (with ``p``); X is ``[N, C, D1, ...]``."""
        rank = len(kernel_shape)
        strides = strides or [1] * rank
        dilations = dilations or [1] * rank
        pads = pads or [0] * 2 * rank
        sizes = [
            output_size(
                x.shape[2 + a],
                kernel_shape[a],
                strides[a],
                dilations[a],
                (pads[a], pads[rank + a]),
                auto_pad,
                bool(ceil_mode),
            )
            for a in range(rank)
        ]
        y = np.zeros(x.shape[:2] + tuple(s[0] for s in sizes), dtype=np.float64)
        for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
            for out_index in itertools.product(*(range(s[0]) for s in sizes)):
                values, counted = [], 0
                for offsets in itertools.product(*(range(k) for k in kernel_shape)):
                    position = [
                        out_index[a] * strides[a] + offsets[a] * dilations[a] - sizes[a][1]
                        for a in range(rank)
                    ]
                    inside = all(0 <= position[a] < x.shape[2 + a] for a in range(rank))
                    padded = all(
                        -sizes[a][1] <= position[a] < x.shape[2 + a] + sizes[a][2]
                        for a in range(rank)
                    )
                    if inside:
                        values.append(float(x[(n, c, *position)]))
                    counted += int(inside or (padded and count_include_pad))
                if kind == "max":
                    y[(n, c, *out_index)] = max(values)
                elif kind == "lp":
                    y[(n, c, *out_index)] = sum(abs(v) ** p for v in values) ** (1 / p)
                else:
                    y[(n, c, *out_index)] = sum(values) / counted
        return y.astype(x.dtype)
