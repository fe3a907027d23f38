"""ONNX InstanceNormalization -> TensorFlow, opsets 1, 6, 22 (22 only adds bfloat16).

X ``[N, C, D1, ...]``: each ``(n, c)`` is standardised over its spatial axes, then scaled and
shifted per channel: ``scale[c] * (x - mean) / sqrt(var + epsilon) + B[c]`` (epsilon 1e-5).
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .normalization import channel_shape, standardize


@onnx_op("InstanceNormalization")
class InstanceNormalization(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x, scale, bias = (kwargs["tensor_dict"][name] for name in node.inputs[:3])
        rank = x.shape.rank
        y, _, _ = standardize(x, range(2, rank), node.attrs.get("epsilon", 1e-5))
        scale, bias = (channel_shape(tf.cast(v, x.dtype), rank) for v in (scale, bias))
        return [y * scale + bias]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_6(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_22(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
