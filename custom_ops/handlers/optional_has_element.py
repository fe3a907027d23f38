"""ONNX OptionalHasElement -> TensorFlow, opsets 15 and 18.

onnx-tf holds an empty optional as Python ``None`` (its Optional handler decides that when the
graph is traced), so the answer is a constant: false for ``None``, true for anything else. From
18 the input may be missing (or named ""), which is false, and may be a tensor or sequence, which
is true. onnx-tf's handler implements 15 only, looks a missing input up by its empty name, and
returns a Python bool, which no signature can return.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import versions


@onnx_op("OptionalHasElement")
@versions(15, 18)
class OptionalHasElement(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        name = node.inputs[0] if node.inputs else ""
        return [tf.constant(bool(name) and kwargs["tensor_dict"][name] is not None)]
