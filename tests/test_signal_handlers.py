"""The opset-17/20 signal ops (DFT, STFT, Hann/Hamming/Blackman windows, MelWeightMatrix) through
onnx-tf + custom_ops, against onnx's node tests, numpy references and torch.stft's export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case
from reference import spectral
from torch_onnx import export

from benchmarks.node_suite import run_graph_module

PREFIXES = (
    "test_dft",
    "test_stft",
    "test_hannwindow",
    "test_hammingwindow",
    "test_blackmanwindow",
    "test_melweightmatrix",
)


@pytest.mark.parametrize("folder", official_node_tests(*PREFIXES), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-4, rtol=1e-4)


# (a symmetric window of one point divides by zero)
@pytest.mark.parametrize(
    ("size", "periodic"), [(s, p) for s in (1, 2, 9, 16) for p in (0, 1) if s > 1 or p], ids=str
)
@pytest.mark.parametrize("op_type", list(spectral.COSINES))
def test_windows_match_reference(op_type: str, size: int, periodic: int) -> None:
    node = helper.make_node(op_type, ["size"], ["y"], periodic=periodic)
    graph = helper.make_graph(
        [node],
        "window",
        [helper.make_tensor_value_info("size", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = run_graph_module(model, {"size": np.array(size, np.int64)})["y"]
    np.testing.assert_allclose(got, spectral.window(op_type, size, bool(periodic)), atol=1e-6)


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize(
    ("channels", "axis", "length", "inverse", "onesided"),
    [(1, 1, None, 0, 0), (2, 1, 12, 0, 0), (1, 2, 5, 0, 1), (2, 2, None, 1, 0), (1, 1, 16, 0, 1)],
    ids=str,
)
def test_dft_matches_reference(
    channels: int, axis: int, length, inverse: int, onesided: int, opset: int
) -> None:
    x = (
        np.random.default_rng(channels + axis)
        .standard_normal((2, 10, 7, channels))
        .astype(np.float32)
    )
    inputs = ["x", "length" if length else ""]
    initializers = (
        [numpy_helper.from_array(np.array(length or 0, np.int64), "length")] if length else []
    )
    attrs = {"inverse": inverse, "onesided": onesided}
    if opset == 17:
        attrs["axis"] = axis
    else:
        inputs.append("axis")
        initializers.append(numpy_helper.from_array(np.array(axis, np.int64), "axis"))
    graph = helper.make_graph(
        [helper.make_node("DFT", inputs, ["y"], **attrs)],
        "dft",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, None, channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    want = spectral.dft(x, axis, length, bool(inverse), bool(onesided))
    np.testing.assert_allclose(run_graph_module(model, {"x": x})["y"], want, atol=1e-5)


class _Spectrogram(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = torch.hann_window(16)
        return torch.stft(x, 16, hop_length=4, window=window, center=False, return_complex=False)


def test_torch_stft_export_matches_torch_and_reference() -> None:
    module = _Spectrogram()
    generator = torch.Generator().manual_seed(0)
    model = export(
        module, (torch.randn(2, 100, generator=generator),), 17, {"x0": {0: "b", 1: "t"}}
    )
    assert "STFT" in {n.op_type for n in model.graph.node}
    for shape in [(2, 100), (1, 131)]:
        x = torch.randn(*shape, generator=generator)
        got = run_graph_module(model, {"x0": x.numpy()})["y"]
        np.testing.assert_allclose(got, module(x).numpy(), atol=1e-5)
        window = spectral.window("HannWindow", 16, periodic=True)
        reference = spectral.stft(x.numpy().astype(np.float64), 4, window).transpose(0, 2, 1, 3)
        np.testing.assert_allclose(got, reference, atol=1e-5)


@pytest.mark.parametrize("length", [12, 17])
def test_stft_without_window_or_frame_length_takes_one_frame_of_the_whole_signal(length: int) -> None:
    """ONNX's reference implementation: frame_length defaults to the signal's length."""
    node = helper.make_node("STFT", ["signal", "step"], ["y"])
    graph = helper.make_graph(
        [node],
        "stft",
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [None, None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array(4, np.int64), "step")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(length).standard_normal((2, length, 1)).astype(np.float32)
    got = run_graph_module(model, {"signal": x})["y"]
    want = spectral.stft(x[..., 0].astype(np.float64), 4, np.ones(length))
    assert got.shape == (2, 1, length // 2 + 1, 2)
    np.testing.assert_allclose(got, want, atol=1e-5)
