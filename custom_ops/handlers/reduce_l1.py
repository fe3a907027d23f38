"""ONNX ReduceL1 -> TensorFlow, opsets 1, 11, 13, 18. The sum of absolute values.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    return tf.reduce_sum(tf.abs(x), axis, keepdims)


@onnx_op("ReduceL1")
@versions(1, 11, 13, 18)
class ReduceL1(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)
