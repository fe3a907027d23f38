"""ONNX Gelu -> TensorFlow, opset 20 (onnx-tf has none): ``0.5 x (1 + erf(x / sqrt 2))``, or with
``approximate="tanh"`` ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("Gelu")
class Gelu(BackendHandler):
    @classmethod
    def version_20(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        approximate = node.attrs.get("approximate", "none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        return [tf.nn.gelu(x, approximate=approximate == "tanh")]
