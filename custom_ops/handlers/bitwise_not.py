"""ONNX BitwiseNot -> TensorFlow, opset 18 (onnx-tf has none)."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("BitwiseNot")
class BitwiseNot(BackendHandler):
    @classmethod
    def version_18(cls, node, **kwargs) -> list[tf.Tensor]:
        return [tf.bitwise.invert(kwargs["tensor_dict"][node.inputs[0]])]
