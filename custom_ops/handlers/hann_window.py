"""ONNX HannWindow -> TensorFlow, opset 17 (onnx-tf has none).

``w[n] = sin^2(pi n / N) = 0.5 - 0.5 cos(2 pi n / N)`` for ``n < size``, with ``N = size`` when ``periodic=1`` (the default) and
``size - 1`` otherwise; ``output_datatype`` defaults to float.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .spectral import window


@onnx_op("HannWindow")
class HannWindow(BackendHandler):
    @classmethod
    def version_17(cls, node, **kwargs) -> list[tf.Tensor]:
        size = kwargs["tensor_dict"][node.inputs[0]]
        periodic = bool(node.attrs.get("periodic", 1))
        return [window(size, periodic, (0.5, 0.5), node.attrs.get("output_datatype", 1))]
