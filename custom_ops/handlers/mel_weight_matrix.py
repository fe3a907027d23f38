"""ONNX MelWeightMatrix -> TensorFlow, opset 17 (onnx-tf has none), as ONNX's reference computes it.

``num_mel_bins + 2`` points equally spaced on the mel scale (``2595 log10(1 + f / 700)``, step
``(mel(upper) - mel(lower)) / (num_mel_bins + 2)``) are mapped back to Hz and to spectrogram bins
``floor((dft_length + 1) * f / sample_rate)``; mel bin i is the triangle rising from bin
``b[i]`` to 1 at ``b[i + 1]`` and falling to 0 at ``b[i + 2]``. Output
``[dft_length // 2 + 1, num_mel_bins]`` in ``output_datatype`` (default float).
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.common import data_type
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op


@onnx_op("MelWeightMatrix")
class MelWeightMatrix(BackendHandler):
    @classmethod
    def version_17(cls, node, **kwargs) -> list[tf.Tensor]:
        mels, length, rate, lower, upper = (
            tf.cast(tf.reshape(kwargs["tensor_dict"][name], []), tf.float64)
            for name in node.inputs[:5]
        )
        mel_count = tf.cast(mels, tf.int64)
        spectrogram_bins = tf.cast(length, tf.int64) // 2 + 1
        ten = tf.constant(10.0, tf.float64)
        low, high = (2595 * tf.math.log(1 + f / 700) / tf.math.log(ten) for f in (lower, upper))
        points = tf.range(mel_count + 2, dtype=tf.float64)
        step = (high - low) / tf.cast(mel_count + 2, tf.float64)
        hertz = 700 * (tf.pow(ten, (points * step + low) / 2595) - 1)
        edges = tf.floor((length + 1) * hertz / rate)  # [mels + 2]
        left, centre, right = edges[:-2], edges[1:-1], edges[2:]
        j = tf.range(spectrogram_bins, dtype=tf.float64)[:, None]
        zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
        rising = tf.where(
            centre > left,
            tf.where((j >= left) & (j <= centre), (j - left) / tf.maximum(centre - left, 1), zero),
            tf.where(j == centre, one, zero),
        )
        falling = tf.where(
            (j >= centre) & (j < right), (right - j) / tf.maximum(right - centre, 1), zero
        )
        weights = tf.maximum(rising, falling)
        return [tf.cast(weights, data_type.onnx2tf(node.attrs.get("output_datatype", 1)))]
