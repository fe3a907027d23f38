"""ONNX Mish -> TensorFlow, opsets 18 and 22 (onnx-tf has none; 22 adds bfloat16):
``x * tanh(softplus(x))``, with ``softplus(x) = log(1 + exp(x))`` computed without overflow.

Softplus is written out as ``log1p(exp(-|x|)) + max(x, 0)`` rather than ``tf.math.softplus``:
with oneDNN on (TensorFlow's default on x86), graph mode rewrites ``x * tanh(softplus(x))`` into
one fused Mish kernel, which on AVX-512 CPUs returns -0.0 for x <= -19 and is 4e-7 off near -15
(float32), outside the ONNX tolerance; the written-out form is not matched."""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from .reduction import versions


@onnx_op("Mish")
@versions(18, 22)
class Mish(BackendHandler):
    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        softplus = tf.math.log1p(tf.exp(-tf.abs(x))) + tf.nn.relu(x)
        return [x * tf.tanh(softplus)]
