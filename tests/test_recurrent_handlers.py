"""The LSTM, GRU and RNN handlers (``custom_ops/handlers/{lstm,gru,rnn}.py``) through onnx-tf,
one table line per case: against onnx's node tests, each op's independent numpy reference
(itself checked against onnxruntime), PyTorch (exported models, and gradients), and a 2-layer
graph traced for every lowering target (graph, XLA, LiteRT)."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
import torch
from onnx import helper
from onnx_tf_harness import lower, official_node_tests, run_node_test, run_onnx_tf, run_test_case
from recurrent_models import (
    ACTIVATIONS,
    DIRECTIONS,
    OPS,
    TORCH_INPUTS,
    TORCH_OUTPUTS,
    Node,
    SweepCase,
    TorchRecurrent,
    export_torch,
    node_model,
    nodes_model,
    onnx_gates,
    random_inputs,
    reference_outputs,
    sweep_features,
    two_layer_model,
    two_layer_reference,
)

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.gru import GRU  # noqa: E402
from custom_ops.handlers.lstm import LSTM  # noqa: E402
from custom_ops.handlers.rnn import RNN  # noqa: E402
from custom_ops.lowering import TARGETS  # noqa: E402
from custom_ops.support import UnsupportedOptionError  # noqa: E402

HANDLERS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
WEIGHTS = ("W", "R", "B")


def _ids(cases: list[tuple]) -> list[str]:
    return [f"{case[0]}-{k}" for k, case in enumerate(cases)]


# --- onnx's official node tests (RNN's are named test_rnn_* and test_simple_rnn_*) ---------

NODE_TESTS = official_node_tests("test_lstm", "test_gru", "test_rnn", "test_simple_rnn")


@pytest.mark.parametrize("folder", NODE_TESTS, ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    run_node_test(folder)


@pytest.mark.parametrize("op", OPS)
def test_onnx_tf_dispatches_to_our_handler(op: str) -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset, since in [(7, 7), (13, 7), (14, 14), (17, 14), (21, 14), (22, 22)]:
        dispatched = get_all_backend_handlers({"": opset})[""][op]
        assert dispatched is HANDLERS[op], opset
        assert dispatched.SINCE_VERSION == since, opset
        assert hasattr(dispatched, f"version_{since}"), opset


# --- each numpy reference, checked against onnxruntime (layout 0 only there) --------------

ORT_CASES = [
    ("LSTM", {"direction": "forward"}),
    ("LSTM", {"direction": "reverse", "clip": 0.6}),
    ("LSTM", {"direction": "bidirectional", "input_forget": 1}),
    ("LSTM", {"direction": "bidirectional", "clip": 1.5, "input_forget": 1}),
    ("LSTM", {"direction": "forward", "activations": ["HardSigmoid", "LeakyRelu", "Elu"]}),
    ("LSTM", {"direction": "forward", "activations": ["HardSigmoid", "LeakyRelu", "Elu"], "activation_alpha": [0.3, 0.1, 0.7],
              "activation_beta": [0.4]}),
    ("LSTM", {"direction": "reverse", "activations": ["Sigmoid", "Affine", "ScaledTanh"], "activation_alpha": [0.5, 0.8],
              "activation_beta": [0.1, 1.3]}),
    ("LSTM", {"direction": "bidirectional", "activations": ["Softsign", "Softplus", "Relu", "HardSigmoid", "ThresholdedRelu", "Tanh"],
              "activation_alpha": [0.3, 0.2], "activation_beta": [0.6]}),
    ("GRU", {"direction": "forward"}),
    ("GRU", {"direction": "forward", "linear_before_reset": 1}),
    ("GRU", {"direction": "reverse", "clip": 0.6}),
    ("GRU", {"direction": "bidirectional", "linear_before_reset": 1, "clip": 1.5}),
    ("GRU", {"direction": "forward", "activations": ["HardSigmoid", "LeakyRelu"], "activation_alpha": [0.3, 0.1], "activation_beta": [0.4]}),
    ("GRU", {"direction": "bidirectional", "linear_before_reset": 1, "activations": ["Softsign", "Affine", "Sigmoid", "ScaledTanh"],
             "activation_alpha": [0.5, 0.8], "activation_beta": [0.1, 1.3]}),
    ("RNN", {"direction": "forward"}),
    ("RNN", {"direction": "reverse", "clip": 0.6}),
    ("RNN", {"direction": "bidirectional", "activations": ["Relu", "Tanh"]}),
    ("RNN", {"direction": "forward", "activations": ["LeakyRelu"], "activation_alpha": [0.3]}),
    ("RNN", {"direction": "bidirectional", "clip": 1.5, "activations": ["ScaledTanh", "Affine"], "activation_alpha": [0.5, 0.8],
             "activation_beta": [1.3, 0.1]}),
]  # fmt: skip


@pytest.mark.parametrize(("op", "attrs"), ORT_CASES, ids=_ids(ORT_CASES))
def test_reference_matches_onnxruntime(op: str, attrs: dict) -> None:
    """The oracle itself: same semantics as onnxruntime for clip, the op's own flag
    (input_forget, linear_before_reset), activations and their alpha/beta, ragged
    sequence_lens, peepholes and initial states."""
    spec = OPS[op]
    rng = np.random.default_rng(7)
    steps, batch, features, hidden = 9, 4, 5, 6
    dirs = 2 if attrs["direction"] == "bidirectional" else 1
    inputs = random_inputs(spec, rng, spec.inputs, steps, batch, features, hidden, dirs)
    inputs["sequence_lens"] = np.array([9, 1, 5, 7], np.int32)
    attrs = dict(attrs, hidden_size=hidden)
    model = node_model(spec, inputs, attrs, opset=14)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    actual = dict(zip(spec.outputs, session.run(None, inputs)))
    for name, want in reference_outputs(spec, inputs, attrs).items():
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(actual[name], want, atol=1e-5 * scale, rtol=0, err_msg=name)


# --- a seeded random sweep of every option against the numpy reference ------------------


@pytest.mark.parametrize("op", OPS)
def test_sweep_covers_every_option(op: str) -> None:
    """Every option of the sweep below occurs both ways, for every direction."""
    spec = OPS[op]
    cases = [SweepCase.make(spec, i) for i in range(spec.sweep.size)]
    for direction in DIRECTIONS:
        mine = [c for c in cases if c.attrs.get("direction", "forward") == direction]
        for feature, values in sweep_features(spec, mine).items():
            assert any(values) and not all(values), (direction, feature)
    assert {c.opset for c in cases} == {7, 14, 22}
    assert {c.outputs for c in cases} == set(spec.output_subsets())
    assert set().union(*(c.attrs.get("activations", []) for c in cases)) == set(ACTIVATIONS)


SWEEP = [(op, index) for op, spec in OPS.items() for index in range(spec.sweep.size)]


@pytest.mark.parametrize(("op", "index"), SWEEP, ids=[f"{op}-{index}" for op, index in SWEEP])
def test_matches_reference(op: str, index: int) -> None:
    """float32 within 1e-6 of the float64 reference (relative to the output's magnitude when
    an unbounded activation lets it exceed 1); float64 within 1e-12."""
    spec = OPS[op]
    case = SweepCase.make(spec, index)
    expected = reference_outputs(spec, case.inputs, case.attrs, case.outputs)
    model = node_model(spec, case.inputs, case.attrs, case.outputs, case.opset)
    tolerance = 1e-12 if case.inputs["X"].dtype == np.float64 else 1e-6
    magnitude = max(1.0, max(float(np.abs(v).max()) for v in expected.values()))
    feed = {k: v for k, v in case.inputs.items() if v is not None}
    run_test_case(model, feed, expected, atol=tolerance * magnitude)


HALF_CASES = [
    # op, dtype, opset, atol, attributes besides hidden_size 6, bidirectional and clip 2
    ("LSTM", np.float16, 14, 2e-3, {}),
    ("LSTM", ml_dtypes.bfloat16, 22, 2e-2, {}),
    ("GRU", np.float16, 14, 2e-3, {"linear_before_reset": 1}),
    ("GRU", ml_dtypes.bfloat16, 22, 2e-2, {"linear_before_reset": 1}),
    ("RNN", np.float16, 14, 2e-3, {}),
    ("RNN", ml_dtypes.bfloat16, 22, 2e-2, {}),
]


@pytest.mark.parametrize(("op", "dtype", "opset", "atol", "attrs"), HALF_CASES, ids=_ids(HALF_CASES))
def test_half_precision(op: str, dtype: type, opset: int, atol: float, attrs: dict) -> None:
    """float16 (every version) and bfloat16 (version 22) run in their own precision."""
    spec = OPS[op]
    inputs = random_inputs(spec, np.random.default_rng(10), ("X", *WEIGHTS, "P"), 20, 3, 4, 6, dirs=2, dtype=dtype)
    inputs["sequence_lens"] = np.array([20, 5, 11], np.int32)
    attrs = {"hidden_size": 6, "direction": "bidirectional", "clip": 2.0, **attrs}
    expected = reference_outputs(spec, inputs, attrs)
    actual = run_onnx_tf(node_model(spec, inputs, attrs, opset=opset), inputs)
    for name, want in expected.items():
        assert actual[name].dtype == dtype, name
        np.testing.assert_allclose(actual[name].astype(np.float64), want.astype(np.float64), atol=atol, rtol=0, err_msg=name)


UNSUPPORTED_CASES = [
    ("LSTM", {"activations": ["Sigmoid", "Gelu", "Tanh"]}, r"ONNX op LSTM at node 'lstm': activation 'Gelu' is not supported \(supported: affine"),
    ("LSTM", {"activations": ["Sigmoid"]}, r"ONNX op LSTM at node 'lstm': activations \['Sigmoid'\] is not supported \(supported: 3 functions"),
    ("LSTM", {"direction": "sideways"}, r"ONNX op LSTM at node 'lstm': direction 'sideways' is not supported \(supported: forward"),
    ("GRU", {"activations": ["Sigmoid", "Gelu"]}, r"ONNX op GRU at node 'gru': activation 'Gelu' is not supported \(supported: affine"),
    ("GRU", {"activations": ["Sigmoid"]}, r"ONNX op GRU at node 'gru': activations \['Sigmoid'\] is not supported \(supported: 2 functions"),
    ("GRU", {"linear_before_reset": 2}, r"ONNX op GRU at node 'gru': linear_before_reset 2 is not supported \(supported: 0, 1\)"),
    ("GRU", {"direction": "sideways"}, r"ONNX op GRU at node 'gru': direction 'sideways' is not supported \(supported: forward"),
    ("RNN", {"activations": ["Gelu"]}, r"ONNX op RNN at node 'rnn': activation 'Gelu' is not supported \(supported: affine"),
    ("RNN", {"activations": ["Tanh", "Tanh"]}, r"ONNX op RNN at node 'rnn': activations \['Tanh', 'Tanh'\] is not supported \(supported: 1 fun"),
    ("RNN", {"direction": "sideways"}, r"ONNX op RNN at node 'rnn': direction 'sideways' is not supported \(supported: forward"),
]  # fmt: skip


@pytest.mark.parametrize(("op", "attrs", "message"), UNSUPPORTED_CASES, ids=_ids(UNSUPPORTED_CASES))
def test_unsupported_options_are_named(op: str, attrs: dict, message: str) -> None:
    spec = OPS[op]
    small = {name: np.zeros(spec.shape(name, 2, 1, 3, 2, 1, 0), np.float32) for name in ("X", "W", "R")}
    with pytest.raises(UnsupportedOptionError, match=message):
        run_onnx_tf(node_model(spec, small, {"hidden_size": 2, **attrs}), small)


# --- no state shared between nodes or prepare() calls (onnx-tf's built-ins cached their cell) --

SEVERAL_CASES = [
    # op, (input, hidden, attributes) of each node: different sizes, then the first size again
    ("LSTM", [(5, 7, {}), (3, 4, {}), (5, 7, {})]),
    ("GRU", [(5, 7, {"linear_before_reset": 1}), (3, 4, {"linear_before_reset": 0}), (5, 7, {"linear_before_reset": 0})]),
    ("RNN", [(5, 7, {"activations": ["Tanh"]}), (3, 4, {"activations": ["Relu"]}), (5, 7, {"activations": ["Relu"]})]),
]


@pytest.mark.parametrize(("op", "sizes"), SEVERAL_CASES, ids=[case[0] for case in SEVERAL_CASES])
def test_several_nodes_in_one_graph(op: str, sizes: list[tuple[int, int, dict]]) -> None:
    """Different sizes, and the same size with other weights and options, in one graph."""
    spec = OPS[op]
    rng = np.random.default_rng(3)
    nodes = [
        Node(random_inputs(spec, rng, ("X", *WEIGHTS), 6, 2, features, hidden), {"hidden_size": hidden, **attrs}, spec.outputs)
        for features, hidden, attrs in sizes
    ]
    feed, expected = {}, {}
    for k, node in enumerate(nodes):
        feed.update({f"{name}{k}": value for name, value in node.inputs.items()})
        expected.update({f"{name}{k}": value for name, value in reference_outputs(spec, node.inputs, node.attrs).items()})
    run_test_case(nodes_model(spec, nodes, opset=17), feed, expected)


@pytest.mark.parametrize("op", OPS)
def test_prepare_twice_in_one_process(op: str) -> None:
    """Two models prepared before either runs (onnx-tf traces lazily), then run in turn."""
    from onnx_tf.backend import prepare

    spec = OPS[op]
    rng = np.random.default_rng(4)
    first, second = (random_inputs(spec, rng, ("X", *WEIGHTS), 5, 3, 4, 6) for _ in range(2))
    reps = [prepare(node_model(spec, inputs, {"hidden_size": 6})) for inputs in (first, second)]
    for rep, inputs in [(reps[1], second), (reps[0], first), (reps[1], second)]:
        actual = rep.run(inputs)
        for name, want in reference_outputs(spec, inputs, {}).items():
            np.testing.assert_allclose(getattr(actual, name), want, atol=1e-6, rtol=0, err_msg=name)


# --- graph structure: one projection matmul, one loop, GPU kernels only ------------------


def _loop_functions(graph_def: tf.compat.v1.GraphDef) -> list:
    functions = {f.signature.name: f for f in graph_def.library.function}
    loops = [n for n in graph_def.node if n.op in ("While", "StatelessWhile")]
    assert len(loops) == 1, [n.op for n in loops]
    return [functions[loops[0].attr[key].func.name] for key in ("cond", "body")]


def _has_gpu_kernel(node: tf.compat.v1.NodeDef) -> bool:
    """A kernel for GPU, or for every device ("DEFAULT", e.g. int32 constants in host memory),
    accepts the node's types."""
    from tensorflow.python.framework import kernels

    for kernel in kernels.get_registered_kernels_for_op(node.op).kernel:
        if kernel.device_type in ("GPU", "DEFAULT") and all(
            node.attr[c.name].type in c.allowed_values.list.type for c in kernel.constraint if c.name in node.attr
        ):
            return True
    return False


