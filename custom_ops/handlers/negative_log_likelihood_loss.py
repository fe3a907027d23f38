"""ONNX NegativeLogLikelihoodLoss -> TensorFlow, opsets 12, 13, 22 (onnx-tf has none);
13 and 22 only add types. See :mod:`.loss`."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .loss import LossMixin, loss_attrs, negative_log_likelihood


@onnx_op("NegativeLogLikelihoodLoss")
class NegativeLogLikelihoodLoss(LossMixin, BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        names = list(node.inputs) + [""]
        weight = tensor_dict[names[2]] if names[2] else None
        x, target = tensor_dict[names[0]], tensor_dict[names[1]]
        return [negative_log_likelihood(x, target, weight, *loss_attrs(node))]

    @classmethod
    def version_12(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_22(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
