"""Reduce* through onnx-tf + custom_ops (``prepare()`` and the `convert` graph module), against
onnx's node tests, a numpy reference and PyTorch: axes as attribute, constant input or run-time
input; missing or empty axes; ``keepdims``; ``noop_with_empty_axes``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case, run_xla_module
from reference.reduce import OPS
from reference.reduce import Reduce as ReduceReference
from torch_onnx import export

from benchmarks.node_suite import run_graph_module

NODE_TESTS = official_node_tests("test_reduce_")


def _compare(actual: dict, expected: dict, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=name)


@pytest.mark.parametrize("folder", NODE_TESTS, ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "folder",
    [f for f in NODE_TESTS if "empty_axes" in f.name or "default_axes" in f.name],
    ids=lambda p: p.name,
)
def test_official_node_test_through_convert(folder: Path) -> None:
    """Default and empty axes through the graph module (traced without AutoGraph)."""
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        _compare(run_graph_module(model, inputs), expected)


@pytest.mark.parametrize("op_type", OPS)
def test_onnx_tf_dispatches_to_our_handler(op_type: str) -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    import custom_ops

    custom_ops.register()
    for opset in (1, 11, 13, 17, 18, 20, 23):
        dispatched = get_all_backend_handlers({"": opset})[""][op_type]
        assert dispatched.__module__.startswith("custom_ops.handlers."), (op_type, opset)
        assert hasattr(dispatched, f"version_{dispatched.SINCE_VERSION}"), (op_type, opset)


# where the axes come from: the attribute (before the input version), an initializer, a graph
# input (only known when the graph runs), or nowhere
AXES_SOURCES = ["attribute", "initializer", "graph_input", "absent"]


def _reduce_model(
    op_type: str, rank: int, axes: list[int] | None, source: str, keepdims: int, noop: int
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    input_opset = 13 if op_type == "ReduceSum" else 18
    opset = 11 if source == "attribute" else input_opset
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * rank)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inputs, initializers, feeds, node_inputs = [x], [], {}, ["x"]
    attrs: dict = {"keepdims": keepdims}
    if source != "attribute":
        attrs["noop_with_empty_axes"] = noop
    if source == "attribute" and axes:  # (an empty list: the attribute left out)
        attrs["axes"] = axes
    elif source == "initializer":
        initializers.append(numpy_helper.from_array(np.array(axes, dtype=np.int64), "axes"))
        node_inputs.append("axes")
    elif source == "graph_input":
        inputs.append(helper.make_tensor_value_info("axes", TensorProto.INT64, [None]))
        feeds["axes"] = np.array(axes, dtype=np.int64)
        node_inputs.append("axes")
    node = helper.make_node(op_type, node_inputs, ["y"], **attrs)
    graph = helper.make_graph([node], "reduce", inputs, [y], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model, feeds


CASES = [
    (axes, source, keepdims, noop)
    for axes in ([1], [-1, 0], [0, 2, 1], [])
    for source in AXES_SOURCES
    for keepdims in (0, 1)
    for noop in ((0, 1) if source != "attribute" and not axes else (0,))
    if source != "absent" or not axes
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("op_type", OPS)
def test_matches_reference(op_type: str, case: tuple) -> None:
    axes, source, keepdims, noop = case
    x = np.random.default_rng(len(axes)).uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    model, feeds = _reduce_model(op_type, 3, axes, source, keepdims, noop)
    expected = {"y": ReduceReference.run(op_type, x, axes, keepdims, noop)}
    _compare(run_graph_module(model, {"x": x, **feeds}), expected)


class _TorchReductions(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (
            x.mean(dim=-1, keepdim=True)
            + x.sum()
            + x.amax(dim=1, keepdim=True).mean()
            + x.amin(dim=(0, 2)).sum()
            + torch.logsumexp(x, dim=1, keepdim=True)
            + x.norm(dim=-1, keepdim=True)
            + x.prod(dim=1, keepdim=True).sum()
        )


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_torch_export(opset: int) -> None:
    module = _TorchReductions()
    generator = torch.Generator().manual_seed(opset)
    model = export(
        module, (torch.rand(2, 3, 5, generator=generator),), opset, {"x0": {0: "b", 2: "t"}}
    )
    for shape in [(2, 3, 5), (1, 3, 9)]:
        x = torch.rand(*shape, generator=generator) + 0.5
        _compare(run_graph_module(model, {"x0": x.numpy()}), {"y": module(x).numpy()})


class _MeanThenLinear(torch.nn.Module):
    """A mean over time feeding a Linear (a speaker code from frames): the Gemm needs the rank."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=2))


@pytest.mark.parametrize("opset", [17, 18])
def test_constant_axes_input_keeps_the_rank(opset: int) -> None:
    """From opset 18 torch exports the axes as a Constant input: the reduced tensor must keep a
    known rank for the Gemm after it (it had none: 'as_list() is not defined on an unknown
    TensorShape')."""
    torch.manual_seed(0)
    module = _MeanThenLinear().eval()
    generator = torch.Generator().manual_seed(opset)
    model = export(module, (torch.rand(2, 3, 5, generator=generator),), opset, {"x0": {0: "b", 2: "t"}})
    x = torch.rand(3, 3, 7, generator=generator)
    with torch.no_grad():
        _compare(run_graph_module(model, {"x0": x.numpy()}), {"y": module(x).numpy()})


@pytest.mark.parametrize("noop", [0, 1])
@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceSum"])
def test_axes_computed_from_the_shape_compile_under_xla(op_type: str, noop: int) -> None:
    """Axes ``range(1, rank)`` computed in the graph from Shape (as RMSNormalization's expansion
    computes them) are compile-time constants for XLA: ``serving_xla`` reduces over those axes
    (it once reduced over every axis)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Size", ["shape"], ["rank"]),
        helper.make_node("Range", ["one", "rank", "one"], ["axes"]),
        helper.make_node(op_type, ["x", "axes"], ["y"], keepdims=1, noop_with_empty_axes=noop),
    ]
    graph = helper.make_graph(
        nodes,
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array(1, np.int64), "one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(noop).uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    expected = {"y": ReduceReference.run(op_type, x, [1, 2], 1, noop)}
    _compare(run_xla_module(model, {"x": x}), expected)
    _compare(run_graph_module(model, {"x": x}), expected)
