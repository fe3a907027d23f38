"""ONNX ReduceProd -> TensorFlow, opsets 1, 11, 13, 18. The product.

Axes, ``keepdims`` and ``noop_with_empty_axes``: :mod:`custom_ops.handlers.reduction`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import ReductionMixin


@onnx_op("ReduceProd")
class ReduceProd(ReductionMixin, BackendHandler):
    reduce = staticmethod(tf.reduce_prod)

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_18(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