STRUCTURE_CASES = [
    # op, attributes, recurrent matmuls per direction and step
    ("LSTM", {}, 1),
    ("GRU", {"linear_before_reset": 0}, 2),  # the reset gate multiplies h before R_h
    ("GRU", {"linear_before_reset": 1}, 1),
    ("RNN", {}, 1),
]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("op", "attrs", "matmuls"), STRUCTURE_CASES, ids=_ids(STRUCTURE_CASES))
def test_graph_structure(op: str, attrs: dict, matmuls: int, direction: str) -> None:
    """A single while loop whose ops all have GPU kernels; one input-projection matmul before
    it, and ``matmuls`` per direction per step in it."""
    from onnx_tf.backend import prepare

    spec = OPS[op]
    dirs = 2 if direction == "bidirectional" else 1
    inputs = random_inputs(spec, np.random.default_rng(5), ("X", *WEIGHTS, "P"), 3, 2, 4, 5, dirs)
    inputs.update(X=np.zeros_like(inputs["X"]), sequence_lens=np.array([3, 1], np.int32))
    rep = prepare(node_model(spec, inputs, {"hidden_size": 5, "direction": direction, "clip": 2.0, **attrs}))
    graph_def = rep.tf_module.__call__.get_concrete_function(**rep.signatures).graph.as_graph_def()
    cond, body = _loop_functions(graph_def)
    assert [n.op for n in graph_def.node].count("MatMul") == 1
    assert [n.op for n in body.node_def].count("MatMul") == dirs * matmuls
    assert not {"BatchMatMulV2", "BatchMatMulV3", "PyFunc", "EagerPyFunc"} & {n.op for n in body.node_def}
    missing = [n.op for n in [*cond.node_def, *body.node_def] if not _has_gpu_kernel(n)]
    assert not missing, f"no GPU kernel for {missing}"


