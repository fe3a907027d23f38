"""Shared arithmetic of the ONNX normalisation ops (InstanceNormalization, GroupNormalization,
LayerNormalization, RMSNormalization): standardise over some axes with the biased variance, or
divide by the root mean square.

``(x - mean) * rsqrt(var + epsilon)`` (or ``x * rsqrt(mean(x^2) + epsilon)``) where the
statistics are taken over ``axes``; with ``stash_type=1`` (the default of the ops that have it)
they are computed in float32 for a half-precision input, and the result is cast back.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def standardize(
    x: tf.Tensor, axes: Sequence[int], epsilon: float, stash_float32: bool = True
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(normalised x in x's dtype, mean, 1 / sqrt(var + epsilon))``; the statistics keep the
    reduced axes (size 1) and are in the computation type."""
    compute = _compute_dtype(x, stash_float32)
    wide = tf.cast(x, compute)
    mean = tf.reduce_mean(wide, axis=list(axes), keepdims=True)
    centred = wide - mean
    variance = tf.reduce_mean(tf.square(centred), axis=list(axes), keepdims=True)
    inv_std = tf.math.rsqrt(variance + tf.cast(epsilon, compute))
    return tf.cast(centred * inv_std, x.dtype), mean, inv_std


def rms_normalize(x: tf.Tensor, axes: Sequence[int], epsilon: float, stash_float32: bool = True) -> tf.Tensor:
    """``x / sqrt(mean(x^2) + epsilon)``, the mean taken over ``axes``, in x's dtype."""
    compute = _compute_dtype(x, stash_float32)
    wide = tf.cast(x, compute)
    mean_square = tf.reduce_mean(tf.square(wide), axis=list(axes), keepdims=True)
    return tf.cast(wide * tf.math.rsqrt(mean_square + tf.cast(epsilon, compute)), x.dtype)


def _compute_dtype(x: tf.Tensor, stash_float32: bool) -> tf.DType:
    return tf.float32 if stash_float32 and x.dtype in (tf.float16, tf.bfloat16) else x.dtype


def channel_shape(values: tf.Tensor, rank: int) -> tf.Tensor:
    """A per-channel ``[C]`` tensor shaped to broadcast over ``[N, C, D1, ...]``."""
    return tf.reshape(values, [1, -1] + [1] * (rank - 2))
