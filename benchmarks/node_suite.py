"""Coverage of ONNX's official node-test suite through the `convert` path (placeholder)."""

from __future__ import annotations

import numpy as np
import onnx
import tensorflow as tf

from pipeline.tf_convert import OnnxGraphModule, tf_name


def run_graph_module(
    model: onnx.ModelProto, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``model`` run once the way `convert` builds it: :class:`OnnxGraphModule`'s serving
    function, outputs keyed by ONNX name."""
    module = OnnxGraphModule(model)
    serving = module.serving_function()
    feeds = {i.tf_name: tf.constant(inputs[i.onnx_name], dtype=i.dtype) for i in module.inputs}
    outputs = serving(**feeds)
    return {name: outputs[tf_name(name)].numpy() for name in module.output_names}
