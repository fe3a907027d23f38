"""The GRU handler (``custom_ops/handlers/gru.py``) through onnx-tf, against onnx's node tests,
the independent numpy reference (itself checked against onnxruntime), PyTorch (exported
``nn.GRU`` models, and gradients), and its XLA and LiteRT lowerings."""

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
from reference.gru import GRU as Reference
from test_lstm_handler import _has_gpu_kernel, _loop_functions

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.gru import GRU  # noqa: E402
from custom_ops.lowering import lowering  # noqa: E402
from custom_ops.support import UnsupportedOptionError  # noqa: E402
from pipeline.stages.tf_convert import OnnxGraphModule, run_saved_model, write_saved_model  # noqa: E402

GATES = 3


def reference_outputs(
    inputs: dict[str, np.ndarray | None], attrs: dict, outputs: tuple[str, ...] = OUTPUT_NAMES
) -> dict[str, np.ndarray]:
    """The requested (non-empty) outputs of the numpy reference."""
    kwargs = {k: v for k, v in attrs.items() if k != "hidden_size"}
    results = Reference.run(*(inputs.get(name) for name in INPUT_NAMES), **kwargs)
    return {name: value for name, value in zip(outputs, results) if name}


# --- onnx's official node tests ------------------------------------------------------------


@pytest.mark.parametrize("folder", official_node_tests("test_gru"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


def test_onnx_tf_dispatches_to_our_handler() -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset, since in [(7, 7), (13, 7), (14, 14), (17, 14), (21, 14), (22, 22)]:
        dispatched = get_all_backend_handlers({"": opset})[""]["GRU"]
        assert dispatched is GRU, opset
        assert dispatched.SINCE_VERSION == since, opset
        assert hasattr(dispatched, f"version_{since}"), opset


# --- the numpy reference, checked against onnxruntime (layout 0 only there) --------------

ORT_CONFIGS = [
    {"direction": "forward"},
    {"direction": "forward", "linear_before_reset": 1},
    {"direction": "reverse", "clip": 0.6},
    {"direction": "bidirectional", "linear_before_reset": 1, "clip": 1.5},
    {
        "direction": "forward",
        "activations": ["HardSigmoid", "LeakyRelu"],
        "activation_alpha": [0.3, 0.1],
        "activation_beta": [0.4],
    },
    {
        "direction": "bidirectional",
        "linear_before_reset": 1,
        "activations": ["Softsign", "Affine", "Sigmoid", "ScaledTanh"],
        "activation_alpha": [0.5, 0.8],
        "activation_beta": [0.1, 1.3],
    },
]


@pytest.mark.parametrize("attrs", ORT_CONFIGS, ids=[f"{k}-{c['direction']}" for k, c in enumerate(ORT_CONFIGS)])
def test_reference_matches_onnxruntime(attrs: dict) -> None:
    """The oracle itself: same semantics as onnxruntime for both reset variants, clip,
    activations and their alpha/beta, ragged sequence_lens and initial states."""
    rng = np.random.default_rng(7)
    steps, batch, features, hidden = 9, 4, 5, 6
    dirs = 2 if attrs["direction"] == "bidirectional" else 1
    inputs = {
        "X": rng.normal(size=(steps, batch, features)),
        "W": rng.normal(size=(dirs, GATES * hidden, features)),
        "R": rng.normal(size=(dirs, GATES * hidden, hidden)),
        "B": rng.normal(size=(dirs, 2 * GATES * hidden)),
        "sequence_lens": np.array([9, 1, 5, 7], np.int32),
        "initial_h": rng.normal(size=(dirs, batch, hidden)),
    }
    inputs = {k: v if v.dtype == np.int32 else v.astype(np.float32) for k, v in inputs.items()}
    attrs = dict(attrs, hidden_size=hidden)
    model = node_model("GRU", inputs, attrs, opset=14)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    actual = dict(zip(OUTPUT_NAMES, session.run(None, inputs)))
    for name, want in reference_outputs(inputs, attrs).items():
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(actual[name], want, atol=1e-5 * scale, rtol=0, err_msg=name)


# --- seeded random sweep against the numpy reference -------------------------------------

SWEEP_SIZE = 24


def _case(index: int) -> SweepCase:
    return SweepCase.make(index, GATES, seed=8000)


def test_sweep_covers_every_option() -> None:
    """Every option of the sweep below occurs both ways, for every direction."""
    cases = [_case(i) for i in range(SWEEP_SIZE)]
    for direction in DIRECTIONS:
        mine = [c for c in cases if c.attrs.get("direction", "forward") == direction]
        features = sweep_features(mine)
        features["linear_before_reset"] = [c.attrs.get("linear_before_reset", 0) == 1 for c in mine]
        for feature, values in features.items():
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
    model = node_model("GRU", case.inputs, case.attrs, case.outputs, case.opset)
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
        "W": rng.normal(0, 0.5, (2, 18, 4)),
        "R": rng.normal(0, 0.5, (2, 18, 6)),
        "B": rng.normal(0, 0.5, (2, 36)),
        "sequence_lens": np.array([20, 5, 11], np.int32),
    }
    inputs = {k: v if k == "sequence_lens" else v.astype(dtype) for k, v in inputs.items()}
    attrs = {"hidden_size": 6, "direction": "bidirectional", "clip": 2.0, "linear_before_reset": 1}
    expected = reference_outputs(inputs, attrs)
    actual = run_onnx_tf(node_model("GRU", inputs, attrs, opset=opset), inputs)
    for name, want in expected.items():
        assert actual[name].dtype == dtype, name
        np.testing.assert_allclose(actual[name].astype(np.float64), want.astype(np.float64), atol=atol, rtol=0)


_SMALL = {
    "X": np.zeros((2, 1, 3), np.float32),
    "W": np.zeros((1, 6, 3), np.float32),
    "R": np.zeros((1, 6, 2), np.float32),
}


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"activations": ["Sigmoid", "Gelu"]}, r"ONNX op GRU at node 'gru': activation 'Gelu' is not supported \(supported: affine"),
        ({"activations": ["Sigmoid"]}, r"ONNX op GRU at node 'gru': activations \['Sigmoid'\] is not supported \(supported: 2 functions"),
        ({"linear_before_reset": 2}, r"ONNX op GRU at node 'gru': linear_before_reset 2 is not supported \(supported: 0, 1\)"),
        ({"direction": "sideways"}, r"ONNX op GRU at node 'gru': direction 'sideways' is not supported \(supported: forward"),
    ],
)
def test_unsupported_options_are_named(attrs: dict, message: str) -> None:
    with pytest.raises(UnsupportedOptionError, match=message):
        run_onnx_tf(node_model("GRU", _SMALL, {"hidden_size": 2, **attrs}), _SMALL)


