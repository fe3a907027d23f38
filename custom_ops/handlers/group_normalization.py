"""ONNX GroupNormalization -> TensorFlow, opsets 18 and 21 (onnx-tf has none).

X ``[N, C, D1, ...]``: the C channels are split into ``num_groups`` consecutive groups and each
``(n, group)`` is standardised over its channels and spatial axes (biased variance, epsilon
1e-5). Opset 18 scales and shifts per *group* (scale and bias ``[num_groups]``); opset 21 per
channel (``[C]``) and adds ``stash_type`` (statistics in float32 by default).
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .normalization import channel_shape, standardize


@onnx_op("GroupNormalization")
class GroupNormalization(BackendHandler):
    @classmethod
    def _common(cls, node, per_group: bool, **kwargs) -> list[tf.Tensor]:
        x, scale, bias = (kwargs["tensor_dict"][name] for name in node.inputs[:3])
        groups = node.attrs["num_groups"]
        rank = x.shape.rank
        shape = tf.shape(x)
        grouped = tf.reshape(x, tf.concat([shape[:1], [groups, -1], shape[2:]], 0))
        y, _, _ = standardize(
            grouped,
            range(2, rank + 1),
            node.attrs.get("epsilon", 1e-5),
            stash_float32=bool(node.attrs.get("stash_type", 1)),
        )
        scale, bias = (tf.cast(v, x.dtype) for v in (scale, bias))
        if per_group:
            scale, bias = (tf.repeat(v, shape[1] // groups) for v in (scale, bias))
        y = tf.reshape(y, shape)
        return [y * channel_shape(scale, rank) + channel_shape(bias, rank)]

    @classmethod
    def version_18(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, per_group=True, **kwargs)

    @classmethod
    def version_21(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, per_group=False, **kwargs)
