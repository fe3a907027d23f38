"""ONNX Pad -> TensorFlow, opsets 1, 2, 11, 13, 18, 19, 21, 23.

``pads`` (attribute ``paddings`` in 1, ``pads`` in 2, an input from 11, possibly a run-time
tensor) is ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]``; from 18 the optional ``axes``
input names the axes it covers (the others are not padded). A negative pad removes elements.
Modes: ``constant`` (the ``value`` attribute before 11, then the optional ``constant_value``
input; default 0), ``reflect`` (mirror without repeating the edge), ``edge`` (repeat the edge),
and from 19 ``wrap`` (continue from the other end). 21 and 23 only add element types.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from custom_ops.support import checked_option

MODES = ("constant", "reflect", "edge", "wrap")


@onnx_op("Pad")
class Pad(BackendHandler):
    @classmethod
    def check_options(cls, node, since_version: int) -> None:
        checked_option(node, "mode", "constant", MODES)

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        rank = x.shape.rank
        inputs = list(node.inputs) + [""] * 3
        # checked here too for onnx-tf's prepare(), which does not run check_options
        mode = checked_option(node, "mode", "constant", MODES)
        if "pads" in node.attrs or "paddings" in node.attrs:
            pads = tf.constant(list(node.attrs.get("pads", node.attrs.get("paddings"))), tf.int64)
            value = tf.constant(node.attrs.get("value", 0.0), x.dtype)
        else:
            pads = tf.cast(tf.reshape(tensor_dict[inputs[1]], [-1]), tf.int64)
            value = tf.zeros([], x.dtype)
            if inputs[2]:
                value = tf.cast(tf.reshape(tensor_dict[inputs[2]], []), x.dtype)
        pairs = tf.transpose(tf.reshape(pads, [2, -1]))  # [axes, (begin, end)]
        if inputs[3]:
            axes = tf.cast(tf.reshape(tensor_dict[inputs[3]], [-1]), tf.int64) % rank
            pairs = tf.scatter_nd(axes[:, None], pairs, tf.constant([rank, 2], tf.int64))
        # negative pads crop first
        shape = tf.shape(x, out_type=tf.int64)
        crop = tf.maximum(-pairs, 0)
        x = tf.slice(x, crop[:, 0], shape - crop[:, 0] - crop[:, 1])
        grow = tf.maximum(pairs, 0)
        if mode == "constant":
            return [tf.pad(x, grow, constant_values=value)]
        if mode == "reflect":
            return [tf.pad(x, grow, mode="REFLECT")]
        shape = tf.shape(x, out_type=tf.int64)
        for axis in range(rank):
            positions = tf.range(-grow[axis, 0], shape[axis] + grow[axis, 1])
            if mode == "edge":
                positions = tf.clip_by_value(positions, 0, shape[axis] - 1)
            else:
                positions = tf.math.floormod(positions, shape[axis])
            x = tf.gather(x, positions, axis=axis)
        return [x]

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

    @classmethod
    def version_19(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_21(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_23(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
