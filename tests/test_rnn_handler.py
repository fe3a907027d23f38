"""The RNN handler (``custom_ops/handlers/rnn.py``) through onnx-tf, against onnx's node tests,
the independent numpy reference (itself checked against onnxruntime), PyTorch (exported
``nn.RNN`` models with tanh and relu), and its XLA and LiteRT lowerings."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_onnx_tf, run_test_case
from recurrent_models import (
    ACTIVATIONS,
    DIRECTIONS,
    INPUT_NAMES,
    OUTPUT_NAMES,
    OUTPUT_SUBSETS,
    SweepCase,
    TorchRecurrent,
    export_torch,
    node_model,
    sweep_features,
)
from reference.rnn import RNN as Reference
from test_lstm_handler import _has_gpu_kernel, _loop_functions

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.rnn import RNN  # noqa: E402
from custom_ops.lowering import lowering  # noqa: E402
from custom_ops.support import UnsupportedOptionError  # noqa: E402
from pipeline.stages.tf_convert import OnnxGraphModule  # noqa: E402


def reference_outputs(
    inputs: dict[str, np.ndarray | None], attrs: dict, outputs: tuple[str, ...] = OUTPUT_NAMES
) -> dict[str, np.ndarray]:
    """The requested (non-empty) outputs of the numpy reference."""
    kwargs = {k: v for k, v in attrs.items() if k != "hidden_size"}
    results = Reference.run(*(inputs.get(name) for name in INPUT_NAMES), **kwargs)
    return {name: value for name, value in zip(outputs, results) if name}


# --- onnx's official node tests (RNN's are named test_rnn_* and test_simple_rnn_*) ---------


@pytest.mark.parametrize("folder", official_node_tests("test_rnn", "test_simple_rnn"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


def test_onnx_tf_dispatches_to_our_handler() -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset, since in [(7, 7), (13, 7), (14, 14), (17, 14), (21, 14), (22, 22)]:
        dispatched = get_all_backend_handlers({"": opset})[""]["RNN"]
        assert dispatched is RNN, opset
        assert dispatched.SINCE_VERSION == since, opset
        assert hasattr(dispatched, f"version_{since}"), opset


# --- the numpy reference, checked against onnxruntime (layout 0 only there) --------------

ORT_CONFIGS = [
    {"direction": "forward"},
    {"direction": "reverse", "clip": 0.6},
    {"direction": "bidirectional", "activations": ["Relu", "Tanh"]},
    {"direction": "forward", "activations": ["LeakyRelu"], "activation_alpha": [0.3]},
    {
        "direction": "bidirectional",
        "clip": 1.5,
        "activations": ["ScaledTanh", "Affine"],
        "activation_alpha": [0.5, 0.8],
        "activation_beta": [1.3, 0.1],
    },
]


@pytest.mark.parametrize("attrs", ORT_CONFIGS, ids=[f"{k}-{c['direction']}" for k, c in enumerate(ORT_CONFIGS)])
def test_reference_matches_onnxruntime(attrs: dict) -> None:
    """The oracle itself: same semantics as onnxruntime for clip, activations and their
    alpha/beta, ragged sequence_lens and initial states."""
    rng = np.random.default_rng(7)
    steps, batch, features, hidden = 9, 4, 5, 6
    dirs = 2 if attrs["direction"] == "bidirectional" else 1
    inputs = {
        "X": rng.normal(size=(steps, batch, features)),
        "W": rng.normal(0, 0.5, (dirs, hidden, features)),
        "R": rng.normal(0, 0.5, (dirs, hidden, hidden)),
        "B": rng.normal(size=(dirs, 2 * hidden)),
        "sequence_lens": np.array([9, 1, 5, 7], np.int32),
        "initial_h": rng.normal(size=(dirs, batch, hidden)),
    }
    inputs = {k: v if v.dtype == np.int32 else v.astype(np.float32) for k, v in inputs.items()}
    attrs = dict(attrs, hidden_size=hidden)
    model = node_model("RNN", inputs, attrs, opset=14)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    actual = dict(zip(OUTPUT_NAMES, session.run(None, inputs)))
    for name, want in reference_outputs(inputs, attrs).items():
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(actual[name], want, atol=1e-5 * scale, rtol=0, err_msg=name)


# --- seeded random sweep against the numpy reference -------------------------------------

SWEEP_SIZE = 24


def _case(index: int) -> SweepCase:
    return SweepCase.make(index, 1, seed=13000)


def test_sweep_covers_every_option() -> None:
    """Every option of the sweep below occurs both ways, for every direction."""
    cases = [_case(i) for i in range(SWEEP_SIZE)]
    for direction in DIRECTIONS:
        mine = [c for c in cases if c.attrs.get("direction", "forward") == direction]
        for feature, values in sweep_features(mine).items():
            assert any(values) and not all(values), (direction, feature)
    assert {c.opset for c in cases} == {7, 14, 22}
    assert {c.outputs for c in cases} == set(OUTPUT_SUBSETS)
    assert set().union(*(c.attrs.get("activations", []) for c in cases)) == set(ACTIVATIONS)


@pytest.mark.parametrize("index", range(SWEEP_SIZE))
def test_matches_reference(index: int) -> None:
    """float32 within 1e-6 of the float64 reference (relative to the output's magnitude when
    an unbounded activation lets it exceed 1); float64 within 1e-12."""
    case = _case(index)
    expected = reference_outputs(case.inputs, case.attrs, case.outputs)
    model = node_model("RNN", case.inputs, case.attrs, case.outputs, case.opset)
    tolerance = 1e-12 if case.inputs["X"].dtype == np.float64 else 1e-6
    magnitude = max(1.0, max(float(np.abs(v).max()) for v in expected.values()))
    feed = {k: v for k, v in case.inputs.items() if v is not None}
    run_test_case(model, feed, expected, atol=tolerance * magnitude)


@pytest.mark.parametrize(("dtype", "opset", "atol"), [(np.float16, 14, 2e-3), (ml_dtypes.bfloat16, 22, 2e-2)])
def test_half_precision(dtype: type, opset: int, atol: float) -> None:
    """float16 (every version) and bfloat16 (version 22) run in their own precision."""
    rng = np.random.default_rng(10)
    inputs = {
        "X": rng.normal(size=(20, 3, 4)),
        "W": rng.normal(0, 0.5, (2, 6, 4)),
        "R": rng.normal(0, 0.5, (2, 6, 6)),
        "B": rng.normal(0, 0.5, (2, 12)),
        "sequence_lens": np.array([20, 5, 11], np.int32),
    }
    inputs = {k: v if k == "sequence_lens" else v.astype(dtype) for k, v in inputs.items()}
    attrs = {"hidden_size": 6, "direction": "bidirectional", "clip": 2.0}
    expected = reference_outputs(inputs, attrs)
    actual = run_onnx_tf(node_model("RNN", inputs, attrs, opset=opset), inputs)
    for name, want in expected.items():
        assert actual[name].dtype == dtype, name
        np.testing.assert_allclose(actual[name].astype(np.float64), want.astype(np.float64), atol=atol, rtol=0)


_SMALL = {
    "X": np.zeros((2, 1, 3), np.float32),
    "W": np.zeros((1, 2, 3), np.float32),
    "R": np.zeros((1, 2, 2), np.float32),
}


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"activations": ["Gelu"]}, r"ONNX op RNN at node 'rnn': activation 'Gelu' is not supported \(supported: affine"),
        ({"activations": ["Tanh", "Tanh"]}, r"ONNX op RNN at node 'rnn': activations \['Tanh', 'Tanh'\] is not supported \(supported: 1 functions"),
        ({"direction": "sideways"}, r"ONNX op RNN at node 'rnn': direction 'sideways' is not supported \(supported: forward"),
    ],
)
def test_unsupported_options_are_named(attrs: dict, message: str) -> None:
    with pytest.raises(UnsupportedOptionError, match=message):
        run_onnx_tf(node_model("RNN", _SMALL, {"hidden_size": 2, **attrs}), _SMALL)


# --- no state shared between nodes or prepare() calls -------------------------------------


def _random_inputs(rng: np.random.Generator, steps: int, batch: int, features: int, hidden: int) -> dict:
    return {
        "X": rng.normal(size=(steps, batch, features)).astype(np.float32),
        "W": rng.normal(0, 0.5, (1, hidden, features)).astype(np.float32),
        "R": rng.normal(0, 0.5, (1, hidden, hidden)).astype(np.float32),
        "B": rng.normal(0, 0.5, (1, 2 * hidden)).astype(np.float32),
    }


def test_several_rnns_in_one_graph() -> None:
    """Different sizes, and the same size with different weights and activation, in one graph."""
    rng = np.random.default_rng(3)
    sizes = [(5, 7, "Tanh"), (3, 4, "Relu"), (5, 7, "Relu")]  # (input, hidden, activation)
    nodes, graph_inputs, graph_outputs, feed, expected = [], [], [], {}, {}
    for k, (features, hidden, activation) in enumerate(sizes):
        inputs = _random_inputs(rng, 6, 2, features, hidden)
        names = {name: f"{name}{k}" for name in inputs}
        outputs = [f"{name}{k}" for name in OUTPUT_NAMES]
        nodes.append(
            helper.make_node(
                "RNN", list(names.values()), outputs, name=f"rnn{k}", hidden_size=hidden, activations=[activation]
            )
        )
        for name, array in inputs.items():
            graph_inputs.append(helper.make_tensor_value_info(names[name], TensorProto.FLOAT, array.shape))
            feed[names[name]] = array
        graph_outputs += [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * (4 if o == "Y" else 3))
            for o, name in zip(OUTPUT_NAMES, outputs)
        ]
        expected.update(zip(outputs, Reference.run(*inputs.values(), activations=[activation])))
    graph = helper.make_graph(nodes, "three_rnns", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    run_test_case(model, feed, expected)


def test_prepare_twice_in_one_process() -> None:
    """Two models prepared before either runs (onnx-tf traces lazily), then run in turn."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(4)
    first, second = _random_inputs(rng, 5, 3, 4, 6), _random_inputs(rng, 5, 3, 4, 6)
    reps = [prepare(node_model("RNN", inputs, {"hidden_size": 6})) for inputs in (first, second)]
    for rep, inputs in [(reps[1], second), (reps[0], first), (reps[1], second)]:
        actual = rep.run(inputs)
        for name, want in zip(OUTPUT_NAMES, Reference.run(*inputs.values())):
            np.testing.assert_allclose(getattr(actual, name), want, atol=1e-6, rtol=0)


