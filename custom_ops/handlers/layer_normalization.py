"""ONNX LayerNormalization -> TensorFlow, opset 17 (onnx-tf has none).

X is standardised over the axes from ``axis`` (default -1) to the last (biased variance,
epsilon 1e-5, statistics in float32 with the default ``stash_type=1``), then
``Y = normalised * Scale + B`` (B optional), both broadcast to X. The optional outputs Mean and
InvStdDev have X's shape with the normalised axes set to 1, in the statistics' type.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .normalization import standardize


@onnx_op("LayerNormalization")
class LayerNormalization(BackendHandler):
    @classmethod
    def version_17(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x, scale = tensor_dict[node.inputs[0]], tensor_dict[node.inputs[1]]
        rank = x.shape.rank
        axis = node.attrs.get("axis", -1) % rank
        y, mean, inv_std = standardize(
            x,
            range(axis, rank),
            node.attrs.get("epsilon", 1e-5),
            stash_float32=bool(node.attrs.get("stash_type", 1)),
        )
        y = y * tf.cast(scale, x.dtype)
        if len(node.inputs) > 2 and node.inputs[2]:
            y = y + tf.cast(tensor_dict[node.inputs[2]], x.dtype)
        return [y, mean, inv_std][: len(node.outputs)]
