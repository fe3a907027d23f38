"""One convolution block at AutoVC's sizes (the encoder's and postnet's ``Conv1d(512, 512, 5)``
+ ``BatchNorm1d`` + ReLU): torch, onnxruntime, and the block converted by this project's
pipeline (torch -> ONNX -> :class:`~pipeline.stages.tf_convert.OnnxGraphModule`) as the
SavedModel's two signatures would run it, interleaved in one process.

The XLA profile puts most of what separates ``serving_xla`` from onnxruntime on one thread in
the 11 convolutions, so this section times that kernel alone, beside one other way to write it
for XLA: the five taps as one matrix product over gathered windows ("im2col"), the lowering that
onnxruntime's own CPU convolution uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.runtime.devices import CPU_EP

from .common import Call, Stats, load_average, ort_session_options, paired_ratio, print_medians, timed_and_checked, torch_call

TORCH, ORT, TF_GRAPH, TF_XLA, XLA_IM2COL = "torch", "onnxruntime", "tf_graph", "tf_xla", "xla_im2col"
BACKEND_LABELS = {
    TORCH: "torch eager",
    ORT: "onnxruntime",
    TF_GRAPH: "converted, graph mode",
    TF_XLA: "converted, XLA",
    XLA_IM2COL: "XLA, im2col + one dot",
}
CHANNELS, KERNEL = 512, 5


def conv_block(channels: int = CHANNELS, kernel: int = KERNEL) -> Any:
    """AutoVC's conv block, seeded, in eval mode (BatchNorm with non-trivial running stats)."""
    import torch

    torch.manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2),
        torch.nn.BatchNorm1d(channels),
        torch.nn.ReLU(),
    )
    with torch.no_grad():
        block[1].running_mean.uniform_(-0.5, 0.5)
        block[1].running_var.uniform_(0.5, 2.0)
    return block.eval()


def run(batches: Sequence[int], steps: int, repeats: int, threads: int,
        channels: int = CHANNELS, kernel: int = KERNEL) -> dict[str, Any]:
    import torch

    from pipeline.stages.onnx_export import export_to_bytes

    block = conv_block(channels, kernel)
    onnx_bytes = export_to_bytes(
        block, (torch.zeros(1, channels, 8),), opset=17, input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "batch", 2: "time"}, "y": {0: "batch", 2: "time"}},
    )
    calls = {TORCH: torch_call(block), ORT: _ort_call(onnx_bytes, threads), **_converted_calls(onnx_bytes),
             XLA_IM2COL: _im2col_call(block)}
    rows = []
    for batch in batches:
        x = np.random.default_rng(batch).normal(size=(batch, channels, steps)).astype(np.float32)  # every call: [B, C, T] -> [B, C, T]
        times, errors = timed_and_checked(calls, x, repeats, reference=TORCH)
        row = {
            "channels": channels,
            "kernel": kernel,
            "batch": batch,
            "steps": steps,
            "load_average": load_average(),
            "stats_ms": {name: Stats.of(t).to_json() for name, t in times.items()},
            "ratio_over_ort": {name: paired_ratio(times[name], times[ORT]) for name in times if name != ORT},
            "max_abs_vs_torch": errors,
        }
        rows.append(row)
        print_medians("conv", f"B={batch} T={steps}", row["stats_ms"])
    return {"steps": steps, "rows": rows}


def _ort_call(onnx_bytes: bytes, threads: int) -> Call:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, ort_session_options(threads), providers=[CPU_EP])
    return lambda x: lambda: session.run(["y"], {"x": x})[0]


def _converted_calls(onnx_bytes: bytes) -> dict[str, Call]:
    """The block through the pipeline's ONNX -> TF stage: the functions behind ``serving_default``
    and ``serving_xla`` (no length buckets: the block does not pad time itself)."""
    import onnx
    import tensorflow as tf

    from pipeline.stages.tf_convert import OnnxGraphModule

    module = OnnxGraphModule(onnx.load_from_string(onnx_bytes))
    functions = {TF_GRAPH: module.serving_function(), TF_XLA: module.xla_serving_function()}

    def call_of(function: Any) -> Call:
        def bind(x: np.ndarray) -> Callable[[], np.ndarray]:
            x_tf = tf.constant(x)
            return lambda: function(x=x_tf)["y"].numpy()

        return bind

    return {name: call_of(function) for name, function in functions.items()}


def _im2col_call(block: Any) -> Call:
    """The block written for XLA by hand: BatchNorm folded into the weights, the ``K`` shifted
    windows concatenated along channels, one ``[B*T, K*C] x [K*C, C]`` product."""
    import tensorflow as tf

    conv, norm = block[0], block[1]
    scale = (norm.weight / (norm.running_var + norm.eps).sqrt()).detach().numpy()
    weight = conv.weight.detach().numpy() * scale[:, None, None]  # [C_out, C_in, K]
    bias = (conv.bias.detach().numpy() - norm.running_mean.numpy()) * scale + norm.bias.detach().numpy()
    kernel = weight.shape[2]
    taps = tf.constant(np.transpose(weight, (2, 1, 0)).reshape(-1, weight.shape[0]))  # [K*C_in, C_out]
    bias_tf = tf.constant(bias.astype(np.float32))
    half = (kernel - 1) // 2

    @tf.function(jit_compile=True, autograph=False)
    def compiled(x: tf.Tensor) -> tf.Tensor:
        steps = tf.shape(x)[2]
        padded = tf.pad(tf.transpose(x, [0, 2, 1]), [[0, 0], [half, kernel - 1 - half], [0, 0]])
        windows = tf.concat([padded[:, k:k + steps, :] for k in range(kernel)], axis=2)
        return tf.transpose(tf.nn.relu(tf.einsum("btk,ko->bto", windows, taps) + bias_tf), [0, 2, 1])

    def bind(x: np.ndarray) -> Callable[[], np.ndarray]:
        x_tf = tf.constant(x)
        return lambda: compiled(x_tf).numpy()

    return bind
