"""ONNX AveragePool -> TensorFlow, opsets 1, 7, 10, 11, 19, 22 (any 1-D, 2-D or 3-D input).

7 adds ``count_include_pad``, 10 ``ceil_mode``, 19 ``dilations``; 11 and 22 change nothing
here. The window arithmetic is :mod:`custom_ops.handlers.pooling`'s. onnx-tf's handler divides
a partial last window left by ``ceil_mode=1`` with ``count_include_pad=1`` (what torch's
``avg_pool1d(..., ceil_mode=True)`` exports) by the full kernel size, and has no version 19/22.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .pooling import PoolMixin, broadcast_along, gather_windows, spatial_axes_last_first


@onnx_op("AveragePool")
class AveragePool(PoolMixin, BackendHandler):
    """Sum over each window, divided by the positions it counts."""

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        include_pad = bool(node.attrs.get("count_include_pad", 0))
        rank = x.shape.rank
        total, count = x, tf.ones([], x.dtype)
        for axis, windows in spatial_axes_last_first(cls._windows(node, x)):
            total = tf.reduce_sum(
                gather_windows(total, axis, windows, tf.zeros([], x.dtype)), axis + 1
            )
            per_window = windows.count_with_pad if include_pad else windows.count_without_pad
            count = count * broadcast_along(tf.cast(per_window, x.dtype), axis, rank)
        return [total / count]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_7(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_10(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_19(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_22(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
