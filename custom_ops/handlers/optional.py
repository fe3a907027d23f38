"""ONNX Optional -> TensorFlow, opset 15: the input, or Python ``None`` (an empty optional) when
there is none. onnx-tf's handler reads the ``type`` attribute as an optional type, where ONNX
gives the element type, so it returns an empty list for an empty optional of a tensor type (and
OptionalHasElement then calls it present)."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("Optional")
class Optional(BackendHandler):
    @classmethod
    def version_15(cls, node, **kwargs) -> list[tf.Tensor | tf.RaggedTensor | None]:
        name = node.inputs[0] if node.inputs else ""
        return [kwargs["tensor_dict"][name] if name else None]
