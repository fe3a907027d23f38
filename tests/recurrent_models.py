"""Models and random cases for the GRU and RNN handler tests: one ONNX node with dynamic batch
and time, a seeded random sweep of its options, and exported ``nn.GRU``/``nn.RNN`` models."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

INPUT_NAMES = ("X", "W", "R", "B", "sequence_lens", "initial_h")
OUTPUT_NAMES = ("Y", "Y_h")
OUTPUT_SUBSETS = [("Y", "Y_h"), ("Y",), ("", "Y_h")]
DIRECTIONS = ("forward", "reverse", "bidirectional")
ACTIVATIONS = (
    "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
    "HardSigmoid", "Elu", "Softsign", "Softplus",
)  # fmt: skip
# Bounded by 1 in magnitude for alpha <= 1: as a gate function they keep the state bounded.
BOUNDED_ACTIVATIONS = ("Sigmoid", "HardSigmoid", "Tanh", "Softsign", "ScaledTanh")


def elem_type(dtype: np.dtype) -> int:
    if dtype == ml_dtypes.bfloat16:  # onnx's helper knows no numpy bfloat16
        return TensorProto.BFLOAT16
    return helper.np_dtype_to_tensor_dtype(dtype)


def node_model(
    op: str,
    inputs: dict[str, np.ndarray | None],
    attrs: dict,
    outputs: Sequence[str] = OUTPUT_NAMES,
    opset: int = 22,
) -> onnx.ModelProto:
    """One GRU or RNN node whose given inputs are all graph inputs; batch and time are dynamic."""
    names = [name if inputs.get(name) is not None else "" for name in INPUT_NAMES]
    while not names[-1]:
        names.pop()
    layout = attrs.get("layout", 0)
    dims = {
        "X": ["N", "T", None] if layout else ["T", "N", None],
        "sequence_lens": ["N"],
        "initial_h": [None, "N", None] if layout == 0 else ["N", None, None],
    }
    graph_inputs = []
    for name in filter(None, names):
        array = inputs[name]
        shape = [d if d is not None else s for d, s in zip(dims.get(name, array.shape), array.shape)]
        graph_inputs.append(helper.make_tensor_value_info(name, elem_type(array.dtype), shape))
    elem = elem_type(inputs["X"].dtype)
    graph_outputs = [
        helper.make_tensor_value_info(name, elem, [None] * (4 if name == "Y" else 3))
        for name in outputs
        if name
    ]
    node = helper.make_node(op, names, list(outputs), name=op.lower(), **attrs)
    graph = helper.make_graph([node], op.lower(), graph_inputs, graph_outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@dataclass(frozen=True)
class SweepCase:
    """One random GRU (``gates=3``) or RNN (``gates=1``) node with its inputs; ``index`` fixes
    direction, layout and the requested outputs so that a sweep covers every combination of
    the first two."""

    index: int
    opset: int
    attrs: dict
    inputs: dict
    outputs: tuple[str, ...]

    @classmethod
    def make(cls, index: int, gates: int, seed: int) -> SweepCase:
        rng = np.random.default_rng(seed + index)
        direction = DIRECTIONS[index % 3]
        layout = (index // 3) % 2
        dirs = 2 if direction == "bidirectional" else 1
        dtype = np.float64 if index % 5 == 4 else np.float32
        steps, batch = int(rng.integers(1, 81)), int(rng.integers(1, 6))
        features, hidden = int(rng.integers(1, 17)), int(rng.integers(1, 49))
        scale = 1 / np.sqrt(hidden)

        def uniform(*shape: int) -> np.ndarray:
            return rng.uniform(-scale, scale, shape).astype(dtype)

        def maybe(value: np.ndarray) -> np.ndarray | None:
            return value if rng.random() < 0.5 else None

        state_shape = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
        inputs = {
            "X": rng.normal(size=(batch, steps, features) if layout else (steps, batch, features)).astype(dtype),
            "W": uniform(dirs, gates * hidden, features),
            "R": uniform(dirs, gates * hidden, hidden),
            "B": maybe(uniform(dirs, 2 * gates * hidden)),
            "sequence_lens": maybe(rng.integers(1, steps + 1, batch).astype(np.int32)),
            "initial_h": maybe(rng.normal(size=state_shape).astype(dtype)),
        }
        attrs: dict = {"hidden_size": hidden} if rng.random() < 0.8 else {}  # else from R
        if direction != "forward" or rng.random() < 0.5:
            attrs["direction"] = direction
        if layout or rng.random() < 0.3:
            attrs["layout"] = layout
        # Float attributes are float32 in ONNX: the reference must see the rounded values.
        if rng.random() < 0.4:
            attrs["clip"] = float(np.float32(rng.uniform(0.5, 3.0)))
        if gates == 3 and (index % 2 or rng.random() < 0.3):
            attrs["linear_before_reset"] = index % 2
        if rng.random() < 0.5:
            names = []
            for _ in range(dirs):
                if gates == 3:  # the gate function bounded, so that 1 - z stays sensible
                    names.append(str(rng.choice(BOUNDED_ACTIVATIONS)))
                names.append(str(rng.choice(ACTIVATIONS)))
            attrs["activations"] = names
            alphas = rng.uniform(0.2, 1.0, rng.integers(1, 5)).astype(np.float32)
            betas = rng.uniform(-0.5, 0.5, rng.integers(1, 5)).astype(np.float32)
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


def sweep_features(cases: Sequence[SweepCase]) -> dict[str, list[bool]]:
    """For each option of a sweep, whether each case has it."""
    return {
        "layout 1": [c.attrs.get("layout", 0) == 1 for c in cases],
        "float64": [c.inputs["X"].dtype == np.float64 for c in cases],
        "clip": ["clip" in c.attrs for c in cases],
        "activations": ["activations" in c.attrs for c in cases],
        "all outputs": [c.outputs == OUTPUT_NAMES for c in cases],
        "hidden_size": ["hidden_size" in c.attrs for c in cases],
        **{name: [c.inputs[name] is not None for c in cases] for name in INPUT_NAMES[3:]},
    }


def export_torch(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    names: Sequence[str],
    batch_first: bool,
    output_names: Sequence[str] = ("output", "h_n"),
) -> onnx.ModelProto:
    """``module(x, [h0]) -> (output, [h_n])`` exported by the legacy exporter at opset 17 with
    dynamic batch and time."""
    time_batch = {1: "time", 0: "batch"} if batch_first else {0: "time", 1: "batch"}
    dynamic_axes = {"x": time_batch, "output": time_batch, "h_n": {1: "batch"}}
    dynamic_axes.update({name: {1: "batch"} for name in names[1:]})
    dynamic_axes = {k: v for k, v in dynamic_axes.items() if k in (*names, *output_names)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, buffer, dynamo=False, opset_version=17, input_names=list(names),
            output_names=list(output_names), dynamic_axes=dynamic_axes,
        )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


class TorchRecurrent(torch.nn.Module):
    """``nn.GRU`` or ``nn.RNN`` returning (output, h_n), with or without an initial state."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layer(x, state[0] if state else None)
