"""ONNX LeakyRelu -> TensorFlow, opsets 1, 6, 16 (16 only adds bfloat16; onnx-tf stops at 6).

``y = x`` where ``x >= 0``, else ``alpha * x`` (``alpha`` defaults to 0.01).
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("LeakyRelu")
class LeakyRelu(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        alpha = tf.cast(node.attrs.get("alpha", 0.01), x.dtype)
        return [tf.where(x >= 0, x, alpha * x)]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_6(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_16(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
