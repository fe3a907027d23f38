"""ONNX LpPool -> TensorFlow, opsets 1, 2, 11, 18, 22 (any 1-D, 2-D or 3-D input).

``Y = (sum of |x|^p over the window's input values)^(1 / p)``, the Lp norm of each window:
padding adds nothing, nor do the positions past the input that ``ceil_mode`` adds (onnxruntime
does the same; ONNX's reference pads with zeros). ``p`` is a float in version 1 (default 2.0),
an int from 2 on (default 2); 18 adds ``ceil_mode`` and ``dilations``; 11 and 22 change
nothing here. The window arithmetic is :mod:`custom_ops.handlers.pooling`'s; onnx-tf's handler
has no version 18/22.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .pooling import PoolMixin, gather_windows, spatial_axes_last_first
from .reduction import versions


@onnx_op("LpPool")
@versions(1, 2, 11, 18, 22)
class LpPool(PoolMixin, BackendHandler):
    """Sum of ``|x|^p`` over each window, one spatial axis at a time, then its ``p``-th root."""

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        p = tf.cast(node.attrs.get("p", 2), x.dtype)
        total = tf.pow(tf.abs(x), p)
        for axis, windows in spatial_axes_last_first(cls._windows(node, x)):
            total = tf.reduce_sum(gather_windows(total, axis, windows, tf.zeros([], x.dtype)), axis + 1)
        return [tf.pow(total, 1 / p)]
