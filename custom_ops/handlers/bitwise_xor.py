"""ONNX BitwiseXor -> TensorFlow, opset 18 (onnx-tf has none), integers broadcast numpy-style."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("BitwiseXor")
class BitwiseXor(BackendHandler):
    @classmethod
    def version_18(cls, node, **kwargs) -> list[tf.Tensor]:
        a, b = (kwargs["tensor_dict"][name] for name in node.inputs[:2])
        shape = tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b))
        return [tf.bitwise.bitwise_xor(tf.broadcast_to(a, shape), tf.broadcast_to(b, shape))]