# --- no state shared between nodes or prepare() calls -------------------------------------


def _random_inputs(rng: np.random.Generator, steps: int, batch: int, features: int, hidden: int) -> dict:
    return {
        "X": rng.normal(size=(steps, batch, features)).astype(np.float32),
        "W": rng.normal(0, 0.5, (1, GATES * hidden, features)).astype(np.float32),
        "R": rng.normal(0, 0.5, (1, GATES * hidden, hidden)).astype(np.float32),
        "B": rng.normal(0, 0.5, (1, 2 * GATES * hidden)).astype(np.float32),
    }


def test_several_grus_in_one_graph() -> None:
    """Different sizes, and the same size with different weights and reset variant, in one
    graph."""
    rng = np.random.default_rng(3)
    sizes = [(5, 7, 1), (3, 4, 0), (5, 7, 0)]  # (input, hidden, linear_before_reset)
    nodes, graph_inputs, graph_outputs, feed, expected = [], [], [], {}, {}
    for k, (features, hidden, lbr) in enumerate(sizes):
        inputs = _random_inputs(rng, 6, 2, features, hidden)
        names = {name: f"{name}{k}" for name in inputs}
        outputs = [f"{name}{k}" for name in OUTPUT_NAMES]
        nodes.append(
            helper.make_node(
                "GRU", list(names.values()), outputs, name=f"gru{k}", hidden_size=hidden, linear_before_reset=lbr
            )
        )
        for name, array in inputs.items():
            graph_inputs.append(helper.make_tensor_value_info(names[name], TensorProto.FLOAT, array.shape))
            feed[names[name]] = array
        graph_outputs += [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * (4 if o == "Y" else 3))
            for o, name in zip(OUTPUT_NAMES, outputs)
        ]
        expected.update(zip(outputs, Reference.run(*inputs.values(), linear_before_reset=lbr)))
    graph = helper.make_graph(nodes, "three_grus", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    run_test_case(model, feed, expected)


def test_prepare_twice_in_one_process() -> None:
    """Two models prepared before either runs (onnx-tf traces lazily), then run in turn."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(4)
    first, second = _random_inputs(rng, 5, 3, 4, 6), _random_inputs(rng, 5, 3, 4, 6)
    reps = [prepare(node_model("GRU", inputs, {"hidden_size": 6})) for inputs in (first, second)]
    for rep, inputs in [(reps[1], second), (reps[0], first), (reps[1], second)]:
        actual = rep.run(inputs)
        for name, want in zip(OUTPUT_NAMES, Reference.run(*inputs.values())):
            np.testing.assert_allclose(getattr(actual, name), want, atol=1e-6, rtol=0)


# --- graph structure: one projection matmul, one loop, GPU kernels only ------------------


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_graph_structure(direction: str, linear_before_reset: int) -> None:
    """A single while loop whose ops all have GPU kernels; one input-projection matmul before
    it; per step and direction one recurrent matmul (linear_before_reset=1) or two (0: the
    reset gate multiplies h before R_h)."""
    from onnx_tf.backend import prepare

    dirs = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(5)
    inputs = {
        "X": np.zeros((3, 2, 4), np.float32),
        "W": rng.normal(size=(dirs, 15, 4)).astype(np.float32),
        "R": rng.normal(size=(dirs, 15, 5)).astype(np.float32),
        "B": rng.normal(size=(dirs, 30)).astype(np.float32),
        "sequence_lens": np.array([3, 1], np.int32),
    }
    attrs = {"hidden_size": 5, "direction": direction, "clip": 2.0, "linear_before_reset": linear_before_reset}
    rep = prepare(node_model("GRU", inputs, attrs))
    graph_def = rep.tf_module.__call__.get_concrete_function(**rep.signatures).graph.as_graph_def()
    cond, body = _loop_functions(graph_def)
    assert [n.op for n in graph_def.node].count("MatMul") == 1
    assert [n.op for n in body.node_def].count("MatMul") == dirs * (2 - linear_before_reset)
    assert not {"BatchMatMulV2", "BatchMatMulV3", "PyFunc", "EagerPyFunc"} & {n.op for n in body.node_def}
    missing = [n.op for n in [*cond.node_def, *body.node_def] if not _has_gpu_kernel(n)]
    assert not missing, f"no GPU kernel for {missing}"


# --- PyTorch: exported nn.GRU models, and gradients ---------------------------------------

TORCH_CASES = [
    # layers, bidirectional, batch_first, initial state, input, hidden, (run time, run batch)
    (1, False, False, False, 3, 1, (1, 3)),
    (2, True, True, True, 16, 32, (40, 3)),
    (3, False, True, True, 7, 20, (120, 1)),
    (1, True, False, True, 5, 9, (17, 4)),
    (3, True, False, False, 6, 12, (30, 2)),
]


@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "with_state", "features", "hidden", "run_shape"), TORCH_CASES
)
def test_torch_export(
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    with_state: bool,
    features: int,
    hidden: int,
    run_shape: tuple[int, int],
) -> None:
    """Exported at T=5, B=2 (opset 17, legacy exporter: linear_before_reset=1) with dynamic
    axes; run at another T and B; torch to 1e-5."""
    torch.manual_seed(layers * 100 + hidden)
    layer = torch.nn.GRU(features, hidden, layers, batch_first=batch_first, bidirectional=bidirectional)
    module = TorchRecurrent(layer).eval()
    dirs = 2 if bidirectional else 1

    def arguments(steps: int, batch: int) -> tuple[torch.Tensor, ...]:
        x = torch.randn((batch, steps, features) if batch_first else (steps, batch, features))
        return (x, torch.randn(layers * dirs, batch, hidden)) if with_state else (x,)

    names = ["x", "h0"][: 2 if with_state else 1]
    model = export_torch(module, arguments(5, 2), names, batch_first)
    grus = [node for node in model.graph.node if node.op_type == "GRU"]
    assert len(grus) == layers
    assert all(helper.get_attribute_value(a) == 1 for n in grus for a in n.attribute if a.name == "linear_before_reset")
    args = arguments(*run_shape)
    with torch.no_grad():
        expected = dict(zip(["output", "h_n"], (t.numpy() for t in module(*args))))
    run_test_case(model, dict(zip(names, (a.numpy() for a in args))), expected, atol=1e-5)


class _GruEncoder(torch.nn.Module):
    """A 2-layer bidirectional ``nn.GRU`` and a Linear on its output."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(20, 24, 2, batch_first=True, bidirectional=True)
        self.linear = torch.nn.Linear(48, 8)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.linear(self.gru(mel)[0])


def test_saved_model_of_exported_gru_encoder(tmp_path: Path) -> None:
    """The ``convert`` path (graph module -> SavedModel -> loaded and run) on a torch-exported
    GRU encoder with dynamic batch and time: torch to 1e-5 at two other shapes."""
    torch.manual_seed(12)
    module = _GruEncoder().eval()
    model = export_torch(module, (torch.randn(2, 5, 20),), ["x"], batch_first=True, output_names=["output"])
    write_saved_model(OnnxGraphModule(model), tmp_path / "saved_model")
    for batch, steps in [(1, 3), (3, 60)]:
        x = torch.randn(batch, steps, 20)
        with torch.no_grad():
            want = module(x).numpy()
        got = run_saved_model(tmp_path / "saved_model", {"x": x.numpy()})["output"]
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def _onnx_gates(weight: torch.Tensor) -> np.ndarray:
    """PyTorch's gate blocks ``r, z, n`` -> ONNX's ``z, r, h``."""
    r, z, n = np.split(weight.detach().numpy(), 3)
    return np.concatenate([z, r, n])


def test_gradients_match_torch_autograd() -> None:
    """d(loss)/d(X, W, R, B, initial_h) of a bidirectional GRU (linear_before_reset=1, as
    torch computes it), with both outputs in the loss, against torch's autograd."""
    from onnx_tf.backend import prepare

    torch.manual_seed(8)
    steps, batch, features, hidden = 12, 3, 5, 16
    layer = torch.nn.GRU(features, hidden, bidirectional=True)
    x = torch.randn(steps, batch, features, requires_grad=True)
    h0 = torch.randn(2, batch, hidden, requires_grad=True)
    g_y, g_h = torch.randn(steps, batch, 2 * hidden), torch.randn(2, batch, hidden)
    output, h_n = layer(x, h0)
    ((output * g_y).sum() + (h_n * g_h).sum()).backward()

    suffixes = ["_l0", "_l0_reverse"]

    def onnx_layout(key: str, grad: bool) -> np.ndarray:
        params = [getattr(layer, f"{key}{s}") for s in suffixes]
        return np.stack([_onnx_gates(p.grad if grad else p) for p in params])

    def bias(grad: bool) -> np.ndarray:
        return np.concatenate([onnx_layout("bias_ih", grad), onnx_layout("bias_hh", grad)], axis=1)

    inputs = {
        "X": x.detach().numpy(),
        "W": onnx_layout("weight_ih", False),
        "R": onnx_layout("weight_hh", False),
        "B": bias(False),
        "initial_h": h0.detach().numpy(),
    }
    expected_grads = {
        "X": x.grad.numpy(),
        "W": onnx_layout("weight_ih", True),
        "R": onnx_layout("weight_hh", True),
        "B": bias(True),
        "initial_h": h0.grad.numpy(),
    }
    attrs = {"hidden_size": hidden, "direction": "bidirectional", "linear_before_reset": 1}
    rep = prepare(node_model("GRU", inputs, attrs))
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    g_y_onnx = g_y.numpy().reshape(steps, batch, 2, hidden).transpose(0, 2, 1, 3)  # [T, D, B, H]
    with tf.GradientTape() as tape:
        tape.watch(list(tensors.values()))
        out = rep.tf_module(**tensors)
        loss = tf.reduce_sum(out["Y"] * g_y_onnx) + tf.reduce_sum(out["Y_h"] * g_h.numpy())
    grads = tape.gradient(loss, tensors)
    for name, want in expected_grads.items():
        assert grads[name] is not None, name
        np.testing.assert_allclose(grads[name].numpy(), want, atol=1e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gradients_match_reference_finite_differences(linear_before_reset: int) -> None:
    """float64, bidirectional, layout 1, every optional input (ragged sequence_lens), clip,
    non-default activations: the handler's gradient along a random direction equals a central
    finite difference of the numpy reference."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(9)
    steps, batch, features, hidden = 7, 3, 4, 5
    inputs = {
        "X": rng.normal(size=(batch, steps, features)),
        "W": rng.normal(0, 0.5, (2, GATES * hidden, features)),
        "R": rng.normal(0, 0.5, (2, GATES * hidden, hidden)),
        "B": rng.normal(0, 0.5, (2, 2 * GATES * hidden)),
        "sequence_lens": np.array([7, 2, 5], np.int32),
        "initial_h": rng.normal(size=(batch, 2, hidden)),
    }
    attrs = {
        "hidden_size": hidden, "direction": "bidirectional", "layout": 1, "clip": 2.5,
        "linear_before_reset": linear_before_reset, "activations": ["Sigmoid", "Tanh", "HardSigmoid", "Softsign"],
    }  # fmt: skip
    upstream = {name: rng.normal(size=value.shape) for name, value in reference_outputs(inputs, attrs).items()}

    def reference_loss(values: dict) -> float:
        outputs = reference_outputs(values, attrs)
        return sum(float(np.sum(outputs[name] * upstream[name])) for name in OUTPUT_NAMES)

    rep = prepare(node_model("GRU", inputs, attrs))
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    with tf.GradientTape() as tape:
        tape.watch([t for t in tensors.values() if t.dtype == tf.float64])
        out = rep.tf_module(**tensors)
        loss = sum(tf.reduce_sum(out[name] * upstream[name]) for name in OUTPUT_NAMES)
    grads = tape.gradient(loss, tensors)
    eps = 1e-6
    for name, value in inputs.items():
        if value.dtype != np.float64:
            continue
        direction = rng.normal(size=value.shape)
        plus = reference_loss({**inputs, name: value + eps * direction})
        minus = reference_loss({**inputs, name: value - eps * direction})
        numeric = (plus - minus) / (2 * eps)
        analytic = float(np.sum(grads[name].numpy() * direction))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8), name


# --- XLA and LiteRT lowerings: a 2-layer bidirectional GRU --------------------------------

FEATURES, HIDDEN = 4, 5


def two_layer_model(layers: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    """X [T, N, F], initial_h [2, N, H] of layer 1 -> Y [T, 2, N, H] and Y_h of layer 2;
    layer 2 reads layer 1's Y with both directions' units side by side (as torch's
    nn.GRU(num_layers=2, bidirectional=True) exports it)."""
    initializers = [
        numpy_helper.from_array(value, f"{name}{k}") for k, layer in enumerate(layers) for name, value in layer.items()
    ]
    initializers.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape"))
    nodes = [
        helper.make_node(
            "GRU", ["X", "W0", "R0", "B0", "", "initial_h"], ["Y0"],
            direction="bidirectional", hidden_size=HIDDEN, linear_before_reset=1,
        ),
        helper.make_node("Transpose", ["Y0"], ["Y0_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["Y0_t", "shape"], ["X1"]),
        helper.make_node("GRU", ["X1", "W1", "R1", "B1"], ["Y", "Y_h"], direction="bidirectional", hidden_size=HIDDEN),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "gru2",
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
            "W": rng.normal(0, 0.5, (2, GATES * HIDDEN, features)).astype(np.float32),
            "R": rng.normal(0, 0.5, (2, GATES * HIDDEN, HIDDEN)).astype(np.float32),
            "B": rng.normal(0, 0.5, (2, 2 * GATES * HIDDEN)).astype(np.float32),
        }
        for features in (FEATURES, 2 * HIDDEN)
    ]
    return two_layer_model(layers), layers


def two_layer_reference(layers: list[dict[str, np.ndarray]], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    y0, _ = Reference.run(
        inputs["X"], **layers[0], initial_h=inputs["initial_h"], direction="bidirectional", linear_before_reset=1
    )
    steps, _, batch, _ = y0.shape
    x1 = y0.transpose(0, 2, 1, 3).reshape(steps, batch, 2 * HIDDEN)
    y, y_h = Reference.run(x1, **layers[1], direction="bidirectional")
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
