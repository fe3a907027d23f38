"""ONNX Where -> TensorFlow, opsets 9 and 16.

``Where(condition, X, Y)`` picks X where condition is true, else Y, with numpy (multi-
directional) broadcasting of all three; ``tf.where`` in TensorFlow 2 broadcasts the same way.
Opset 16 only adds bfloat16 to the element types.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("Where")
class Where(BackendHandler):
    """Where 9 and 16."""

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        condition, x, y = (tensor_dict[name] for name in node.inputs)
        return [tf.where(condition, x, y)]

    @classmethod
    def version_9(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_16(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
