"""InstanceNormalization, GroupNormalization (18, 21), LayerNormalization (17) and
RMSNormalization (23) through onnx-tf + custom_ops, against onnx's node tests, a numpy
reference, PyTorch (its exports; ``F.rms_norm``) and onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case, run_xla_module
from reference.normalization import (
    GroupNormalization,
    InstanceNormalization,
    LayerNormalization,
    RMSNormalization,
)
from torch_onnx import export

from benchmarks.node_suite import run_graph_module

OPS = ("test_instancenorm", "test_group_normalization", "test_layer_normalization")


@pytest.mark.parametrize(
    "folder",
    [f for f in official_node_tests(*OPS) if not f.name.endswith("_expanded")],
    ids=lambda p: p.name,
)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-5, rtol=1e-5)


def _model(
    op_type: str,
    x_rank: int,
    weights: dict[str, np.ndarray],
    opset: int,
    outputs: tuple[str, ...] = ("y",),
    **attrs,
) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * x_rank)
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    node = helper.make_node(op_type, ["x", *weights], list(outputs), **attrs)
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    graph = helper.make_graph([node], op_type, [x], outs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _random(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("opset", [6, 17, 22])
@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 4, 5, 6), (2, 2, 3, 4, 5)], ids=str)
def test_instance_norm_matches_reference(shape: tuple[int, ...], opset: int) -> None:
    x, scale, bias = _random(shape, 1), _random(shape[1:2], 2), _random(shape[1:2], 3)
    model = _model(
        "InstanceNormalization", len(shape), {"s": scale, "b": bias}, opset, epsilon=1e-3
    )
    want = InstanceNormalization.run(x, scale, bias, 1e-3)
    np.testing.assert_allclose(run_graph_module(model, {"x": x})["y"], want, atol=1e-5)


@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize(("shape", "groups"), [((2, 6, 7), 3), ((1, 4, 5, 3), 2), ((2, 4, 5), 4)])
def test_group_norm_matches_reference(shape: tuple[int, ...], groups: int, opset: int) -> None:
    count = groups if opset == 18 else shape[1]
    x, scale, bias = _random(shape, 4), _random((count,), 5), _random((count,), 6)
    model = _model(
        "GroupNormalization", len(shape), {"s": scale, "b": bias}, opset, num_groups=groups
    )
    want = GroupNormalization.run(x, scale, bias, groups)
    np.testing.assert_allclose(run_graph_module(model, {"x": x})["y"], want, atol=1e-5)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("axis", [-1, 1, -2])
def test_layer_norm_matches_reference(axis: int, with_bias: bool) -> None:
    shape = (2, 3, 5)
    x, scale, bias = _random(shape, 7), _random(shape[axis:], 8), _random(shape[axis:], 9)
    weights = {"s": scale, "b": bias} if with_bias else {"s": scale}
    model = _model(
        "LayerNormalization", 3, weights, 17, ("y", "mean", "inv_std"), axis=axis, epsilon=1e-4
    )
    got = run_graph_module(model, {"x": x})
    want = LayerNormalization.run(x, scale, bias if with_bias else None, axis, 1e-4)
    for name, value in zip(("y", "mean", "inv_std"), want):
        np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=1e-5, err_msg=name)


class _Norms(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.instance = torch.nn.InstanceNorm1d(6, affine=True)
        self.group = torch.nn.GroupNorm(3, 6)
        self.layer = torch.nn.LayerNorm(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.group(self.instance(x))
        return self.layer(y.transpose(1, 2)).transpose(1, 2)


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_torch_export(opset: int) -> None:
    module = _Norms().eval()
    generator = torch.Generator().manual_seed(opset)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-1, 1, generator=generator)
    model = export(
        module, (torch.randn(1, 6, 9, generator=generator),), opset, {"x0": {0: "b", 2: "t"}}
    )
    for shape in [(1, 6, 9), (2, 6, 14)]:
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            want = module(x).numpy()
        np.testing.assert_allclose(run_graph_module(model, {"x0": x.numpy()})["y"], want, atol=1e-5)


@pytest.mark.parametrize("folder", official_node_tests("test_rms_normalization"), ids=lambda p: p.name)
def test_rms_norm_official_node_test(folder: Path) -> None:
    """The expanded variants too: their function body calls Range with one-element tensors."""
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "axis", "scale_shape"),
    [((2, 3, 5), -1, (5,)), ((2, 3, 5), 1, (3, 5)), ((2, 3, 5), -2, (1, 5)), ((2, 3, 4, 5), 0, (2, 3, 4, 5))],
    ids=str,
)
def test_rms_norm_matches_reference_torch_and_onnxruntime(shape: tuple[int, ...], axis: int, scale_shape) -> None:
    import onnxruntime

    x, scale = _random(shape, 10), _random(scale_shape, 11)
    model = _model("RMSNormalization", len(shape), {"s": scale}, 23, axis=axis, epsilon=1e-3)
    want = RMSNormalization.run(x, scale, axis, 1e-3)
    normalized = shape[axis % len(shape):]
    torch_y = torch.nn.functional.rms_norm(torch.from_numpy(x), normalized, torch.from_numpy(scale).expand(normalized), 1e-3)
    np.testing.assert_allclose(torch_y.numpy(), want, atol=1e-5, rtol=1e-5)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(run_graph_module(model, {"x": x})["y"], want, atol=1e-5, rtol=1e-5)


def test_rms_norm_of_float16_computes_in_float32() -> None:
    """stash_type=1 (the default): x^2 of float16 values around 300 overflows float16's 65504."""
    x = (300 + _random((2, 8), 12)).astype(np.float16)
    scale = np.ones(8, np.float16)
    graph = helper.make_graph(
        [helper.make_node("RMSNormalization", ["x", "s"], ["y"])],
        "rms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
        initializer=[numpy_helper.from_array(scale, "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    got = run_graph_module(model, {"x": x})["y"]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, RMSNormalization.run(x, scale), atol=2e-3)


@pytest.mark.parametrize("name", ["test_rms_normalization_3d_axis1_epsilon", "test_rms_normalization_3d_axis1_epsilon_expanded"])
def test_rms_norm_compiles_under_xla(name: str) -> None:
    """The op, and its expansion (Range of the rank, ReduceMean over those axes), in ``serving_xla``."""
    (folder,) = [f for f in official_node_tests(name) if f.name == name]
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        for output, want in expected.items():
            np.testing.assert_allclose(run_xla_module(model, inputs)[output], want, atol=1e-5, rtol=1e-5)