# --- graph structure: one projection matmul, one loop, GPU kernels only ------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_graph_structure(direction: str) -> None:
    """A single while loop whose ops all have GPU kernels; one matmul per direction per step
    and one input-projection matmul before the loop."""
    from onnx_tf.backend import prepare

    dirs = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(5)
    inputs = {
        "X": np.zeros((3, 2, 4), np.float32),
        "W": rng.normal(size=(dirs, 5, 4)).astype(np.float32),
        "R": rng.normal(size=(dirs, 5, 5)).astype(np.float32),
        "sequence_lens": np.array([3, 1], np.int32),
    }
    attrs = {"hidden_size": 5, "direction": direction, "clip": 2.0}
    rep = prepare(node_model("RNN", inputs, attrs))
    graph_def = rep.tf_module.__call__.get_concrete_function(**rep.signatures).graph.as_graph_def()
    cond, body = _loop_functions(graph_def)
    assert [n.op for n in graph_def.node].count("MatMul") == 1
    assert [n.op for n in body.node_def].count("MatMul") == dirs
    assert not {"BatchMatMulV2", "BatchMatMulV3", "PyFunc", "EagerPyFunc"} & {n.op for n in body.node_def}
    missing = [n.op for n in [*cond.node_def, *body.node_def] if not _has_gpu_kernel(n)]
    assert not missing, f"no GPU kernel for {missing}"


