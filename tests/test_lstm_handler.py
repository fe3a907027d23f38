"""The LSTM handler (``custom_ops/handlers/lstm.py``) through onnx-tf, against onnx's node
tests, the independent numpy reference (itself checked against onnxruntime), and PyTorch
(outputs of exported ``nn.LSTM`` models, and gradients)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
import torch
from onnx import TensorProto, helper
from onnx_tf_harness import load_node_test, official_node_tests, run_onnx_tf, run_test_case
from reference.lstm import LSTM as Reference

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.lstm import LSTM  # noqa: E402
from custom_ops.support import UnsupportedOptionError  # noqa: E402

INPUT_NAMES = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
OUTPUT_NAMES = ("Y", "Y_h", "Y_c")
ACTIVATIONS = (
    "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
    "HardSigmoid", "Elu", "Softsign", "Softplus",
)  # fmt: skip
# Activations bounded by 1 in magnitude for alpha <= 1: as the gate function f they keep the
# cell state from growing geometrically over 200 steps.
BOUNDED_ACTIVATIONS = ("Sigmoid", "HardSigmoid", "Tanh", "Softsign", "ScaledTanh")


def _elem_type(dtype: np.dtype) -> int:
    if dtype == ml_dtypes.bfloat16:  # onnx's helper knows no numpy bfloat16
        return TensorProto.BFLOAT16
    return helper.np_dtype_to_tensor_dtype(dtype)


def lstm_model(
    inputs: dict[str, np.ndarray | None],
    attrs: dict,
    outputs: Sequence[str] = OUTPUT_NAMES,
    opset: int = 22,
) -> onnx.ModelProto:
    """One LSTM node whose given inputs are all graph inputs; batch and time are dynamic."""
    names = [name if inputs.get(name) is not None else "" for name in INPUT_NAMES]
    while not names[-1]:
        names.pop()
    layout = attrs.get("layout", 0)
    dims = {
        "X": ["N", "T", None] if layout else ["T", "N", None],
        "sequence_lens": ["N"],
        "initial_h": [None, "N", None] if layout == 0 else ["N", None, None],
    }
    dims["initial_c"] = dims["initial_h"]
    graph_inputs = []
    for name in filter(None, names):
        array = inputs[name]
        shape = [
            d if d is not None else s for d, s in zip(dims.get(name, array.shape), array.shape)
        ]
        graph_inputs.append(helper.make_tensor_value_info(name, _elem_type(array.dtype), shape))
    elem = _elem_type(inputs["X"].dtype)
    graph_outputs = [
        helper.make_tensor_value_info(name, elem, [None] * (4 if name == "Y" else 3))
        for name in outputs
        if name
    ]
    node = helper.make_node("LSTM", names, list(outputs), name="lstm", **attrs)
    graph = helper.make_graph([node], "lstm", graph_inputs, graph_outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def reference_outputs(
    inputs: dict[str, np.ndarray | None], attrs: dict, outputs: Sequence[str] = OUTPUT_NAMES
) -> dict[str, np.ndarray]:
    """The requested (non-empty) outputs of the numpy reference."""
    kwargs = {k: v for k, v in attrs.items() if k != "hidden_size"}
    results = Reference.run(*(inputs.get(name) for name in INPUT_NAMES), **kwargs)
    return {name: value for name, value in zip(outputs, results) if name}


# --- onnx's official node tests ------------------------------------------------------------


@pytest.mark.parametrize("folder", official_node_tests("test_lstm"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


def test_onnx_tf_dispatches_to_our_handler() -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset, since in [(7, 7), (13, 7), (14, 14), (17, 14), (21, 14), (22, 22)]:
        dispatched = get_all_backend_handlers({"": opset})[""]["LSTM"]
        assert dispatched is LSTM, opset
        assert dispatched.SINCE_VERSION == since, opset
        assert hasattr(dispatched, f"version_{since}"), opset


# --- the numpy reference, checked against onnxruntime (layout 0 only there) --------------


ORT_CONFIGS = [
    {"direction": "forward"},
    {"direction": "reverse", "clip": 0.6},
    {"direction": "bidirectional", "input_forget": 1},
    {"direction": "bidirectional", "clip": 1.5, "input_forget": 1},
    {"direction": "forward", "activations": ["HardSigmoid", "LeakyRelu", "Elu"]},
    {
        "direction": "forward",
        "activations": ["HardSigmoid", "LeakyRelu", "Elu"],
        "activation_alpha": [0.3, 0.1, 0.7],
        "activation_beta": [0.4],
    },
    {
        "direction": "reverse",
        "activations": ["Sigmoid", "Affine", "ScaledTanh"],
        "activation_alpha": [0.5, 0.8],
        "activation_beta": [0.1, 1.3],
    },
    {
        "direction": "bidirectional",
        "activations": ["Softsign", "Softplus", "Relu", "HardSigmoid", "ThresholdedRelu", "Tanh"],
        "activation_alpha": [0.3, 0.2],
        "activation_beta": [0.6],
    },
]


@pytest.mark.parametrize(
    "attrs", ORT_CONFIGS, ids=[f"{k}-{c['direction']}" for k, c in enumerate(ORT_CONFIGS)]
)
def test_reference_matches_onnxruntime(attrs: dict) -> None:
    """The oracle itself: same semantics as onnxruntime for clip, input_forget, activations
    and their alpha/beta, ragged sequence_lens, peepholes and initial states."""
    rng = np.random.default_rng(7)
    steps, batch, features, hidden = 9, 4, 5, 6
    dirs = 2 if attrs["direction"] == "bidirectional" else 1
    inputs = {
        "X": rng.normal(size=(steps, batch, features)),
        "W": rng.normal(size=(dirs, 4 * hidden, features)),
        "R": rng.normal(size=(dirs, 4 * hidden, hidden)),
        "B": rng.normal(size=(dirs, 8 * hidden)),
        "sequence_lens": np.array([9, 1, 5, 7], np.int32),
        "initial_h": rng.normal(size=(dirs, batch, hidden)),
        "initial_c": rng.normal(size=(dirs, batch, hidden)),
        "P": rng.normal(size=(dirs, 3 * hidden)),
    }
    inputs = {k: v if v.dtype == np.int32 else v.astype(np.float32) for k, v in inputs.items()}
    attrs = dict(attrs, hidden_size=hidden)
    model = lstm_model(inputs, attrs, opset=14)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    actual = dict(zip(OUTPUT_NAMES, session.run(None, inputs)))
    for name, want in reference_outputs(inputs, attrs).items():
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(actual[name], want, atol=1e-5 * scale, rtol=0, err_msg=name)


# --- seeded random sweep against the numpy reference -------------------------------------

OUTPUT_SUBSETS = [
    ("Y", "Y_h", "Y_c"),
    ("Y",),
    ("", "Y_h"),
    ("Y", "", "Y_c"),
    ("", "", "Y_c"),
    ("", "Y_h", "Y_c"),
]
DIRECTIONS = ("forward", "reverse", "bidirectional")
SWEEP_SIZE = 30


@dataclass(frozen=True)
class SweepCase:
    """One random LSTM node with its inputs; ``index`` fixes direction, layout and the
    requested outputs so that the sweep covers every combination of the first two."""

    index: int
    opset: int
    attrs: dict
    inputs: dict
    outputs: tuple[str, ...]

    @classmethod
    def make(cls, index: int) -> SweepCase:
        rng = np.random.default_rng(1000 + index)
        direction = DIRECTIONS[index % 3]
        layout = (index // 3) % 2
        dirs = 2 if direction == "bidirectional" else 1
        dtype = np.float64 if index % 5 == 4 else np.float32
        steps, batch = int(rng.integers(1, 201)), int(rng.integers(1, 6))
        features, hidden = int(rng.integers(1, 17)), int(rng.integers(1, 65))
        scale = 1 / np.sqrt(hidden)

        def uniform(*shape: int) -> np.ndarray:
            return rng.uniform(-scale, scale, shape).astype(dtype)

        def maybe(value: np.ndarray) -> np.ndarray | None:
            return value if rng.random() < 0.5 else None

        state_shape = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
        lengths = rng.integers(1, steps + 1, batch).astype(np.int32)
        inputs = {
            "X": rng.normal(
                size=(batch, steps, features) if layout else (steps, batch, features)
            ).astype(dtype),
            "W": uniform(dirs, 4 * hidden, features),
            "R": uniform(dirs, 4 * hidden, hidden),
            "B": maybe(uniform(dirs, 8 * hidden)),
            "sequence_lens": maybe(lengths),
            "initial_h": maybe(rng.normal(size=state_shape).astype(dtype)),
            "initial_c": maybe(rng.normal(size=state_shape).astype(dtype)),
            "P": maybe(uniform(dirs, 3 * hidden)),
        }
        attrs: dict = {"hidden_size": hidden} if rng.random() < 0.8 else {}  # else from R
        if direction != "forward" or rng.random() < 0.5:
            attrs["direction"] = direction
        if layout or rng.random() < 0.3:
            attrs["layout"] = layout
        # Float attributes are float32 in ONNX: the reference must see the rounded values.
        if rng.random() < 0.4:
            attrs["clip"] = float(np.float32(rng.uniform(0.5, 3.0)))
        if rng.random() < 0.3:
            attrs["input_forget"] = 1
        if rng.random() < 0.5:
            names = []
            for _ in range(dirs):
                names += [
                    str(rng.choice(BOUNDED_ACTIVATIONS)),
                    *map(str, rng.choice(ACTIVATIONS, 2)),
                ]
            attrs["activations"] = names
            alphas = rng.uniform(0.2, 1.0, rng.integers(1, 7)).astype(np.float32)
            betas = rng.uniform(-0.5, 0.5, rng.integers(1, 7)).astype(np.float32)
            attrs["activation_alpha"] = [float(a) for a in alphas]
            attrs["activation_beta"] = [float(b) for b in betas]
        opsets = (14, 22) if "layout" in attrs else (7, 14, 22)
        return cls(
            index=index,
            opset=int(rng.choice(opsets)),
            attrs=attrs,
            inputs=inputs,
            outputs=OUTPUT_SUBSETS[(index + index // 6) % len(OUTPUT_SUBSETS)],
        )


def test_sweep_covers_every_option() -> None:
    """Every option of the sweep below occurs both ways, for every direction."""
    cases = [SweepCase.make(i) for i in range(SWEEP_SIZE)]
    for direction in DIRECTIONS:
        mine = [c for c in cases if c.attrs.get("direction", "forward") == direction]
        features = {
            "layout 1": [c.attrs.get("layout", 0) == 1 for c in mine],
            "float64": [c.inputs["X"].dtype == np.float64 for c in mine],
            "clip": ["clip" in c.attrs for c in mine],
            "input_forget": ["input_forget" in c.attrs for c in mine],
            "activations": ["activations" in c.attrs for c in mine],
            "all outputs": [c.outputs == OUTPUT_NAMES for c in mine],
            "hidden_size": ["hidden_size" in c.attrs for c in mine],
            **{name: [c.inputs[name] is not None for c in mine] for name in INPUT_NAMES[3:]},
        }
        for feature, values in features.items():
            assert any(values) and not all(values), (direction, feature)
    assert {c.opset for c in cases} == {7, 14, 22}
    assert {c.outputs for c in cases} == set(OUTPUT_SUBSETS)
    assert set().union(*(c.attrs.get("activations", []) for c in cases)) == set(ACTIVATIONS)


@pytest.mark.parametrize("index", range(SWEEP_SIZE))
def test_matches_reference(index: int) -> None:
    """float32 within 1e-6 of the float64 reference (relative to the output's magnitude when
    an unbounded activation lets it exceed 1); float64 within 1e-12."""
    case = SweepCase.make(index)
    expected = reference_outputs(case.inputs, case.attrs, case.outputs)
    model = lstm_model(case.inputs, case.attrs, case.outputs, case.opset)
    tolerance = 1e-12 if case.inputs["X"].dtype == np.float64 else 1e-6
    magnitude = max(1.0, max(float(np.abs(v).max()) for v in expected.values()))
    feed = {k: v for k, v in case.inputs.items() if v is not None}
    run_test_case(model, feed, expected, atol=tolerance * magnitude)


@pytest.mark.parametrize(
    ("dtype", "opset", "atol"), [(np.float16, 14, 2e-3), (ml_dtypes.bfloat16, 22, 2e-2)]
)
def test_half_precision(dtype: type, opset: int, atol: float) -> None:
    """float16 (every version) and bfloat16 (version 22) run in their own precision."""
    rng = np.random.default_rng(10)
    inputs = {
        "X": rng.normal(size=(20, 3, 4)),
        "W": rng.normal(0, 0.5, (2, 24, 4)),
        "R": rng.normal(0, 0.5, (2, 24, 6)),
        "B": rng.normal(0, 0.5, (2, 48)),
        "sequence_lens": np.array([20, 5, 11], np.int32),
        "P": rng.normal(0, 0.5, (2, 18)),
    }
    inputs = {k: v if k == "sequence_lens" else v.astype(dtype) for k, v in inputs.items()}
    attrs = {"hidden_size": 6, "direction": "bidirectional", "clip": 2.0}
    expected = reference_outputs(inputs, attrs)
    actual = run_onnx_tf(lstm_model(inputs, attrs, opset=opset), inputs)
    for name, want in expected.items():
        assert actual[name].dtype == dtype, name
        np.testing.assert_allclose(
            actual[name].astype(np.float64), want.astype(np.float64), atol=atol, rtol=0
        )


def test_unknown_activation_is_named() -> None:
    inputs = {
        "X": np.zeros((2, 1, 3), np.float32),
        "W": np.zeros((1, 8, 3), np.float32),
        "R": np.zeros((1, 8, 2), np.float32),
    }
    attrs = {"hidden_size": 2, "activations": ["Sigmoid", "Gelu", "Tanh"]}
    with pytest.raises(UnsupportedOptionError, match="activation 'Gelu' is not supported"):
        run_onnx_tf(lstm_model(inputs, attrs), inputs)


# --- no state shared between nodes or prepare() calls (onnx-tf's built-in cached its cell) --


def _random_inputs(
    rng: np.random.Generator, steps: int, batch: int, features: int, hidden: int
) -> dict:
    return {
        "X": rng.normal(size=(steps, batch, features)).astype(np.float32),
        "W": rng.normal(0, 0.5, (1, 4 * hidden, features)).astype(np.float32),
        "R": rng.normal(0, 0.5, (1, 4 * hidden, hidden)).astype(np.float32),
        "B": rng.normal(0, 0.5, (1, 8 * hidden)).astype(np.float32),
    }


def test_several_lstms_in_one_graph() -> None:
    """Different sizes, and the same size with different weights, in one graph."""
    rng = np.random.default_rng(3)
    sizes = [(5, 7), (3, 4), (5, 7)]  # (input, hidden); the third repeats the first's size
    node_inputs = [_random_inputs(rng, 6, 2, f, h) for f, h in sizes]
    nodes, graph_inputs, graph_outputs, feed, expected = [], [], [], {}, {}
    for k, (inputs, (_, hidden)) in enumerate(zip(node_inputs, sizes)):
        names = {name: f"{name}{k}" for name in inputs}
        outputs = [f"{name}{k}" for name in OUTPUT_NAMES]
        nodes.append(
            helper.make_node(
                "LSTM", list(names.values()), outputs, name=f"lstm{k}", hidden_size=hidden
            )
        )
        for name, array in inputs.items():
            graph_inputs.append(
                helper.make_tensor_value_info(names[name], TensorProto.FLOAT, array.shape)
            )
            feed[names[name]] = array
        graph_outputs += [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * (4 if o == "Y" else 3))
            for o, name in zip(OUTPUT_NAMES, outputs)
        ]
        expected.update(zip(outputs, Reference.run(*inputs.values())))
    graph = helper.make_graph(nodes, "three_lstms", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    run_test_case(model, feed, expected)


def test_prepare_twice_in_one_process() -> None:
    """Two models prepared before either runs (onnx-tf traces lazily), then run in turn."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(4)
    first, second = _random_inputs(rng, 5, 3, 4, 6), _random_inputs(rng, 5, 3, 4, 6)
    reps = [prepare(lstm_model(inputs, {"hidden_size": 6})) for inputs in (first, second)]
    for rep, inputs in [(reps[1], second), (reps[0], first), (reps[1], second)]:
        actual = rep.run(inputs)
        for name, want in zip(OUTPUT_NAMES, Reference.run(*inputs.values())):
            np.testing.assert_allclose(getattr(actual, name), want, atol=1e-6, rtol=0)


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
            node.attr[c.name].type in c.allowed_values.list.type
            for c in kernel.constraint
            if c.name in node.attr
        ):
            return True
    return False


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_graph_structure(direction: str) -> None:
    """A single while loop whose ops all have GPU kernels; one matmul per direction per step
    and one input-projection matmul before the loop."""
    from onnx_tf.backend import prepare

    dirs = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(5)
    inputs = {
        "X": np.zeros((3, 2, 4), np.float32),
        "W": rng.normal(size=(dirs, 20, 4)).astype(np.float32),
        "R": rng.normal(size=(dirs, 20, 5)).astype(np.float32),
        "sequence_lens": np.array([3, 1], np.int32),
        "P": rng.normal(size=(dirs, 15)).astype(np.float32),
    }
    attrs = {"hidden_size": 5, "direction": direction, "clip": 2.0}
    rep = prepare(lstm_model(inputs, attrs))
    graph_def = rep.tf_module.__call__.get_concrete_function(**rep.signatures).graph.as_graph_def()
    cond, body = _loop_functions(graph_def)
    assert [n.op for n in graph_def.node].count("MatMul") == 1
    assert [n.op for n in body.node_def].count("MatMul") == dirs
    assert not {"BatchMatMulV2", "BatchMatMulV3", "PyFunc", "EagerPyFunc"} & {
        n.op for n in body.node_def
    }
    missing = [n.op for n in [*cond.node_def, *body.node_def] if not _has_gpu_kernel(n)]
    assert not missing, f"no GPU kernel for {missing}"


