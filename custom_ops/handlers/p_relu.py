"""ONNX PRelu -> TensorFlow, opsets 1, 6, 7, 9, 16 (16 only adds bfloat16; onnx-tf stops at 9).

``y = x`` where ``x >= 0``, else ``slope * x``, with ``slope`` broadcast to X numpy-style (from
opset 7; torch exports a ``[C, 1, ...]`` slope for ``nn.PReLU(C)``).
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("PRelu")
class PRelu(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x, slope = (kwargs["tensor_dict"][name] for name in node.inputs[:2])
        return [tf.where(x >= 0, x, tf.cast(slope, x.dtype) * x)]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_6(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_7(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_9(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_16(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