# --- PyTorch: exported nn.RNN models (tanh and relu) ---------------------------------------

TORCH_CASES = [
    # nonlinearity, layers, bidirectional, batch_first, initial state, input, hidden, (run time, run batch)
    ("tanh", 1, False, False, False, 3, 1, (1, 3)),
    ("relu", 2, True, True, True, 16, 32, (40, 3)),
    ("tanh", 3, False, True, True, 7, 20, (120, 1)),
    ("relu", 1, True, False, False, 5, 9, (17, 4)),
    ("tanh", 3, True, False, True, 6, 12, (30, 2)),
    ("relu", 3, False, False, False, 4, 8, (25, 2)),
]


@pytest.mark.parametrize(
    ("nonlinearity", "layers", "bidirectional", "batch_first", "with_state", "features", "hidden", "run_shape"),
    TORCH_CASES,
)
def test_torch_export(
    nonlinearity: str,
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    with_state: bool,
    features: int,
    hidden: int,
    run_shape: tuple[int, int],
) -> None:
    """Exported at T=5, B=2 (opset 17, legacy exporter) with dynamic axes; run at another T and
    B; torch to 1e-5."""
    torch.manual_seed(layers * 100 + hidden)
    layer = torch.nn.RNN(
        features, hidden, layers, nonlinearity=nonlinearity, batch_first=batch_first, bidirectional=bidirectional
    )
    module = TorchRecurrent(layer).eval()
    dirs = 2 if bidirectional else 1

    def arguments(steps: int, batch: int) -> tuple[torch.Tensor, ...]:
        x = torch.randn((batch, steps, features) if batch_first else (steps, batch, features))
        return (x, torch.randn(layers * dirs, batch, hidden)) if with_state else (x,)

    names = ["x", "h0"][: 2 if with_state else 1]
    model = export_torch(module, arguments(5, 2), names, batch_first)
    assert sum(node.op_type == "RNN" for node in model.graph.node) == layers
    args = arguments(*run_shape)
    with torch.no_grad():
        expected = dict(zip(["output", "h_n"], (t.numpy() for t in module(*args))))
    scale = max(1.0, max(float(np.abs(v).max()) for v in expected.values()))  # relu is unbounded
    run_test_case(model, dict(zip(names, (a.numpy() for a in args))), expected, atol=1e-5 * scale)


