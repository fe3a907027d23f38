"""Shared window arithmetic of the ONNX pooling ops (AveragePool, MaxPool).

X is ``[N, C, D1, ..., Dk]``. Every window is the product of one index set per spatial axis,
so a window's sum, max and element count factor over the axes: each spatial axis is reduced in
turn by gathering its ``[out, kernel]`` window indices (``o * stride + j * dilation - pad_begin``)
and reducing the kernel axis. Lengths may be dynamic: output sizes are computed in the graph.

Output size per axis, with the effective kernel ``dk = (k - 1) * dilation + 1``:

- ``NOTSET``: ``floor((L + pb + pe - dk) / s) + 1``, or with ``ceil_mode`` the ceiling, less one
  if the last window would start at or past ``L + pb`` (it must start inside the input or its
  begin padding); positions past ``L + pe`` (the ceil extension) are outside every window.
- ``SAME_UPPER`` / ``SAME_LOWER``: ``ceil(L / s)``, padded by ``(out - 1) * s + dk - L`` in total,
  the odd one at the end (UPPER) or the beginning (LOWER).
- ``VALID``: ``floor((L - dk) / s) + 1``, no padding.

Padding never contributes to a max. An average divides by the number of window positions inside
``[-pb, L + pe)`` with ``count_include_pad=1`` and inside ``[0, L)`` otherwise; that is what
onnxruntime, ONNX's reference and torch do when ``ceil_mode`` leaves a partial last window
(onnx-tf divides it by the full kernel size instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf
from onnx_tf.pb_wrapper import OnnxNode

from custom_ops.support import checked_option


@dataclass(frozen=True)
class AxisWindows:
    """The windows along one spatial axis: gather indices ``[out, k]``, which of them hold input
    values, and how many positions each window counts for an average."""

    indices: tf.Tensor  # int32 [out, k], clipped into [0, L)
    inside: tf.Tensor  # bool [out, k], index in [0, L)
    count_with_pad: tf.Tensor  # int32 [out], positions in [-pb, L + pe)
    count_without_pad: tf.Tensor  # int32 [out], positions in [0, L)


AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


class PoolMixin:
    """Window arithmetic for a handler whose node has ``kernel_shape`` and optional
    ``strides``, ``dilations``, ``pads``, ``auto_pad`` and ``ceil_mode``."""

    @classmethod
    def check_options(cls, node: OnnxNode, since_version: int) -> None:
        checked_option(node, "auto_pad", "NOTSET", AUTO_PADS)

    @classmethod
    def _windows(cls, node: OnnxNode, x: tf.Tensor) -> list[AxisWindows]:
        kernel = list(node.attrs["kernel_shape"])
        rank = len(kernel)
        strides = list(node.attrs.get("strides", [1] * rank))
        dilations = list(node.attrs.get("dilations", [1] * rank))
        pads = list(node.attrs.get("pads", [0] * 2 * rank))
        # checked here too for onnx-tf's prepare(), which does not run check_options
        auto_pad = checked_option(node, "auto_pad", "NOTSET", AUTO_PADS)
        ceil_mode = bool(node.attrs.get("ceil_mode", 0))
        shape = tf.shape(x, out_type=tf.int32)
        return [
            _axis_windows(
                shape[2 + axis],
                kernel[axis],
                strides[axis],
                dilations[axis],
                pads[axis],
                pads[rank + axis],
                auto_pad,
                ceil_mode,
            )
            for axis in range(rank)
        ]


def _ceil_div(a: tf.Tensor, b: int) -> tf.Tensor:
    return -((-a) // b)


def _axis_windows(
    length: tf.Tensor,
    kernel: int,
    stride: int,
    dilation: int,
    pad_begin: int,
    pad_end: int,
    auto_pad: str,
    ceil_mode: bool,
) -> AxisWindows:
    span = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = _ceil_div(length, stride)
        total = tf.maximum((out - 1) * stride + span - length, 0)
        small, large = total // 2, total - total // 2
        pad_begin, pad_end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        out = (length - span) // stride + 1
        pad_begin, pad_end = 0, 0
    else:  # NOTSET
        room = length + pad_begin + pad_end - span
        if ceil_mode:
            out = _ceil_div(room, stride) + 1
            out = tf.where((out - 1) * stride >= length + pad_begin, out - 1, out)
        else:
            out = room // stride + 1
    out = tf.maximum(out, 0)
    positions = tf.range(out)[:, None] * stride + tf.range(kernel)[None, :] * dilation - pad_begin
    inside = (positions >= 0) & (positions < length)
    in_padded = (positions >= -pad_begin) & (positions < length + pad_end)
    return AxisWindows(
        indices=tf.clip_by_value(positions, 0, tf.maximum(length - 1, 0)),
        inside=inside,
        count_with_pad=tf.reduce_sum(tf.cast(in_padded, tf.int32), axis=1),
        count_without_pad=tf.reduce_sum(tf.cast(inside, tf.int32), axis=1),
    )


def gather_windows(x: tf.Tensor, axis: int, windows: AxisWindows, fill: tf.Tensor) -> tf.Tensor:
    """``x`` with ``axis`` replaced by ``[out, k]`` window values; positions outside the input
    hold ``fill``."""
    gathered = tf.gather(x, windows.indices, axis=axis)
    mask_shape = [1] * axis + [-1, tf.shape(windows.inside)[1]] + [1] * (x.shape.rank - axis - 1)
    return tf.where(tf.reshape(windows.inside, mask_shape), gathered, fill)


def broadcast_along(values: tf.Tensor, axis: int, rank: int) -> tf.Tensor:
    """A 1-D ``values`` shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    return tf.reshape(values, [1] * axis + [-1] + [1] * (rank - axis - 1))


def spatial_axes_last_first(windows: Sequence[AxisWindows]) -> list[tuple[int, AxisWindows]]:
    """``(tensor axis, windows)`` from the last spatial axis to the first: reducing in this order
    keeps the first maximum in row-major order."""
    return [(2 + axis, w) for axis, w in reversed(list(enumerate(windows)))]
