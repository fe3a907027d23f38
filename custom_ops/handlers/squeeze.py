"""ONNX Squeeze -> TensorFlow, opsets 1, 11, 13, 21, 23.

``axes`` is an attribute up to opset 11 and an optional int64 input from opset 13 on (21 and
23 only add element types). Negative axes count from the end. Without axes every dimension
of size 1 is removed. Axes known when the graph is traced (an initializer, a ``Constant``
node, anything TensorFlow can fold) become a static ``tf.squeeze``; axes computed at run time
become a reshape to the shape without those dimensions, after checking that they are 1.

For LiteRT (:func:`custom_ops.lowering.target` ``"tflite"``) known axes of an input of known rank
become a reshape too: TF 2.21's converter rejects some ``tf.squeeze`` ops of AutoVC's graph
("'tfl.squeeze' op attribute 'squeeze_dims' failed to satisfy constraint") that a reshape to the
kept dimensions replaces exactly (a removed dimension that is not 1 still fails, as the element
counts differ).
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from custom_ops.lowering import target


def squeeze(x: tf.Tensor, axes: tf.Tensor | list[int] | None) -> tf.Tensor:
    """Remove the size-1 dimensions ``axes`` of ``x`` (all size-1 dimensions if None)."""
    if axes is None:
        return tf.squeeze(x)
    static_axes = tf.get_static_value(axes)
    if static_axes is not None:
        if target() == "tflite" and x.shape.rank is not None:
            return _squeeze_by_reshape(x, [int(a) % x.shape.rank for a in static_axes])
        return tf.squeeze(x, axis=[int(a) for a in static_axes])
    return _squeeze_at_run_time(x, tf.cast(axes, tf.int32))


def _squeeze_by_reshape(x: tf.Tensor, axes: list[int]) -> tf.Tensor:
    """``x`` reshaped to its dimensions outside ``axes`` (non-negative): static sizes where known."""
    shape = tf.shape(x)
    kept = [d for d in range(x.shape.rank) if d not in axes]
    return tf.reshape(x, tf.stack([x.shape[d] if x.shape[d] is not None else shape[d] for d in kept]))


def _squeeze_at_run_time(x: tf.Tensor, axes: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(x)
    rank = tf.size(shape)
    axes = tf.where(axes < 0, axes + rank, axes)
    check = tf.debugging.assert_equal(
        tf.gather(shape, axes), 1, message="Squeeze: a dimension in axes is not 1"
    )
    is_removed = tf.reduce_any(tf.equal(tf.range(rank)[:, None], axes[None, :]), axis=1)
    with tf.control_dependencies([check]):
        y = tf.reshape(x, tf.boolean_mask(shape, tf.logical_not(is_removed)))
    if x.shape.rank is not None and axes.shape.rank == 1 and axes.shape[0] is not None:
        y.set_shape([None] * (x.shape.rank - axes.shape[0]))
    return y


@onnx_op("Squeeze")
class Squeeze(BackendHandler):
    """Squeeze with axes as attribute (1, 11) or as optional input (13, 21, 23)."""

    @classmethod
    def _axes_from_attribute(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        return [squeeze(x, node.attrs.get("axes"))]

    @classmethod
    def _axes_from_input(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        has_axes = len(node.inputs) > 1 and node.inputs[1] != ""
        return [squeeze(x, tensor_dict[node.inputs[1]] if has_axes else None)]

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
