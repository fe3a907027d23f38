"""ONNX RMSNormalization -> TensorFlow, opset 23 (onnx-tf has none).

``Y = X / sqrt(mean(X^2) + epsilon) * Scale``, the mean taken over the axes from ``axis``
(default -1) to the last, epsilon 1e-5; Scale broadcasts to X. As for LayerNormalization, the
statistics are computed in float32 for a half-precision X with the default ``stash_type=1``.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .normalization import rms_normalize


@onnx_op("RMSNormalization")
class RMSNormalization(BackendHandler):
    @classmethod
    def version_23(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x, scale = tensor_dict[node.inputs[0]], tensor_dict[node.inputs[1]]
        rank = x.shape.rank
        axis = node.attrs.get("axis", -1) % rank
        stash_float32 = bool(node.attrs.get("stash_type", 1))
        y = rms_normalize(x, range(axis, rank), node.attrs.get("epsilon", 1e-5), stash_float32)
        return [y * tf.cast(scale, x.dtype)]
