"""One LSTM layer at AutoVC's sizes: our onnx-tf handler (both of its graph-mode recurrences,
and the while loop traced for XLA and compiled with ``jit_compile=True``) against onnxruntime's
LSTM and torch's ``nn.LSTM``, interleaved in one process.

The same weights (torch's, seed 0) go to all three: ONNX ``W, R, B`` for onnxruntime and the
handler, whose function is traced once for a dynamic ``[T, B, F]`` input as in a SavedModel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.runtime.devices import CPU_EP

from .common import Call, Stats, load_average, ort_session_options, paired_ratio, print_medians, timed_and_checked, torch_call

TORCH, ORT, TF_FUSED, TF_LOOP, TF_XLA = "torch", "onnxruntime", "tf_fused_op", "tf_while_loop", "tf_xla"
BACKEND_LABELS = {
    TORCH: "torch nn.LSTM",
    ORT: "onnxruntime LSTM",
    TF_FUSED: "handler: BlockLSTM op",
    TF_LOOP: "handler: while loop",
    TF_XLA: "handler: XLA",
}


@dataclass(frozen=True)
class Layer:
    """One LSTM layer: where AutoVC has it, input and hidden sizes, directions."""

    name: str
    inputs: int
    hidden: int
    bidirectional: bool


AUTOVC_LAYERS = (
    Layer("encoder.lstm layer 0", 512, 32, True),
    Layer("encoder.lstm layer 1", 64, 32, True),
    Layer("decoder.lstm1", 320, 512, False),
    Layer("decoder.lstm2 layer 0", 512, 1024, False),
    Layer("decoder.lstm2 layer 1", 1024, 1024, False),
)


def onnx_weights(module: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``nn.LSTM`` (one layer) -> ONNX ``W [D, 4H, F]``, ``R [D, 4H, H]``, ``B [D, 8H]``."""

    def onnx_gates(value: Any) -> np.ndarray:
        i, f, g, o = np.split(value.detach().numpy(), 4)  # torch i, f, g, o -> ONNX i, o, f, c
        return np.concatenate([i, o, f, g])

    suffixes = ["_l0", "_l0_reverse"] if module.bidirectional else ["_l0"]
    w = np.stack([onnx_gates(getattr(module, f"weight_ih{s}")) for s in suffixes])
    r = np.stack([onnx_gates(getattr(module, f"weight_hh{s}")) for s in suffixes])
    b = np.stack([
        np.concatenate([onnx_gates(getattr(module, f"bias_ih{s}")), onnx_gates(getattr(module, f"bias_hh{s}"))])
        for s in suffixes
    ])
    return w, r, b


def _lstm_node(layer: Layer) -> Any:
    from onnx import helper

    direction = "bidirectional" if layer.bidirectional else "forward"
    return helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=layer.hidden, direction=direction)


def _ort_session(layer: Layer, weights: tuple[np.ndarray, ...], threads: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [_lstm_node(layer)],
        "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", layer.inputs])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, n) for n, v in zip("WRB", weights)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), ort_session_options(threads), providers=[CPU_EP])


def _tf_function(layer: Layer, weights: tuple[np.ndarray, ...], variant: str) -> Callable[[Any], Any]:
    """The handler's computation for this node, traced for ``X [None, None, F]``: ``variant`` is
    :data:`TF_FUSED`, :data:`TF_LOOP` or :data:`TF_XLA` (the loop traced for XLA, compiled)."""
    import tensorflow as tf

    import custom_ops

    custom_ops.register()  # before importing onnx_tf: it needs the compatibility shims
    from onnx_tf.pb_wrapper import OnnxNode

    from custom_ops.handlers.lstm import _Config, lstm
    from custom_ops.lowering import lowering

    config = _Config.from_node(OnnxNode(_lstm_node(layer)))
    w, r, b = (tf.constant(v) for v in weights)
    signature = [tf.TensorSpec([None, None, layer.inputs], tf.float32)]
    target = "xla" if variant == TF_XLA else "graph"
    with lowering(target):
        traced = tf.function(
            lambda x: lstm(config, x, w, r, b, fused_op=variant == TF_FUSED)[0], input_signature=signature
        ).get_concrete_function()
    return tf.function(traced, jit_compile=variant == TF_XLA)


def handler_choice(layer: Layer) -> str:
    """The recurrence the handler picks for this layer by itself."""
    import tensorflow as tf

    from custom_ops.handlers.lstm import fused_op_pays

    w = tf.zeros([2 if layer.bidirectional else 1, 4 * layer.hidden, layer.inputs])
    return TF_FUSED if fused_op_pays(w, layer.hidden) else TF_LOOP


def run(layers: Sequence[Layer], batches: Sequence[int], steps: int, repeats: int, threads: int) -> dict[str, Any]:
    import torch

    rows = []
    for layer in layers:
        torch.manual_seed(0)
        module = torch.nn.LSTM(layer.inputs, layer.hidden, bidirectional=layer.bidirectional).eval()
        weights = onnx_weights(module)
        calls = {
            TORCH: torch_call(module, pick=lambda output: output[0]),
            ORT: _ort_call(_ort_session(layer, weights, threads)),
            **{name: _tf_call(_tf_function(layer, weights, name)) for name in (TF_FUSED, TF_LOOP, TF_XLA)},
        }
        for batch in batches:
            # every call: X [T, B, F] -> Y [T, B, D*H]
            x = np.random.default_rng(batch).normal(size=(steps, batch, layer.inputs)).astype(np.float32)
            times, errors = timed_and_checked(calls, x, repeats, reference=TORCH)
            chosen = handler_choice(layer)
            row = {
                "layer": layer.name,
                "inputs": layer.inputs,
                "hidden": layer.hidden,
                "bidirectional": layer.bidirectional,
                "batch": batch,
                "steps": steps,
                "handler_choice": chosen,
                "load_average": load_average(),
                "stats_ms": {name: Stats.of(t).to_json() for name, t in times.items()},
                "ratio_handler_over_ort": paired_ratio(times[chosen], times[ORT]),
                "ratio_handler_over_torch": paired_ratio(times[chosen], times[TORCH]),
                "ratio_fused_over_loop": paired_ratio(times[TF_FUSED], times[TF_LOOP]),
                "ratio_xla_over_ort": paired_ratio(times[TF_XLA], times[ORT]),
                "max_abs_vs_torch": errors,
            }
            rows.append(row)
            print_medians("lstm", f"{layer.name} B={batch} T={steps}", row["stats_ms"])
    return {"steps": steps, "rows": rows}


def _ort_call(session: Any) -> Call:
    def bind(x: np.ndarray) -> Callable[[], np.ndarray]:
        steps, batch = x.shape[:2]
        return lambda: session.run(["Y"], {"X": x})[0].transpose(0, 2, 1, 3).reshape(steps, batch, -1)

    return bind


def _tf_call(function: Callable[[Any], Any]) -> Call:
    import tensorflow as tf

    def bind(x: np.ndarray) -> Callable[[], np.ndarray]:
        steps, batch = x.shape[:2]
        x_tf = tf.constant(x)
        return lambda: function(x_tf).numpy().transpose(0, 2, 1, 3).reshape(steps, batch, -1)

    return bind