# --- PyTorch: exported nn.LSTM/GRU/RNN models, and gradients -------------------------------

TORCH_CASES = [
    # op, layers, bidirectional, batch_first, initial states, input, hidden, (run time, run batch), other arguments
    ("LSTM", 1, False, False, False, 3, 1, (1, 3), {}),
    ("LSTM", 2, True, True, True, 16, 64, (40, 3), {}),
    ("LSTM", 3, False, True, True, 7, 20, (200, 1), {}),
    ("LSTM", 1, True, False, True, 5, 9, (17, 4), {}),
    ("LSTM", 2, False, False, False, 6, 33, (64, 5), {}),
    ("GRU", 1, False, False, False, 3, 1, (1, 3), {}),
    ("GRU", 2, True, True, True, 16, 32, (40, 3), {}),
    ("GRU", 3, False, True, True, 7, 20, (120, 1), {}),
    ("GRU", 1, True, False, True, 5, 9, (17, 4), {}),
    ("GRU", 3, True, False, False, 6, 12, (30, 2), {}),
    ("RNN", 1, False, False, False, 3, 1, (1, 3), {"nonlinearity": "tanh"}),
    ("RNN", 2, True, True, True, 16, 32, (40, 3), {"nonlinearity": "relu"}),
    ("RNN", 3, False, True, True, 7, 20, (120, 1), {"nonlinearity": "tanh"}),
    ("RNN", 1, True, False, False, 5, 9, (17, 4), {"nonlinearity": "relu"}),
    ("RNN", 3, True, False, True, 6, 12, (30, 2), {"nonlinearity": "tanh"}),
    ("RNN", 3, False, False, False, 4, 8, (25, 2), {"nonlinearity": "relu"}),
]
# What the legacy exporter sets on every node: PyTorch's GRU applies the reset gate after R_h.
TORCH_EXPORTED_ATTRS = {"GRU": {"linear_before_reset": 1}}


