"""ONNX DFT -> TensorFlow, opsets 17 and 20 (onnx-tf has none).

Input ``[..., 1]`` (real) or ``[..., 2]`` (complex); output ``[..., 2]``. The transform runs
along ``axis`` (17: attribute, default 1; 20: optional third input, default -2) with the
optional ``dft_length`` points (zero-padded or truncated); ``inverse=1`` divides by the length;
``onesided=1`` keeps the first ``length // 2 + 1`` bins. Computed in complex128 (as numpy does)
and rounded to the input's type. See :mod:`.spectral`.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .spectral import dft, from_complex, to_complex


@onnx_op("DFT")
class DFT(BackendHandler):
    @classmethod
    def _common(cls, node, axis: int | tf.Tensor, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        names = list(node.inputs) + ["", ""]
        length = tf.reshape(tensor_dict[names[1]], []) if names[1] else None
        z = dft(
            to_complex(x, double=True),
            axis % x.shape.rank,
            length,
            inverse=bool(node.attrs.get("inverse", 0)),
            onesided=bool(node.attrs.get("onesided", 0)),
        )
        return [from_complex(z, x.dtype)]

    @classmethod
    def version_17(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, node.attrs.get("axis", 1), **kwargs)

    @classmethod
    def version_20(cls, node, **kwargs) -> list[tf.Tensor]:
        names = list(node.inputs) + ["", "", ""]
        axis = -2
        if names[2]:
            axis = tf.cast(tf.reshape(kwargs["tensor_dict"][names[2]], []), tf.int32)
        return cls._common(node, axis, **kwargs)
