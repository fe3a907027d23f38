"""ONNX MaxPool -> TensorFlow, opsets 1, 8, 10, 11, 12, 22 (any 1-D, 2-D or 3-D input).

8 adds the optional ``Indices`` output and ``storage_order``, 10 ``ceil_mode`` and ``dilations``,
12 int8/uint8 inputs; 11 and 22 change nothing here. The window arithmetic is
:mod:`custom_ops.handlers.pooling`'s; onnx-tf's handler has no version 22.

``Indices`` (int64) are positions in X flattened row-major (``storage_order=0``) or with the
spatial axes column-major (``storage_order=1``, the first spatial axis varying fastest), batch and
channel included. Of equal maxima the first in row-major order wins.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .pooling import PoolMixin, broadcast_along, gather_windows, spatial_axes_last_first


@onnx_op("MaxPool")
class MaxPool(PoolMixin, BackendHandler):
    """Max over each window; with a second output, also where it was taken from."""

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        fill = tf.constant(-float("inf") if x.dtype.is_floating else x.dtype.min, x.dtype)
        windows = cls._windows(node, x)
        want_indices = len(node.outputs) > 1 and node.outputs[1] != ""
        if not want_indices:
            y = x
            for axis, axis_windows in spatial_axes_last_first(windows):
                y = tf.reduce_max(gather_windows(y, axis, axis_windows, fill), axis + 1)
            return [y]
        y, indices = x, _flat_indices(x, column_major=bool(node.attrs.get("storage_order", 0)))
        for axis, axis_windows in spatial_axes_last_first(windows):
            values = gather_windows(y, axis, axis_windows, fill)
            where = tf.argmax(values, axis=axis + 1, output_type=tf.int32)
            chosen = tf.one_hot(where, tf.shape(values)[axis + 1], True, False, axis=axis + 1)
            candidates = tf.gather(indices, axis_windows.indices, axis=axis)
            indices = tf.reduce_sum(tf.where(chosen, candidates, tf.zeros([], tf.int64)), axis + 1)
            y = tf.reduce_max(values, axis + 1)
        return [y, indices]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_8(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_10(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_12(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_22(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)


def _flat_indices(x: tf.Tensor, column_major: bool) -> tf.Tensor:
    """int64 tensor of X's shape holding each element's ONNX MaxPool index."""
    shape = tf.shape(x, out_type=tf.int64)
    rank = x.shape.rank
    spatial = list(range(2, rank))
    order = list(reversed(spatial)) if not column_major else spatial
    index = tf.zeros([], tf.int64)
    step = tf.ones([], tf.int64)
    for axis in order:
        index = index + broadcast_along(tf.range(shape[axis]) * step, axis, rank)
        step = step * shape[axis]
    for axis in (1, 0):
        index = index + broadcast_along(tf.range(shape[axis]) * step, axis, rank)
        step = step * shape[axis]
    return tf.broadcast_to(index, shape)
