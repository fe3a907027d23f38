"""The LSTM, GRU and RNN ops side by side for the recurrent handler tests: what differs between
them (:class:`RecurrentOp`, one entry of :data:`OPS` each), ONNX models of one or several nodes
with dynamic batch and time, random inputs, a seeded random sweep of the options, a 2-layer
bidirectional graph, and exported ``nn.LSTM``/``nn.GRU``/``nn.RNN`` models."""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from reference.gru import GRU
from reference.lstm import LSTM
from reference.rnn import RNN

DIRECTIONS = ("forward", "reverse", "bidirectional")
ACTIVATIONS = (
    "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
    "HardSigmoid", "Elu", "Softsign", "Softplus",
)  # fmt: skip
# Bounded by 1 in magnitude for alpha <= 1: as a gate function they keep the state bounded.
BOUNDED_ACTIVATIONS = ("Sigmoid", "HardSigmoid", "Tanh", "Softsign", "ScaledTanh")
# In [0, 1]: the LSTM's gate function with input_forget=1, where f = 1 - i must stay in [0, 1] too
# (else the cell state may double at every step).
UNIT_ACTIVATIONS = ("Sigmoid", "HardSigmoid")
STATES = ("initial_h", "initial_c")
TORCH_INPUTS = ("x", "h0", "c0")
TORCH_OUTPUTS = ("output", "h_n", "c_n")


@dataclass(frozen=True)
class Sweep:
    """A seeded random sweep of one op's options: ``size`` cases, case ``k`` from seed ``seed + k``."""

    seed: int
    size: int
    max_steps: int
    max_hidden: int


@dataclass(frozen=True)
class RecurrentOp:
    """What one recurrent ONNX op has of its own; the rest of the tests treat the three alike."""

    name: str
    gates: int  # blocks of W and R: 4 (LSTM), 3 (GRU), 1 (RNN)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # Y, then one per state
    activations: int  # activation functions per direction
    flag: str | None  # the op's own 0/1 attribute
    reference: Callable[..., tuple[np.ndarray, ...]]  # the independent numpy oracle
    torch_gates: tuple[int, ...]  # PyTorch's block of each ONNX gate, in ONNX order
    sweep: Sweep

    @property
    def states(self) -> tuple[str, ...]:
        return STATES[: len(self.outputs) - 1]

    def shape(self, name: str, steps: int, batch: int, features: int, hidden: int, dirs: int, layout: int) -> tuple[int, ...]:
        """The shape of input ``name`` (not ``sequence_lens``)."""
        if name == "X":
            return (batch, steps, features) if layout else (steps, batch, features)
        if name in STATES:
            return (batch, dirs, hidden) if layout else (dirs, batch, hidden)
        return {
            "W": (dirs, self.gates * hidden, features),
            "R": (dirs, self.gates * hidden, hidden),
            "B": (dirs, 2 * self.gates * hidden),
            "P": (dirs, 3 * hidden),
        }[name]

    def output_subsets(self) -> list[tuple[str, ...]]:
        """Every non-empty subset of the outputs as a node lists it ("" for an omitted one)."""
        subsets = []
        for keep in itertools.product((True, False), repeat=len(self.outputs)):
            if any(keep):
                names = [name if kept else "" for name, kept in zip(self.outputs, keep)]
                while not names[-1]:
                    names.pop()
                subsets.append(tuple(names))
        return subsets


_SIX_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h")
OPS = {
    op.name: op
    for op in [
        RecurrentOp("LSTM", 4, (*_SIX_INPUTS, "initial_c", "P"), ("Y", "Y_h", "Y_c"), 3, "input_forget", LSTM.run,
                    torch_gates=(0, 3, 1, 2), sweep=Sweep(seed=1000, size=30, max_steps=200, max_hidden=64)),
        RecurrentOp("GRU", 3, _SIX_INPUTS, ("Y", "Y_h"), 2, "linear_before_reset", GRU.run,
                    torch_gates=(1, 0, 2), sweep=Sweep(seed=8000, size=24, max_steps=80, max_hidden=48)),
        RecurrentOp("RNN", 1, _SIX_INPUTS, ("Y", "Y_h"), 1, None, RNN.run,
                    torch_gates=(0,), sweep=Sweep(seed=13000, size=24, max_steps=80, max_hidden=48)),
    ]
}  # fmt: skip