@pytest.mark.parametrize(
    ("op", "layers", "bidirectional", "batch_first", "with_state", "features", "hidden", "run_shape", "kwargs"),
    TORCH_CASES,
    ids=_ids(TORCH_CASES),
)
def test_torch_export(
    op: str,
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    with_state: bool,
    features: int,
    hidden: int,
    run_shape: tuple[int, int],
    kwargs: dict,
) -> None:
    """Exported at T=5, B=2 (opset 17, legacy exporter) with dynamic axes; run at another T and
    B; torch to 1e-5 (relative to the outputs' magnitude where it exceeds 1: relu is unbounded)."""
    spec = OPS[op]
    torch.manual_seed(layers * 100 + hidden)
    layer = getattr(torch.nn, op)(features, hidden, layers, batch_first=batch_first, bidirectional=bidirectional, **kwargs)
    module = TorchRecurrent(layer).eval()
    dirs = 2 if bidirectional else 1

    def arguments(steps: int, batch: int) -> tuple[torch.Tensor, ...]:
        x = torch.randn((batch, steps, features) if batch_first else (steps, batch, features))
        states = [torch.randn(layers * dirs, batch, hidden) for _ in spec.states] if with_state else []
        return (x, *states)

    names = TORCH_INPUTS[: 1 + len(spec.states) if with_state else 1]
    output_names = TORCH_OUTPUTS[: len(spec.outputs)]
    model = export_torch(module, arguments(5, 2), names, batch_first, output_names)
    nodes = [node for node in model.graph.node if node.op_type == op]
    assert len(nodes) == layers
    for name, value in TORCH_EXPORTED_ATTRS.get(op, {}).items():
        assert all(helper.get_attribute_value(a) == value for n in nodes for a in n.attribute if a.name == name), name
    args = arguments(*run_shape)
    with torch.no_grad():
        expected = dict(zip(output_names, (t.numpy() for t in module(*args))))
    scale = max(1.0, max(float(np.abs(v).max()) for v in expected.values()))
    run_test_case(model, dict(zip(names, (a.numpy() for a in args))), expected, atol=1e-5 * scale)


