"""ONNX ReduceLogSumExp -> TensorFlow, opsets 1, 11, 13, 18. log(sum(exp(x))), computed stably.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    peak = tf.stop_gradient(tf.reduce_max(x, axis, keepdims=True))
    peak = tf.where(tf.math.is_finite(peak), peak, tf.zeros_like(peak))
    total = tf.reduce_sum(tf.exp(x - peak), axis, keepdims)
    return tf.math.log(total) + tf.reshape(peak, tf.shape(total))


@onnx_op("ReduceLogSumExp")
@versions(1, 11, 13, 18)
class ReduceLogSumExp(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)
