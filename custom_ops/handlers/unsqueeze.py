"""ONNX Unsqueeze -> TensorFlow, opsets 1, 11, 13, 21, 23.

``axes`` is an attribute up to opset 11 and a required int64 input from opset 13 on (21 and
23 only add element types). Axes index the *output*, whose rank is ``rank(x) + len(axes)``;
negative axes count from its end, and their order does not matter. Axes known when the graph
is traced become ``tf.expand_dims`` calls in ascending order; axes computed at run time
become a reshape to the output shape, built by scattering x's dimensions into the positions
that are not in axes.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


def unsqueeze(x: tf.Tensor, axes: tf.Tensor | list[int]) -> tf.Tensor:
    """Insert size-1 dimensions at the output positions ``axes``."""
    static_axes = tf.get_static_value(axes)
    if static_axes is not None and x.shape.rank is not None:
        out_rank = x.shape.rank + len(static_axes)
        normalized = sorted(int(a) + out_rank if a < 0 else int(a) for a in static_axes)
        if len(set(normalized)) != len(normalized) or not all(0 <= a < out_rank for a in normalized):
            raise ValueError(f"Unsqueeze: invalid axes {list(static_axes)} for output rank {out_rank}")
        for axis in normalized:
            x = tf.expand_dims(x, axis)
        return x
    return _unsqueeze_at_run_time(x, tf.cast(axes, tf.int32))


def _unsqueeze_at_run_time(x: tf.Tensor, axes: tf.Tensor) -> tf.Tensor:
    out_rank = tf.rank(x) + tf.size(axes)
    axes = tf.where(axes < 0, axes + out_rank, axes)
    is_new = tf.reduce_any(tf.equal(tf.range(out_rank)[:, None], axes[None, :]), axis=1)
    kept_positions = tf.where(tf.logical_not(is_new))
    out_shape = tf.tensor_scatter_nd_update(
        tf.ones([out_rank], tf.int32), kept_positions, tf.shape(x)
    )
    y = tf.reshape(x, out_shape)
    if x.shape.rank is not None and axes.shape.rank == 1 and axes.shape[0] is not None:
        y.set_shape([None] * (x.shape.rank + axes.shape[0]))
    return y


@onnx_op("Unsqueeze")
class Unsqueeze(BackendHandler):
    """Unsqueeze with axes as attribute (1, 11) or as input (13, 21, 23)."""

    @classmethod
    def _axes_from_attribute(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        return [unsqueeze(x, node.attrs["axes"])]

    @classmethod
    def _axes_from_input(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        return [unsqueeze(tensor_dict[node.inputs[0]], tensor_dict[node.inputs[1]])]

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._axes_from_attribute(node, **kwargs)

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._axes_from_attribute(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._axes_from_input(node, **kwargs)

    @classmethod
    def version_21(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._axes_from_input(node, **kwargs)

    @classmethod
    def version_23(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._axes_from_input(node, **kwargs)
