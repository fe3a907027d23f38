"""ONNX Reshape -> TensorFlow (opsets 1, 5, 13, 14, and 19, 21, 23, which only added types), with a target shape XLA can compute.

A 0 in ONNX's target shape copies the input's size on that axis (unless ``allowzero=1``,
opset 14). onnx-tf finds the zeros with ``tf.where`` on the shape tensor, whose output size
depends on its values: XLA then cannot treat the shape as a compile-time constant and refuses
to compile the function. Here every entry is chosen elementwise (``shape[i] == 0 ? input
size on axis i : shape[i]``), which XLA folds to a constant for any shape computed from
constants and input shapes, and graph mode computes the same.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


def reshape(x: tf.Tensor, shape: tf.Tensor, allowzero: bool = False) -> tf.Tensor:
    """``x`` reshaped to the ONNX target ``shape`` (a 1-D integer tensor of static length)."""
    shape = tf.cast(shape, tf.int64)
    if allowzero:
        return tf.reshape(x, shape)
    length = shape.shape[0]
    input_shape = tf.shape(x, out_type=tf.int64)
    if length is None or x.shape.rank is None:  # cannot line the axes up at trace time
        rank = tf.size(input_shape)
        padded = tf.pad(input_shape, [[0, tf.maximum(tf.size(shape) - rank, 0)]])[: tf.size(shape)]
    else:
        padded = tf.pad(input_shape, [[0, max(length - x.shape.rank, 0)]])[:length]
    return tf.reshape(x, tf.where(tf.equal(shape, 0), padded, shape))


@onnx_op("Reshape")
class Reshape(BackendHandler):
    """Reshape 1 (shape attribute), 5, 13 and 14 (``allowzero``)."""

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        return [reshape(x, tf.constant(node.attrs["shape"], tf.int64))]

    @classmethod
    def version_5(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x, shape = (tensor_dict[name] for name in node.inputs)
        return [reshape(x, shape, bool(node.attrs.get("allowzero", 0)))]

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds bfloat16."""
        return cls.version_5(node, **kwargs)

    @classmethod
    def version_14(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds ``allowzero``."""
        return cls.version_5(node, **kwargs)

    @classmethod
    def version_19(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds float8 types."""
        return cls.version_5(node, **kwargs)

    @classmethod
    def version_21(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds int4/uint4."""
        return cls.version_5(node, **kwargs)

    @classmethod
    def version_23(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds float4e2m1."""
        return cls.version_5(node, **kwargs)
