"""ONNX Range -> TensorFlow, opset 11: ``start, start + delta, ...`` up to ``limit`` (excluded).

``start``, ``limit`` and ``delta`` are scalars by the spec, but the function bodies of ONNX's own
ops pass one-element tensors (RMSNormalization-23's expansion: ``Range(Axis1D, Rank, One1D)``),
which onnxruntime accepts; onnx-tf's handler hands them to ``tf.range`` as they are, which takes
scalars only.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("Range")
class Range(BackendHandler):
    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        start, limit, delta = (tf.reshape(kwargs["tensor_dict"][name], []) for name in node.inputs)
        return [tf.range(start, limit, delta)]