# --- dynamic shapes through tf.function signatures and SavedModel ------------------------


def test_dynamic_shapes_survive_saved_model(tmp_path: Path) -> None:
    """Batch and time unknown when traced; the SavedModel and onnx-tf's ``export_graph``
    (which the built-in handler fails with dynamic dims) run at several shapes."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(6)
    features, hidden = 4, 3
    weights = {
        "W": rng.normal(size=(2, 4 * hidden, features)).astype(np.float32),
        "R": rng.normal(size=(2, 4 * hidden, hidden)).astype(np.float32),
        "B": rng.normal(size=(2, 8 * hidden)).astype(np.float32),
    }
    attrs = {"hidden_size": hidden, "direction": "bidirectional", "layout": 1}
    example = {
        "X": np.zeros((2, 3, features), np.float32),
        **weights,
        "sequence_lens": np.array([3, 3], np.int32),
    }
    rep = prepare(lstm_model(example, attrs))
    module = rep.tf_module

    class Serving(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, features], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def serve(self, x: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
            return module(X=x, sequence_lens=lengths, **weights)

    serving = Serving()
    serving.module = module
    tf.saved_model.save(serving, str(tmp_path / "serving"))
    rep.export_graph(str(tmp_path / "export_graph"))
    loaded = tf.saved_model.load(str(tmp_path / "serving"))
    exported = tf.saved_model.load(str(tmp_path / "export_graph")).signatures["serving_default"]
    for batch, steps in [(1, 1), (4, 9), (2, 30)]:
        x = rng.normal(size=(batch, steps, features)).astype(np.float32)
        lengths = rng.integers(1, steps + 1, batch).astype(np.int32)
        expected = reference_outputs({"X": x, **weights, "sequence_lens": lengths}, attrs)
        for outputs in (
            serving.serve(x, lengths),
            loaded.serve(x, lengths),
            exported(X=tf.constant(x), sequence_lens=tf.constant(lengths), **weights),
        ):
            for name, want in expected.items():
                np.testing.assert_allclose(
                    outputs[name].numpy(), want, atol=1e-6, rtol=0, err_msg=name
                )


# --- PyTorch: exported nn.LSTM models, and gradients ---------------------------------------


class _TorchLSTM(torch.nn.Module):
    """``nn.LSTM`` returning (output, h_n, c_n), with or without initial states."""

    def __init__(self, lstm: torch.nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output, (h_n, c_n) = self.lstm(x, tuple(state) if state else None)
        return output, h_n, c_n


TORCH_CASES = [
    # layers, bidirectional, batch_first, initial state, input, hidden, (run time, run batch)
    (1, False, False, False, 3, 1, (1, 3)),
    (2, True, True, True, 16, 64, (40, 3)),
    (3, False, True, True, 7, 20, (200, 1)),
    (1, True, False, True, 5, 9, (17, 4)),
    (2, False, False, False, 6, 33, (64, 5)),
]


@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "with_state", "features", "hidden", "run_shape"),
    TORCH_CASES,
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
    """Exported at T=5, B=2 with dynamic axes; run at another T and B; torch to 1e-5."""
    torch.manual_seed(layers * 100 + hidden)
    lstm = torch.nn.LSTM(
        features, hidden, layers, batch_first=batch_first, bidirectional=bidirectional
    )
    module = _TorchLSTM(lstm).eval()
    dirs = 2 if bidirectional else 1

    def arguments(steps: int, batch: int) -> tuple[torch.Tensor, ...]:
        x = torch.randn((batch, steps, features) if batch_first else (steps, batch, features))
        if not with_state:
            return (x,)
        return (
            x,
            torch.randn(layers * dirs, batch, hidden),
            torch.randn(layers * dirs, batch, hidden),
        )

    time_batch = {1: "time", 0: "batch"} if batch_first else {0: "time", 1: "batch"}
    names = ["x", "h0", "c0"][: 3 if with_state else 1]
    dynamic_axes = {"x": time_batch, "output": time_batch}
    dynamic_axes.update({name: {1: "batch"} for name in names[1:] + ["h_n", "c_n"]})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            arguments(5, 2),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=names,
            output_names=["output", "h_n", "c_n"],
            dynamic_axes=dynamic_axes,
        )
    model = onnx.load_from_string(buffer.getvalue())
    assert sum(node.op_type == "LSTM" for node in model.graph.node) == layers

    args = arguments(*run_shape)
    with torch.no_grad():
        expected = dict(zip(["output", "h_n", "c_n"], (t.numpy() for t in module(*args))))
    run_test_case(model, dict(zip(names, (a.numpy() for a in args))), expected, atol=1e-5)


def _onnx_gates(weight: torch.Tensor) -> np.ndarray:
    """PyTorch's gate blocks ``i, f, g, o`` -> ONNX's ``i, o, f, c``."""
    i, f, g, o = np.split(weight.detach().numpy(), 4)
    return np.concatenate([i, o, f, g])


def test_gradients_match_torch_autograd() -> None:
    """d(loss)/d(X, W, R, B, initial_h, initial_c) of a bidirectional LSTM, with every output
    in the loss, against torch's autograd of the same ``nn.LSTM``."""
    from onnx_tf.backend import prepare

    torch.manual_seed(8)
    steps, batch, features, hidden = 12, 3, 5, 16
    lstm = torch.nn.LSTM(features, hidden, bidirectional=True)
    x = torch.randn(steps, batch, features, requires_grad=True)
    h0 = torch.randn(2, batch, hidden, requires_grad=True)
    c0 = torch.randn(2, batch, hidden, requires_grad=True)
    g_y, g_h, g_c = (
        torch.randn(steps, batch, 2 * hidden),
        torch.randn(2, batch, hidden),
        torch.randn(2, batch, hidden),
    )
    output, (h_n, c_n) = lstm(x, (h0, c0))
    ((output * g_y).sum() + (h_n * g_h).sum() + (c_n * g_c).sum()).backward()

    suffixes = ["_l0", "_l0_reverse"]
    params = {
        "W": [getattr(lstm, f"weight_ih{s}") for s in suffixes],
        "R": [getattr(lstm, f"weight_hh{s}") for s in suffixes],
        "B_ih": [getattr(lstm, f"bias_ih{s}") for s in suffixes],
        "B_hh": [getattr(lstm, f"bias_hh{s}") for s in suffixes],
    }

    def onnx_layout(key: str, grad: bool) -> np.ndarray:
        return np.stack([_onnx_gates(p.grad if grad else p) for p in params[key]])

    inputs = {
        "X": x.detach().numpy(),
        "W": onnx_layout("W", False),
        "R": onnx_layout("R", False),
        "B": np.concatenate([onnx_layout("B_ih", False), onnx_layout("B_hh", False)], axis=1),
        "initial_h": h0.detach().numpy(),
        "initial_c": c0.detach().numpy(),
    }
    expected_grads = {
        "X": x.grad.numpy(),
        "W": onnx_layout("W", True),
        "R": onnx_layout("R", True),
        "B": np.concatenate([onnx_layout("B_ih", True), onnx_layout("B_hh", True)], axis=1),
        "initial_h": h0.grad.numpy(),
        "initial_c": c0.grad.numpy(),
    }
    rep = prepare(lstm_model(inputs, {"hidden_size": hidden, "direction": "bidirectional"}))
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    # ONNX Y is [T, D, B, H]; torch's output is [T, B, D*H].
    g_y_onnx = g_y.numpy().reshape(steps, batch, 2, hidden).transpose(0, 2, 1, 3)
    with tf.GradientTape() as tape:
        tape.watch(list(tensors.values()))
        out = rep.tf_module(**tensors)
        loss = (
            tf.reduce_sum(out["Y"] * g_y_onnx)
            + tf.reduce_sum(out["Y_h"] * g_h.numpy())
            + tf.reduce_sum(out["Y_c"] * g_c.numpy())
        )
    grads = tape.gradient(loss, tensors)
    for name, want in expected_grads.items():
        assert grads[name] is not None, name
        got = grads[name].numpy()
        assert np.isfinite(got).all(), name
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=name)


