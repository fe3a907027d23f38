"""Shared arithmetic of the ONNX signal ops (DFT, STFT, the window functions).

ONNX carries complex values as a trailing axis of size 2 (real, imaginary); a trailing axis of
size 1 is a real signal. :func:`dft` is ``numpy.fft.fft`` / ``ifft`` along one axis with
``numpy``'s ``n``: the signal is zero-padded or truncated to ``length`` first; ``ifft`` divides
by ``length``. ``onesided`` keeps the first ``length // 2 + 1`` bins.
"""

from __future__ import annotations

import math

import tensorflow as tf
from onnx_tf.common import data_type


def to_complex(x: tf.Tensor, double: bool = False) -> tf.Tensor:
    """``[..., 1]`` (real) or ``[..., 2]`` (real, imaginary) -> complex ``[...]``, complex128
    for a float64 input or with ``double``, else complex64."""
    wide = tf.cast(x, tf.float64 if double or x.dtype == tf.float64 else tf.float32)
    complex_type = tf.complex128 if wide.dtype == tf.float64 else tf.complex64
    real = wide[..., 0]
    if x.shape[-1] == 1:
        return tf.cast(real, complex_type)
    return tf.complex(real, wide[..., 1])


def from_complex(z: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """complex ``[...]`` -> ``[..., 2]`` in ``dtype``."""
    return tf.cast(tf.stack([tf.math.real(z), tf.math.imag(z)], axis=-1), dtype)


def dft(
    z: tf.Tensor,
    axis: int | tf.Tensor,
    length: tf.Tensor | int | None,
    inverse: bool,
    onesided: bool,
) -> tf.Tensor:
    """The (inverse) DFT of complex ``z`` along ``axis`` (non-negative; may be a run-time
    scalar) with ``length`` points."""
    rank = z.shape.rank
    axis = tf.cast(axis, tf.int32)
    order = tf.concat([tf.range(axis), tf.range(axis + 1, rank), [axis]], 0)
    z = tf.transpose(z, order)
    have = tf.shape(z)[-1]
    if length is None:
        length = have
    length = tf.cast(length, tf.int32)
    z = z[..., : tf.minimum(have, length)]
    padding = tf.concat([tf.zeros([rank - 1, 2], tf.int32), [[0, tf.maximum(length - have, 0)]]], 0)
    z = tf.pad(z, padding)
    z = tf.signal.ifft(z) if inverse else tf.signal.fft(z)
    if onesided:
        z = z[..., : length // 2 + 1]
    return tf.transpose(z, tf.math.invert_permutation(order))


def window(
    size: tf.Tensor, periodic: bool, cosines: tuple[float, ...], dtype_code: int
) -> tf.Tensor:
    """``sum_k (-1)^k c_k cos(2 pi k n / N)`` for ``n < size``, ``N = size`` (periodic) or
    ``size - 1`` (symmetric), in the ONNX data type ``dtype_code``, computed in float64."""
    size = tf.cast(tf.reshape(size, []), tf.int64)
    n = tf.range(size, dtype=tf.float64)
    denominator = tf.cast(size if periodic else size - 1, tf.float64)
    phase = 2 * math.pi * n / denominator
    terms = [(-1) ** k * c * tf.cos(k * phase) for k, c in enumerate(cosines)]
    return tf.cast(tf.add_n(terms), data_type.onnx2tf(dtype_code))
