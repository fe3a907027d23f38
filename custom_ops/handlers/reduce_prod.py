"""ONNX ReduceProd -> TensorFlow, opsets 1, 11, 13, 18. The product.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin, versions


@onnx_op("ReduceProd")
@versions(1, 11, 13, 18)
class ReduceProd(ReductionMixin, BackendHandler):
    reduce = staticmethod(tf.reduce_prod)