# --- XLA and LiteRT lowerings: a 2-layer bidirectional RNN --------------------------------

FEATURES, HIDDEN = 4, 5


def two_layer_model(layers: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    """X [T, N, F], initial_h [2, N, H] of layer 1 -> Y [T, 2, N, H] and Y_h of layer 2 (relu);
    layer 2 reads layer 1's Y with both directions' units side by side."""
    initializers = [
        numpy_helper.from_array(value, f"{name}{k}") for k, layer in enumerate(layers) for name, value in layer.items()
    ]
    initializers.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape"))
    nodes = [
        helper.make_node("RNN", ["X", "W0", "R0", "B0", "", "initial_h"], ["Y0"], direction="bidirectional", hidden_size=HIDDEN),
        helper.make_node("Transpose", ["Y0"], ["Y0_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["Y0_t", "shape"], ["X1"]),
        helper.make_node(
            "RNN", ["X1", "W1", "R1", "B1"], ["Y", "Y_h"], direction="bidirectional", hidden_size=HIDDEN,
            activations=["Relu", "Relu"],
        ),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "rnn2",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", FEATURES]),
            helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [2, "N", HIDDEN]),
        ],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 2, "N", HIDDEN]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [2, "N", HIDDEN]),
        ],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def two_layers() -> tuple[onnx.ModelProto, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(11)
    layers = [
        {
            "W": rng.normal(0, 0.4, (2, HIDDEN, features)).astype(np.float32),
            "R": rng.normal(0, 0.4, (2, HIDDEN, HIDDEN)).astype(np.float32),
            "B": rng.normal(0, 0.4, (2, 2 * HIDDEN)).astype(np.float32),
        }
        for features in (FEATURES, 2 * HIDDEN)
    ]
    return two_layer_model(layers), layers


def two_layer_reference(layers: list[dict[str, np.ndarray]], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    y0, _ = Reference.run(inputs["X"], **layers[0], initial_h=inputs["initial_h"], direction="bidirectional")
    steps, _, batch, _ = y0.shape
    x1 = y0.transpose(0, 2, 1, 3).reshape(steps, batch, 2 * HIDDEN)
    y, y_h = Reference.run(x1, **layers[1], direction="bidirectional", activations=["Relu", "Relu"])
    return {"Y": y, "Y_h": y_h}


def _two_layer_inputs(batch: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(steps, batch, FEATURES)).astype(np.float32),
        "initial_h": rng.normal(size=(2, batch, HIDDEN)).astype(np.float32),
    }


def test_xla_lowering_compiles_and_matches_reference(two_layers) -> None:
    model, layers = two_layers
    module = OnnxGraphModule(model)
    with lowering("xla"):
        compiled = tf.function(module.serving_function(), jit_compile=True)
    for batch, steps in [(1, 1), (3, 11), (2, 40)]:
        inputs = _two_layer_inputs(batch, steps, seed=batch * 100 + steps)
        outputs = compiled(**{k: tf.constant(v) for k, v in inputs.items()})
        for name, want in two_layer_reference(layers, inputs).items():
            np.testing.assert_allclose(outputs[name].numpy(), want, atol=1e-5, rtol=0, err_msg=name)


def test_tflite_lowering_converts_to_builtins_with_dynamic_batch_and_time(two_layers) -> None:
    """Builtin ops only, one model for every batch and length: resized to B=3, T=11 it matches
    the reference."""
    model, layers = two_layers
    module = OnnxGraphModule(model)
    with lowering("tflite"):
        function = module.serving_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    (signature,) = interpreter._get_full_signature_list().values()  # tensor index by ONNX name
    inputs = _two_layer_inputs(batch=3, steps=11, seed=5)
    for name, index in signature["inputs"].items():
        interpreter.resize_tensor_input(index, inputs[name].shape)
    interpreter.allocate_tensors()
    for name, index in signature["inputs"].items():
        interpreter.set_tensor(index, inputs[name])
    interpreter.invoke()
    for name, want in two_layer_reference(layers, inputs).items():
        got = interpreter.get_tensor(signature["outputs"][name])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=name)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "WHILE" in ops and not any(op.startswith("Flex") for op in ops), ops
