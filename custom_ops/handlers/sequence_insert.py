"""ONNX SequenceInsert -> TensorFlow, opset 11: onnx-tf's translation, with ``position`` taken as
a scalar when it is a one-element tensor of any rank (ONNX's own node tests feed ``[0]``, which
onnxruntime and ONNX's reference accept; onnx-tf's slicing takes a scalar only)."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend.sequence_insert import SequenceInsert as OnnxTfSequenceInsert
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("SequenceInsert")
class SequenceInsert(OnnxTfSequenceInsert, BackendHandler):
    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.RaggedTensor]:
        tensor_dict = kwargs["tensor_dict"]
        if len(node.inputs) > 2 and node.inputs[2]:
            position = tf.reshape(tensor_dict[node.inputs[2]], [])
            kwargs["tensor_dict"] = {**tensor_dict, node.inputs[2]: position}
        return super().version_11(node, **kwargs)