GRADIENT_CASES = [("LSTM", {}), ("GRU", {"linear_before_reset": 1}), ("RNN", {})]  # as PyTorch computes them


@pytest.mark.parametrize(("op", "attrs"), GRADIENT_CASES, ids=[case[0] for case in GRADIENT_CASES])
def test_gradients_match_torch_autograd(op: str, attrs: dict) -> None:
    """d(loss)/d(X, W, R, B, initial states) of a bidirectional node, with every output in the
    loss, against torch's autograd of the same ``nn.LSTM``/``nn.GRU``/``nn.RNN``."""
    from onnx_tf.backend import prepare

    spec = OPS[op]
    torch.manual_seed(8)
    steps, batch, features, hidden = 12, 3, 5, 16
    layer = getattr(torch.nn, op)(features, hidden, bidirectional=True)
    x = torch.randn(steps, batch, features, requires_grad=True)
    states = [torch.randn(2, batch, hidden, requires_grad=True) for _ in spec.states]
    outputs = TorchRecurrent(layer)(x, *states)
    upstream = [torch.randn(o.shape) for o in outputs]
    sum((o * g).sum() for o, g in zip(outputs, upstream)).backward()

    def onnx_layout(key: str, grad: bool) -> np.ndarray:
        params = [getattr(layer, f"{key}{suffix}") for suffix in ("_l0", "_l0_reverse")]
        return np.stack([onnx_gates(spec, p.grad if grad else p) for p in params])

    def onnx_values(grad: bool) -> dict[str, np.ndarray]:
        return {
            "X": (x.grad if grad else x.detach()).numpy(),
            "W": onnx_layout("weight_ih", grad),
            "R": onnx_layout("weight_hh", grad),
            "B": np.concatenate([onnx_layout("bias_ih", grad), onnx_layout("bias_hh", grad)], axis=1),
            **{name: (s.grad if grad else s.detach()).numpy() for name, s in zip(spec.states, states)},
        }

    inputs = onnx_values(grad=False)
    rep = prepare(node_model(spec, inputs, {"hidden_size": hidden, "direction": "bidirectional", **attrs}))
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    # ONNX Y is [T, D, B, H]; torch's output is [T, B, D*H]; the final states agree.
    upstream_onnx = [upstream[0].numpy().reshape(steps, batch, 2, hidden).transpose(0, 2, 1, 3), *(g.numpy() for g in upstream[1:])]
    with tf.GradientTape() as tape:
        tape.watch(list(tensors.values()))
        out = rep.tf_module(**tensors)
        loss = sum(tf.reduce_sum(out[name] * g) for name, g in zip(spec.outputs, upstream_onnx))
    grads = tape.gradient(loss, tensors)
    for name, want in onnx_values(grad=True).items():
        assert grads[name] is not None, name
        got = grads[name].numpy()
        assert np.isfinite(got).all(), name
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=name)


