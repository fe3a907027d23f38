"""ONNX ReduceSumSquare -> TensorFlow, opsets 1, 11, 13, 18. The sum of squares.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    return tf.reduce_sum(x * x, axis, keepdims)


@onnx_op("ReduceSumSquare")
@versions(1, 11, 13, 18)
class ReduceSumSquare(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)

    @staticmethod
    def noop(x: tf.Tensor) -> tf.Tensor:
        return x * x
