"""ONNX SoftmaxCrossEntropyLoss -> TensorFlow, opsets 12, 13 (onnx-tf has none); 13 only adds
types. ``log_prob = log_softmax(scores, axis=1)`` (the optional second output), then the
negative log-likelihood of :mod:`.loss`."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .loss import LossMixin, loss_attrs, negative_log_likelihood


@onnx_op("SoftmaxCrossEntropyLoss")
class SoftmaxCrossEntropyLoss(LossMixin, BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        names = list(node.inputs) + [""]
        scores, labels = tensor_dict[names[0]], tensor_dict[names[1]]
        weight = tensor_dict[names[2]] if names[2] else None
        log_prob = tf.nn.log_softmax(scores, axis=1)
        loss = negative_log_likelihood(log_prob, labels, weight, *loss_attrs(node))
        return [loss, log_prob][: len(node.outputs)]

    @classmethod
    def version_12(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
