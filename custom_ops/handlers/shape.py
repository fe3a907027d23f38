"""ONNX Shape -> TensorFlow, opsets 1, 13, 15, 19, 21, 23.

The shape of the input as a 1-D int64 tensor. From opset 15 the optional ``start`` and ``end``
attributes select a slice of it: negative values count from the end, and both are clamped to
``[0, rank]`` (so ``start >= end`` gives an empty shape); 19, 21 and 23 only add element types.

onnx-tf's handler computes the slice with ``len()`` of the shape, which fails as plain graph
code and costs an AutoGraph conversion per node (0.1 s each), and it does not clamp ``end``.
The slice here is a strided slice with Python bounds, which TensorFlow clamps the same way.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


def shape(x: tf.Tensor, start: int = 0, end: int | None = None) -> tf.Tensor:
    """``shape(x)[start:end]`` as int64, with ONNX's (Python's) negative and clamped bounds."""
    return tf.shape(x, out_type=tf.int64)[start:end]


@onnx_op("Shape")
class Shape(BackendHandler):
    """Shape without (1, 13) and with (15, 19, 21, 23) ``start``/``end``."""

    @classmethod
    def _whole(cls, node, **kwargs) -> list[tf.Tensor]:
        return [shape(kwargs["tensor_dict"][node.inputs[0]])]

    @classmethod
    def _sliced(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        return [shape(x, node.attrs.get("start", 0), node.attrs.get("end"))]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._whole(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._whole(node, **kwargs)

    @classmethod
    def version_15(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._sliced(node, **kwargs)

    @classmethod
    def version_19(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._sliced(node, **kwargs)

    @classmethod
    def version_21(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._sliced(node, **kwargs)

    @classmethod
    def version_23(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._sliced(node, **kwargs)
