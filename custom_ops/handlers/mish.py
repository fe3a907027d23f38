"""ONNX Mish -> TensorFlow, opsets 18 and 22 (onnx-tf has none; 22 adds bfloat16):
``x * tanh(softplus(x))``, with ``softplus(x) = log(1 + exp(x))`` computed without overflow."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import versions


@onnx_op("Mish")
@versions(18, 22)
class Mish(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        return [x * tf.tanh(tf.math.softplus(x))]