def elem_type(dtype: np.dtype) -> int:
    if dtype == ml_dtypes.bfloat16:  # onnx's helper knows no numpy bfloat16
        return TensorProto.BFLOAT16
    return helper.np_dtype_to_tensor_dtype(dtype)


def reference_outputs(
    op: RecurrentOp, inputs: dict[str, np.ndarray | None], attrs: dict, outputs: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The requested (non-empty) outputs of the op's numpy reference."""
    kwargs = {k: v for k, v in attrs.items() if k != "hidden_size"}
    results = op.reference(*(inputs.get(name) for name in op.inputs), **kwargs)
    return {name: value for name, value in zip(outputs or op.outputs, results) if name}


@dataclass(frozen=True)
class Node:
    """One node of a model built by :func:`nodes_model`: its inputs (None: omitted), attributes
    and requested outputs ("" omitted)."""

    inputs: dict[str, np.ndarray | None]
    attrs: dict
    outputs: Sequence[str]


def nodes_model(op: RecurrentOp, nodes: Sequence[Node], opset: int = 22) -> onnx.ModelProto:
    """Independent nodes of ``op`` whose given inputs are all graph inputs; batch and time are
    dynamic. With several nodes, node ``k``'s values and name end in ``k``."""
    suffixes = [""] if len(nodes) == 1 else [str(k) for k in range(len(nodes))]
    onnx_nodes, graph_inputs, graph_outputs = [], [], []
    for node, suffix in zip(nodes, suffixes):
        names = [name if node.inputs.get(name) is not None else "" for name in op.inputs]
        while not names[-1]:
            names.pop()
        layout = node.attrs.get("layout", 0)
        state = [None, "N", None] if layout == 0 else ["N", None, None]
        dims = {"X": ["N", "T", None] if layout else ["T", "N", None], "sequence_lens": ["N"], **dict.fromkeys(STATES, state)}
        for name in filter(None, names):
            array = node.inputs[name]
            shape = [d if d is not None else s for d, s in zip(dims.get(name, array.shape), array.shape)]
            graph_inputs.append(helper.make_tensor_value_info(name + suffix, elem_type(array.dtype), shape))
        elem = elem_type(node.inputs["X"].dtype)
        graph_outputs += [helper.make_tensor_value_info(name + suffix, elem, [None] * (4 if name == "Y" else 3)) for name in node.outputs if name]
        onnx_nodes.append(
            helper.make_node(
                op.name, [n and n + suffix for n in names], [n and n + suffix for n in node.outputs],
                name=op.name.lower() + suffix, **node.attrs,
            )
        )  # fmt: skip
    graph = helper.make_graph(onnx_nodes, op.name.lower(), graph_inputs, graph_outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def node_model(
    op: RecurrentOp, inputs: dict[str, np.ndarray | None], attrs: dict, outputs: Sequence[str] | None = None, opset: int = 22
) -> onnx.ModelProto:
    """One node of ``op`` (see :func:`nodes_model`), every output requested by default."""
    return nodes_model(op, [Node(inputs, attrs, outputs or op.outputs)], opset)


def random_inputs(
    op: RecurrentOp,
    rng: np.random.Generator,
    names: Sequence[str],
    steps: int,
    batch: int,
    features: int,
    hidden: int,
    dirs: int = 1,
    layout: int = 0,
    dtype: type = np.float32,
    std: float = 0.5,
) -> dict[str, np.ndarray]:
    """Inputs ``names`` of ``op`` but sequence_lens (drawn in the op's input order): X and the
    initial states standard normal, weights, biases and peepholes normal with standard deviation
    ``std``."""
    inputs = {}
    for name in (n for n in op.inputs if n in names and n != "sequence_lens"):
        shape = op.shape(name, steps, batch, features, hidden, dirs, layout)
        inputs[name] = (rng.normal(size=shape) if name == "X" or name in STATES else rng.normal(0, std, shape)).astype(dtype)
    return inputs


@dataclass(frozen=True)
class SweepCase:
    """One random node of an op with its inputs (None: omitted); ``index`` fixes direction, layout
    and the requested outputs so that a sweep covers every combination of the first two."""

    index: int
    opset: int
    attrs: dict
    inputs: dict
    outputs: tuple[str, ...]

    @classmethod
    def make(cls, op: RecurrentOp, index: int) -> SweepCase:
        rng = np.random.default_rng(op.sweep.seed + index)
        direction = DIRECTIONS[index % 3]
        layout = (index // 3) % 2
        dirs = 2 if direction == "bidirectional" else 1
        dtype = np.float64 if index % 5 == 4 else np.float32
        steps, batch = int(rng.integers(1, op.sweep.max_steps + 1)), int(rng.integers(1, 6))
        features, hidden = int(rng.integers(1, 17)), int(rng.integers(1, op.sweep.max_hidden + 1))
        scale = 1 / np.sqrt(hidden)
        inputs: dict[str, np.ndarray | None] = {}
        for name in op.inputs:
            if name == "sequence_lens":
                value = rng.integers(1, steps + 1, batch).astype(np.int32)
            else:
                shape = op.shape(name, steps, batch, features, hidden, dirs, layout)
                value = rng.normal(size=shape) if name == "X" or name in STATES else rng.uniform(-scale, scale, shape)
                value = value.astype(dtype)
            inputs[name] = value if name in ("X", "W", "R") or rng.random() < 0.5 else None
        attrs: dict = {"hidden_size": hidden} if rng.random() < 0.8 else {}  # else from R
        if direction != "forward" or rng.random() < 0.5:
            attrs["direction"] = direction
        if layout or rng.random() < 0.3:
            attrs["layout"] = layout
        # Float attributes are float32 in ONNX: the reference must see the rounded values.
        if rng.random() < 0.4:
            attrs["clip"] = float(np.float32(rng.uniform(0.5, 3.0)))
        if op.flag and (index % 2 or rng.random() < 0.3):
            attrs[op.flag] = index % 2
        if rng.random() < 0.5:
            bounded = 1 if op.activations > 1 else 0  # the gate function bounded, so that 1 - z stays sensible
            gates = UNIT_ACTIVATIONS if attrs.get("input_forget") else BOUNDED_ACTIVATIONS
            names = []
            for _ in range(dirs):
                names += [str(rng.choice(gates)) for _ in range(bounded)]
                names += [str(rng.choice(ACTIVATIONS)) for _ in range(op.activations - bounded)]
            attrs["activations"] = names
            attrs["activation_alpha"] = [float(a) for a in rng.uniform(0.2, 1.0, rng.integers(1, 7)).astype(np.float32)]
            attrs["activation_beta"] = [float(b) for b in rng.uniform(-0.5, 0.5, rng.integers(1, 7)).astype(np.float32)]
        opsets = (14, 22) if "layout" in attrs else (7, 14, 22)
        subsets = op.output_subsets()
        outputs = subsets[(index // 3) % len(subsets)]  # each direction gets each subset
        return cls(index=index, opset=int(rng.choice(opsets)), attrs=attrs, inputs=inputs, outputs=outputs)


def sweep_features(op: RecurrentOp, cases: Sequence[SweepCase]) -> dict[str, list[bool]]:
    """For each option of a sweep, whether each case has it."""
    features = {
        "layout 1": [c.attrs.get("layout", 0) == 1 for c in cases],
        "float64": [c.inputs["X"].dtype == np.float64 for c in cases],
        "clip": ["clip" in c.attrs for c in cases],
        "activations": ["activations" in c.attrs for c in cases],
        "all outputs": [c.outputs == op.outputs for c in cases],
        "hidden_size": ["hidden_size" in c.attrs for c in cases],
        **{name: [c.inputs[name] is not None for c in cases] for name in op.inputs[3:]},
    }
    if op.flag:
        features[op.flag] = [c.attrs.get(op.flag, 0) == 1 for c in cases]
    return features


# --- a 2-layer bidirectional graph, as torch's nn.LSTM/GRU/RNN(num_layers=2) exports it ------


def two_layer_model(op: RecurrentOp, layers: Sequence[dict[str, np.ndarray]], attrs: Sequence[dict], hidden: int) -> onnx.ModelProto:
    """X [T, N, F] and the initial states [2, N, H] of layer 1 -> Y [T, 2, N, H] and Y_h of layer
    2 (weights ``layers[k]``, attributes ``attrs[k]``); layer 2 reads layer 1's Y with both
    directions' units side by side."""
    initializers = [numpy_helper.from_array(value, f"{name}{k}") for k, layer in enumerate(layers) for name, value in layer.items()]
    initializers.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape"))
    bidirectional = {"direction": "bidirectional", "hidden_size": hidden}
    nodes = [
        helper.make_node(op.name, ["X", "W0", "R0", "B0", "", *op.states], ["Y0"], **bidirectional, **attrs[0]),
        helper.make_node("Transpose", ["Y0"], ["Y0_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["Y0_t", "shape"], ["X1"]),
        helper.make_node(op.name, ["X1", "W1", "R1", "B1"], ["Y", "Y_h"], **bidirectional, **attrs[1]),
    ]
    features = layers[0]["W"].shape[2]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", features])]
    inputs += [helper.make_tensor_value_info(state, TensorProto.FLOAT, [2, "N", hidden]) for state in op.states]
    outputs = [
        helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 2, "N", hidden]),
        helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [2, "N", hidden]),
    ]
    graph = helper.make_graph(nodes, f"{op.name.lower()}2", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def two_layer_reference(
    op: RecurrentOp, layers: Sequence[dict[str, np.ndarray]], attrs: Sequence[dict], inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Both layers of :func:`two_layer_model` through the numpy reference."""
    states = {state: inputs[state] for state in op.states}
    y0 = op.reference(inputs["X"], **layers[0], **states, direction="bidirectional", **attrs[0])[0]
    steps, _, batch, hidden = y0.shape
    x1 = y0.transpose(0, 2, 1, 3).reshape(steps, batch, 2 * hidden)
    y, y_h = op.reference(x1, **layers[1], direction="bidirectional", **attrs[1])[:2]
    return {"Y": y, "Y_h": y_h}


# --- PyTorch ----------------------------------------------------------------------------------


class TorchRecurrent(torch.nn.Module):
    """``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` returning (output, h_n[, c_n]), with or without
    initial states."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = (states if len(states) > 1 else states[0]) if states else None
        output, final = self.layer(x, given)
        return (output, *final) if isinstance(final, tuple) else (output, final)


def export_torch(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    names: Sequence[str],
    batch_first: bool,
    output_names: Sequence[str] = TORCH_OUTPUTS[:2],
) -> onnx.ModelProto:
    """``module(x, *states) -> (output, *final states)`` exported by the legacy exporter at opset
    17 with dynamic batch and time."""
    time_batch = {1: "time", 0: "batch"} if batch_first else {0: "time", 1: "batch"}
    dynamic_axes = {name: {1: "batch"} for name in (*names[1:], *output_names[1:])}
    dynamic_axes.update({name: time_batch for name in ("x", "output") if name in (*names, *output_names)})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, buffer, dynamo=False, opset_version=17, input_names=list(names),
            output_names=list(output_names), dynamic_axes=dynamic_axes,
        )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def onnx_gates(op: RecurrentOp, weight: torch.Tensor) -> np.ndarray:
    """A PyTorch weight or bias (gate blocks in PyTorch's order) in ONNX's gate order."""
    blocks = np.split(weight.detach().numpy(), op.gates)
    return np.concatenate([blocks[k] for k in op.torch_gates])
