"""ONNX ReduceMax -> TensorFlow, opsets 1, 11, 12, 13, 18, 20. The maximum (-inf over an empty set; bool from 20: any).

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


def _reduce(x: tf.Tensor, axis, keepdims: bool) -> tf.Tensor:
    if x.dtype == tf.bool:
        return tf.reduce_any(x, axis, keepdims)
    return tf.reduce_max(x, axis, keepdims)


@onnx_op("ReduceMax")
@versions(1, 11, 12, 13, 18, 20)
class ReduceMax(ReductionMixin, BackendHandler):
    reduce = staticmethod(_reduce)
