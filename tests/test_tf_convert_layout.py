"""Weights that a handler transposes on every call are stored pre-transposed by the converter, so
that TF's graph optimiser cancels the handler's transpose: checked on the optimised graph, and the
converted model still computes what onnxruntime computes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from onnx import TensorProto, helper, numpy_helper
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.grappler import tf_optimizer

from pipeline.stages.tf_convert import OnnxGraphModule, stored_layouts

RNG = np.random.default_rng(0)
HIDDEN, CHANNELS = 200, 3  # an LSTM large enough for the while-loop recurrence (fused_op_pays)


def _weights(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.normal(0, 0.5, shape).astype(np.float32), name)


def _model(shared_conv_weight: bool = False) -> onnx.ModelProto:
    """x [B, C, T] -> Conv (weight cw) -> [B, C, T] -> T-major -> LSTM (W, R, B) -> Y.
    ``shared_conv_weight``: cw is also added to a second output, a use that is not transposed."""
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["conv"], pads=[1, 1], kernel_shape=[3]),
        helper.make_node("Transpose", ["conv"], ["seq"], perm=[2, 0, 1]),
        helper.make_node("LSTM", ["seq", "W", "R", "B"], ["Y"], hidden_size=HIDDEN, direction="bidirectional"),
    ]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    if shared_conv_weight:
        nodes.append(helper.make_node("Add", ["cw", "cw"], ["doubled"]))
        outputs.append(helper.make_tensor_value_info("doubled", TensorProto.FLOAT, None))
    initializers = [
        _weights("cw", (CHANNELS, CHANNELS, 3)),
        _weights("cb", (CHANNELS,)),
        _weights("W", (2, 4 * HIDDEN, CHANNELS)),
        _weights("R", (2, 4 * HIDDEN, HIDDEN)),
        _weights("B", (2, 8 * HIDDEN)),
    ]
    graph = helper.make_graph(
        nodes, "layout", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", CHANNELS, "T"])], outputs,
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_only_weights_used_solely_by_transposing_handler_inputs_are_stored_transposed() -> None:
    assert stored_layouts(_model().graph) == {"cw": (2, 1, 0), "R": (0, 2, 1)}
    assert stored_layouts(_model(shared_conv_weight=True).graph) == {"R": (0, 2, 1)}


def _optimised_nodes(function: tf.types.experimental.ConcreteFunction) -> list:
    """The function's graph after TF's default graph optimisations (grappler), as a session runs it."""
    graph = function.graph
    meta_graph = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(add_shapes=True), graph=graph)
    fetches = meta_graph_pb2.CollectionDef()
    fetches.node_list.value.extend(t.name for t in function.outputs)
    meta_graph.collection_def["train_op"].CopyFrom(fetches)
    return list(tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta_graph).node)


@pytest.mark.parametrize("shared", [False, True])
def test_no_weight_transpose_survives_optimisation_and_outputs_match_onnxruntime(shared: bool) -> None:
    model = _model(shared_conv_weight=shared)
    module = OnnxGraphModule(model)
    serving = module.serving_function()
    nodes = _optimised_nodes(serving)
    by_name = {node.name: node for node in nodes}

    def reads_a_variable(name: str) -> bool:
        source = by_name.get(name.split(":")[0].lstrip("^"))
        return source is not None and source.op == "ReadVariableOp"

    weight_transposes = [n.name for n in nodes if n.op == "Transpose" and reads_a_variable(n.input[0])]
    if shared:  # cw is stored as ONNX has it, so the Conv handler's transpose stays
        assert len(weight_transposes) == 1
    else:
        assert weight_transposes == []

    x = RNG.normal(size=(2, CHANNELS, 7)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = serving(x=tf.constant(x))
    np.testing.assert_allclose(got["Y"].numpy(), expected[0], atol=1e-5, rtol=0)
    if shared:
        np.testing.assert_allclose(got["doubled"].numpy(), expected[1], atol=1e-6, rtol=0)


def test_serving_function_and_per_layer_check_share_one_trace() -> None:
    from pipeline.parity.layers import tf_node_outputs

    model = _model()
    module = OnnxGraphModule(model)
    traced = module.node_outputs_function()
    assert module.node_outputs_function() is traced
    x = RNG.normal(size=(1, CHANNELS, 5)).astype(np.float32)
    served = module.serving_function()(x=tf.constant(x))
    shared = tf_node_outputs(model, {"x": x}, None, module)
    fresh = tf_node_outputs(model, {"x": x}, None)
    assert set(shared) == set(fresh) >= {"conv", "seq", "Y"}
    for name in fresh:
        np.testing.assert_array_equal(shared[name], fresh[name], err_msg=name)
    np.testing.assert_array_equal(served["Y"].numpy(), shared["Y"])
