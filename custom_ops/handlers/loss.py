"""Shared arithmetic of the ONNX loss ops (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).

``x`` ``[N, C, d1, ...]`` holds log-probabilities, ``target`` ``[N, d1, ...]`` class indices.
Each element's loss is ``-x[n, target, d...] * w`` with ``w = weight[target]`` (1 without a
weight input) and ``w = 0`` where ``target == ignore_index``. ``reduction``: ``none`` (that
tensor), ``sum``, or ``mean`` (default): the sum divided by the sum of ``w``.
"""

from __future__ import annotations

import tensorflow as tf


def negative_log_likelihood(
    x: tf.Tensor,
    target: tf.Tensor,
    weight: tf.Tensor | None,
    ignore_index: int | None,
    reduction: str,
) -> tf.Tensor:
    classes = tf.shape(x)[1]
    index = tf.clip_by_value(tf.cast(target, tf.int32), 0, classes - 1)
    picked = tf.reduce_sum(x * tf.one_hot(index, classes, axis=1, dtype=x.dtype), axis=1)
    w = tf.ones_like(picked) if weight is None else tf.gather(tf.cast(weight, x.dtype), index)
    if ignore_index is not None:
        w = tf.where(tf.equal(tf.cast(target, tf.int64), ignore_index), tf.zeros_like(w), w)
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return tf.reduce_sum(loss)
    if reduction == "mean":
        return tf.reduce_sum(loss) / tf.reduce_sum(w)
    raise ValueError(f"loss reduction {reduction!r} is not one of none, sum, mean")


def loss_attrs(node) -> tuple[int | None, str]:
    """``(ignore_index, reduction)`` of a loss node."""
    reduction = node.attrs.get("reduction", "mean")
    return node.attrs.get("ignore_index"), reduction.decode() if isinstance(
        reduction, bytes
    ) else reduction
