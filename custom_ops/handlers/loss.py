"""Shared arithmetic of the ONNX loss ops (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).

``x`` ``[N, C, d1, ...]`` holds log-probabilities, ``target`` ``[N, d1, ...]`` class indices.
Each element's loss is ``-x[n, target, d...] * w`` with ``w = weight[target]`` (1 without a
weight input) and ``w = 0`` where ``target == ignore_index``. ``reduction``: ``none`` (that
tensor), ``sum``, or ``mean`` (default): the sum divided by the sum of ``w``.
"""

from __future__ import annotations

import tensorflow as tf

from custom_ops.support import checked_option


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
    return REDUCTIONS[reduction](-picked * w, w)


# reduction: (per-element losses, their weights) -> the output
REDUCTIONS = {
    "none": lambda loss, w: loss,
    "sum": lambda loss, w: tf.reduce_sum(loss),
    "mean": lambda loss, w: tf.reduce_sum(loss) / tf.reduce_sum(w),
}


def loss_attrs(node) -> tuple[int | None, str]:
    """``(ignore_index, reduction)`` of a loss node; :class:`UnsupportedOptionError` for a
    reduction not in :data:`REDUCTIONS`."""
    return node.attrs.get("ignore_index"), checked_option(node, "reduction", "mean", REDUCTIONS)


class LossMixin:
    """``check_options`` of a loss handler (put before ``BackendHandler`` in the bases)."""

    @classmethod
    def check_options(cls, node, since_version: int) -> None:
        loss_attrs(node)
