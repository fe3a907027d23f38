"""ONNX ReduceLogSum -> TensorFlow, opsets 1, 11, 13, 18. The log of the sum.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    return tf.math.log(tf.reduce_sum(x, axis, keepdims))


@onnx_op("ReduceLogSum")
@versions(1, 11, 13, 18)
class ReduceLogSum(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)
