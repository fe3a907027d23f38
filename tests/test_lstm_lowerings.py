"""The LSTM handler's XLA and LiteRT lowerings (``custom_ops.lowering``) against the independent
numpy reference (tests/reference/lstm.py): a 2-layer bidirectional LSTM graph, traced for each
target, compiled with ``jit_compile=True`` or converted to a builtins-only LiteRT model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tensorflow as tf
from onnx import TensorProto, helper, numpy_helper
from reference.lstm import LSTM as Reference

from custom_ops.lowering import lowering
from pipeline.stages.tf_convert import OnnxGraphModule

FEATURES, HIDDEN = 4, 5


def _weights(rng: np.random.Generator, features: int) -> dict[str, np.ndarray]:
    return {
        "W": rng.normal(0, 0.5, (2, 4 * HIDDEN, features)).astype(np.float32),
        "R": rng.normal(0, 0.5, (2, 4 * HIDDEN, HIDDEN)).astype(np.float32),
        "B": rng.normal(0, 0.5, (2, 8 * HIDDEN)).astype(np.float32),
    }


def two_layer_model(layers: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    """X [T, N, F], initial_h/initial_c [2, N, H] of layer 1 -> Y [T, 2, N, H] and Y_h of
    layer 2; layer 2 reads layer 1's Y with both directions' units side by side (as torch's
    nn.LSTM(num_layers=2, bidirectional=True) exports it)."""
    initializers = [
        numpy_helper.from_array(value, f"{name}{k}") for k, layer in enumerate(layers) for name, value in layer.items()
    ]
    initializers.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape"))
    nodes = [
        helper.make_node(
            "LSTM", ["X", "W0", "R0", "B0", "", "initial_h", "initial_c"], ["Y0"],
            direction="bidirectional", hidden_size=HIDDEN,
        ),
        helper.make_node("Transpose", ["Y0"], ["Y0_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["Y0_t", "shape"], ["X1"]),
        helper.make_node("LSTM", ["X1", "W1", "R1", "B1"], ["Y", "Y_h"], direction="bidirectional", hidden_size=HIDDEN),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "lstm2",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", FEATURES]),
            helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [2, "N", HIDDEN]),
            helper.make_tensor_value_info("initial_c", TensorProto.FLOAT, [2, "N", HIDDEN]),
        ],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 2, "N", HIDDEN]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [2, "N", HIDDEN]),
        ],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def case() -> tuple[onnx.ModelProto, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(11)
    layers = [_weights(rng, FEATURES), _weights(rng, 2 * HIDDEN)]
    return two_layer_model(layers), layers


def reference(layers: list[dict[str, np.ndarray]], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Both layers through the numpy reference."""
    y0, _, _ = Reference.run(
        inputs["X"], **layers[0], initial_h=inputs["initial_h"], initial_c=inputs["initial_c"],
        direction="bidirectional",
    )  # fmt: skip
    steps, _, batch, _ = y0.shape
    x1 = y0.transpose(0, 2, 1, 3).reshape(steps, batch, 2 * HIDDEN)
    y, y_h, _ = Reference.run(x1, **layers[1], direction="bidirectional")
    return {"Y": y, "Y_h": y_h}


def random_inputs(batch: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(steps, batch, FEATURES)).astype(np.float32),
        "initial_h": rng.normal(size=(2, batch, HIDDEN)).astype(np.float32),
        "initial_c": rng.normal(size=(2, batch, HIDDEN)).astype(np.float32),
    }


def test_xla_lowering_compiles_and_matches_reference(case) -> None:
    model, layers = case
    module = OnnxGraphModule(model)
    with lowering("xla"):
        compiled = tf.function(module.serving_function(), jit_compile=True)
    for batch, steps in [(1, 1), (3, 11), (2, 40)]:
        inputs = random_inputs(batch, steps, seed=batch * 100 + steps)
        outputs = compiled(**{k: tf.constant(v) for k, v in inputs.items()})
        for name, want in reference(layers, inputs).items():
            np.testing.assert_allclose(outputs[name].numpy(), want, atol=1e-5, rtol=0, err_msg=name)


def test_xla_lowering_has_no_block_lstm(case) -> None:
    """Graph mode keeps the fused BlockLSTM for small layers; XLA has no kernel for it."""
    model, _ = case
    module = OnnxGraphModule(model)
    ops = {}
    for target in ("graph", "xla"):
        with lowering(target):
            graph = module.node_outputs_function().graph
        ops[target] = {op.type for op in graph.get_operations()}
    assert "BlockLSTM" in ops["graph"]
    assert "BlockLSTM" not in ops["xla"] and ops["xla"] & {"While", "StatelessWhile"}


def test_tflite_lowering_converts_to_builtins_with_dynamic_batch_and_time(case) -> None:
    """Builtin ops only, one model for every batch and length: resized to B=3, T=11 it matches
    the reference, and so does TensorFlow running the graph traced for LiteRT."""
    model, layers = case
    module = OnnxGraphModule(model)
    with lowering("tflite"):
        function = module.serving_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()

    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    (signature,) = interpreter._get_full_signature_list().values()  # tensor index by ONNX name
    inputs = random_inputs(batch=3, steps=11, seed=5)
    for name, index in signature["inputs"].items():
        interpreter.resize_tensor_input(index, inputs[name].shape)
    interpreter.allocate_tensors()
    for name, index in signature["inputs"].items():
        interpreter.set_tensor(index, inputs[name])
    interpreter.invoke()
    tf_outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})  # TF runs the same graph
    for name, want in reference(layers, inputs).items():
        got = interpreter.get_tensor(signature["outputs"][name])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=name)
        np.testing.assert_allclose(tf_outputs[name].numpy(), want, atol=1e-5, rtol=0, err_msg=name)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "WHILE" in ops and not any(op.startswith("Flex") for op in ops), ops

