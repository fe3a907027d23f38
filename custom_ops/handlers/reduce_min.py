"""ONNX ReduceMin -> TensorFlow, opsets 1, 11, 12, 13, 18, 20. The minimum (inf over an empty set; bool from 20: all).

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    if x.dtype == tf.bool:
        return tf.reduce_all(x, axis, keepdims)
    return tf.reduce_min(x, axis, keepdims)


@onnx_op("ReduceMin")
@versions(1, 11, 12, 13, 18, 20)
class ReduceMin(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)
