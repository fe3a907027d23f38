"""ONNX STFT -> TensorFlow, opset 17 (onnx-tf has none).

``signal`` ``[batch, length, 1 or 2]`` (or ``[batch, length]``, real, as torch exports it) is cut into frames of ``frame_length`` (the input, else
the window's length, else the signal's length) every ``frame_step`` samples, ``1 + (length - frame_length) // frame_step``
of them; each frame is multiplied by ``window`` (default all ones) and transformed with
``frame_length`` points. Output ``[batch, frames, bins, 2]``, ``bins = frame_length // 2 + 1``
with ``onesided=1`` (the default), else ``frame_length``.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .spectral import dft, from_complex, to_complex


@onnx_op("STFT")
class STFT(BackendHandler):
    @classmethod
    def version_17(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        names = list(node.inputs) + ["", ""]
        signal = tensor_dict[names[0]]
        step = tf.cast(tf.reshape(tensor_dict[names[1]], []), tf.int32)
        window = tensor_dict[names[2]] if names[2] else None
        if names[3]:
            frame_length = tf.cast(tf.reshape(tensor_dict[names[3]], []), tf.int32)
        elif window is not None:
            frame_length = tf.shape(window)[0]
        else:  # neither: one frame of the whole signal, as ONNX's reference implementation does
            frame_length = tf.shape(signal)[1]
        # torch exports a real signal as [batch, length], without the trailing axis of 1
        z = to_complex(signal[..., None] if signal.shape.rank == 2 else signal)
        frames = tf.signal.frame(z, frame_length, step, pad_end=False, axis=1)
        if window is not None:
            frames = frames * tf.cast(window, frames.dtype)
        spectrum = dft(frames, 2, frame_length, False, bool(node.attrs.get("onesided", 1)))
        return [from_complex(spectrum, signal.dtype)]
