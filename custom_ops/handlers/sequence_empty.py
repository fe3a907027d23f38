"""ONNX SequenceEmpty -> TensorFlow, opset 11: an empty RaggedTensor (onnx-tf's form of a
sequence) of the ``dtype`` attribute, float32 by default. onnx-tf's handler converts ``dtype``
to a TensorFlow type a second time (onnx-tf's node wrapper already did), which fails whenever
the attribute is set."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("SequenceEmpty")
class SequenceEmpty(BackendHandler):
    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.RaggedTensor]:
        dtype = node.attrs.get("dtype", tf.float32)
        return [tf.RaggedTensor.from_row_lengths(tf.zeros([0], dtype), tf.zeros([0], tf.int64))]