FINITE_DIFFERENCE_CASES = [
    ("LSTM", {}),
    ("GRU", {"linear_before_reset": 0, "activations": ["Sigmoid", "Tanh", "HardSigmoid", "Softsign"]}),
    ("GRU", {"linear_before_reset": 1, "activations": ["Sigmoid", "Tanh", "HardSigmoid", "Softsign"]}),
    ("RNN", {"activations": ["Tanh", "Softsign"]}),
]


@pytest.mark.parametrize(("op", "attrs"), FINITE_DIFFERENCE_CASES, ids=_ids(FINITE_DIFFERENCE_CASES))
def test_gradients_match_reference_finite_differences(op: str, attrs: dict) -> None:
    """float64, bidirectional, layout 1, every optional input (ragged sequence_lens, initial
    states, peepholes), clip: the handler's gradient along a random direction equals a central
    finite difference of the numpy reference."""
    from onnx_tf.backend import prepare

    spec = OPS[op]
    rng = np.random.default_rng(9)
    steps, batch, features, hidden = 7, 3, 4, 5
    inputs = random_inputs(spec, rng, spec.inputs, steps, batch, features, hidden, dirs=2, layout=1, dtype=np.float64)
    inputs["sequence_lens"] = np.array([7, 2, 5], np.int32)
    attrs = {"hidden_size": hidden, "direction": "bidirectional", "layout": 1, "clip": 2.5, **attrs}
    upstream = {name: rng.normal(size=value.shape) for name, value in reference_outputs(spec, inputs, attrs).items()}

    def reference_loss(values: dict) -> float:
        outputs = reference_outputs(spec, values, attrs)
        return sum(float(np.sum(outputs[name] * upstream[name])) for name in spec.outputs)

    rep = prepare(node_model(spec, inputs, attrs))
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    with tf.GradientTape() as tape:
        tape.watch([t for t in tensors.values() if t.dtype == tf.float64])
        out = rep.tf_module(**tensors)
        loss = sum(tf.reduce_sum(out[name] * upstream[name]) for name in spec.outputs)
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


