"""ONNX Split -> TensorFlow, opsets 1, 2, 11, 13, 18.

The sizes of the parts along ``axis`` (default 0) come from the ``split`` attribute (2, 11), the
optional ``split`` input (1, 13, 18; a constant or a run-time tensor), or else from the number
of outputs: equal parts, and from opset 18 (``num_outputs``) parts of ``ceil(L / n)`` with a
smaller last one. Lengths may be dynamic.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("Split")
class Split(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        axis = node.attrs.get("axis", 0) % x.shape.rank
        parts = len(node.outputs)
        if "split" in node.attrs:
            sizes = tf.constant(list(node.attrs["split"]), tf.int64)
        elif len(node.inputs) > 1 and node.inputs[1]:
            sizes = tf.cast(tensor_dict[node.inputs[1]], tf.int64)
        else:
            length = tf.shape(x, out_type=tf.int64)[axis]
            chunk = -(-length // parts)
            sizes = tf.concat([tf.fill([parts - 1], chunk), [length - chunk * (parts - 1)]], 0)
        return tf.split(x, sizes, num=parts, axis=axis)

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_2(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_18(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
