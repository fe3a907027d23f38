"""ONNX ReduceL2 -> TensorFlow, opsets 1, 11, 13, 18. The square root of the sum of squares.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    total = tf.reduce_sum(x * x, axis, keepdims)
    if x.dtype.is_floating:
        return tf.sqrt(total)
    return tf.cast(tf.sqrt(tf.cast(total, tf.float64)), x.dtype)


@onnx_op("ReduceL2")
@versions(1, 11, 13, 18)
class ReduceL2(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)