def test_gradients_match_reference_finite_differences() -> None:
    """float64, bidirectional, layout 1, every optional input (ragged sequence_lens,
    peepholes), clip: the handler's gradient along a random direction equals a central finite
    difference of the numpy reference."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(9)
    steps, batch, features, hidden = 7, 3, 4, 5
    inputs = {
        "X": rng.normal(size=(batch, steps, features)),
        "W": rng.normal(0, 0.5, (2, 4 * hidden, features)),
        "R": rng.normal(0, 0.5, (2, 4 * hidden, hidden)),
        "B": rng.normal(0, 0.5, (2, 8 * hidden)),
        "sequence_lens": np.array([7, 2, 5], np.int32),
        "initial_h": rng.normal(size=(batch, 2, hidden)),
        "initial_c": rng.normal(size=(batch, 2, hidden)),
        "P": rng.normal(0, 0.5, (2, 3 * hidden)),
    }
    attrs = {"hidden_size": hidden, "direction": "bidirectional", "layout": 1, "clip": 2.5}
    upstream = {
        name: rng.normal(size=value.shape)
        for name, value in reference_outputs(inputs, attrs).items()
    }

    def reference_loss(values: dict) -> float:
        outputs = reference_outputs(values, attrs)
        return sum(float(np.sum(outputs[name] * upstream[name])) for name in OUTPUT_NAMES)

    rep = prepare(lstm_model(inputs, attrs))
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