# --- a 2-layer bidirectional graph traced for each lowering target -------------------------

FEATURES, HIDDEN = 4, 5
TWO_LAYER_ATTRS = {  # of each layer
    "LSTM": ({}, {}),
    "GRU": ({"linear_before_reset": 1}, {}),
    "RNN": ({}, {"activations": ["Relu", "Relu"]}),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op", OPS)
def test_two_layers_lowered(op: str, target: str) -> None:
    """Traced once for ``target``, with dynamic batch and time; every runtime of that target
    (TensorFlow, and LiteRT for "tflite": builtin ops only, its recurrences a WHILE) matches
    the reference at several batches and lengths."""
    spec = OPS[op]
    rng = np.random.default_rng(11)
    layers = [random_inputs(spec, rng, WEIGHTS, 1, 1, features, HIDDEN, dirs=2, std=0.4) for features in (FEATURES, 2 * HIDDEN)]
    attrs = TWO_LAYER_ATTRS[op]
    lowered = lower(two_layer_model(spec, layers, attrs, HIDDEN), target)
    if target == "tflite":
        ops = lowered.litert_ops
        assert "WHILE" in ops and not any(name.startswith("CUSTOM") for name in ops), ops
    for batch, steps in [(1, 1), (3, 11), (2, 40), (2, 70)]:  # LiteRT's loop runs 64 steps per chunk
        inputs = random_inputs(spec, np.random.default_rng(batch * 100 + steps), ("X", *spec.states), steps, batch, FEATURES, HIDDEN, dirs=2)
        expected = two_layer_reference(spec, layers, attrs, inputs)
        for runtime, run in lowered.runs.items():
            outputs = run(inputs)
            for name, want in expected.items():
                np.testing.assert_allclose(outputs[name], want, atol=1e-5, rtol=0, err_msg=f"{runtime} {name}")
