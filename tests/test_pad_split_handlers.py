"""Pad (to opset 23: constant, reflect, edge, wrap, axes, negative pads) and Split (13, 18)
through onnx-tf + custom_ops, against onnx's node tests, numpy references and PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case
from reference.pad import Pad as PadReference
from reference.pad import Split as SplitReference
from torch_onnx import export

from benchmarks.node_suite import run_graph_module

NODE_TESTS = [
    f
    for f in official_node_tests(
        "test_constant_pad", "test_edge_pad", "test_reflect_pad", "test_wrap_pad", "test_split_"
    )
    if not f.name.startswith("test_split_to_sequence")
]


@pytest.mark.parametrize("folder", NODE_TESTS, ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


def _pad_model(rank: int, pads_source: str, opset: int, axes: list[int] | None, **attrs):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * rank)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inputs, initializers, names = [x], [], ["x", "pads", "value"]
    if pads_source == "graph_input":
        inputs.append(helper.make_tensor_value_info("pads", TensorProto.INT64, [None]))
    initializers.append(numpy_helper.from_array(np.array(2.5, np.float32), "value"))
    if axes is not None:
        initializers.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
        names.append("axes")
    node = helper.make_node("Pad", names, ["y"], **attrs)
    graph = helper.make_graph([node], "pad", inputs, [y], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


PAD_CASES = [
    ("constant", [1, 0, 2, 0, 3, 1], None),
    ("constant", [0, -1, 2, 1, 0, -2], None),
    ("reflect", [0, 2, 1, 0, 3, 2], None),
    ("edge", [1, 4, 0, 2, 0, 5], None),
    ("wrap", [0, 1, 7, 0, 2, 3], None),
    ("reflect", [2, 1, 3, 0], [2, -2]),
    ("edge", [3, 2], [-1]),
]


@pytest.mark.parametrize("pads_source", ["initializer", "graph_input"])
@pytest.mark.parametrize(("mode", "pads", "axes"), PAD_CASES, ids=str)
def test_pad_matches_reference(mode: str, pads: list[int], axes, pads_source: str) -> None:
    x = np.random.default_rng(len(pads)).standard_normal((2, 4, 5)).astype(np.float32)
    full = list(pads)
    if axes is not None:
        full = [0] * 6
        for i, axis in enumerate(axes):
            full[axis % 3], full[3 + axis % 3] = pads[i], pads[len(axes) + i]
    model = _pad_model(3, pads_source, 19, axes, mode=mode)
    feeds = {"x": x}
    if pads_source == "graph_input":
        feeds["pads"] = np.array(pads, np.int64)
    else:
        graph = model.graph
        graph.initializer.append(numpy_helper.from_array(np.array(pads, np.int64), "pads"))
    want = PadReference.run(x, full, mode, 2.5)
    got = run_graph_module(model, feeds)["y"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_torch_pad(mode: str, opset: int) -> None:
    class _Pad(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (
                F.pad(x, (2, 3), mode=mode, value=0.5)
                if mode == "constant"
                else F.pad(x, (2, 3), mode=mode)
            )

    module = _Pad()
    generator = torch.Generator().manual_seed(opset)
    model = export(
        module, (torch.randn(1, 3, 6, generator=generator),), opset, {"x0": {0: "b", 2: "t"}}
    )
    for shape in [(1, 3, 6), (2, 3, 9)]:
        x = torch.randn(*shape, generator=generator)
        np.testing.assert_array_equal(
            run_graph_module(model, {"x0": x.numpy()})["y"], module(x).numpy()
        )


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize(("sizes", "parts"), [([2, 3, 1], 3), (None, 2), (None, 3)], ids=str)
def test_split_matches_reference(sizes: list[int] | None, parts: int, opset: int) -> None:
    length = 6 if sizes else 7
    if sizes is None and opset < 18 and length % parts:
        length = 6  # equal parts only, before num_outputs
    x = np.random.default_rng(parts).standard_normal((2, length)).astype(np.float32)
    outputs = [f"y{i}" for i in range(parts)]
    attrs, names, initializers = {"axis": -1}, ["x"], []
    if sizes is not None and opset < 13:
        attrs["split"] = sizes
    elif sizes is not None:
        initializers.append(numpy_helper.from_array(np.array(sizes, np.int64), "split"))
        names.append("split")
    elif opset >= 18:
        attrs["num_outputs"] = parts
    chunk = -(-length // parts)
    want_sizes = sizes or [chunk] * (parts - 1) + [length - chunk * (parts - 1)]
    node = helper.make_node("Split", names, outputs, **attrs)
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, None])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    graph = helper.make_graph([node], "split", [value], outs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    got = run_graph_module(model, {"x": x})
    for name, want in zip(outputs, SplitReference.run(x, want_sizes, axis=1)):
        np.testing.assert_array_equal(got[name], want)


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_torch_split(opset: int) -> None:
    class _Split(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b, c = torch.split(x, [1, 3, 2], dim=1)
            d, e = torch.chunk(x, 2, dim=1)
            return torch.cat([c, a, b], dim=1) * 2 + torch.cat([e, d], dim=1)

    module = _Split()
    x = torch.randn(2, 6, 5)
    model = export(module, (x,), opset, {"x0": {0: "b", 2: "t"}})
    for shape in [(2, 6, 5), (1, 6, 8)]:
        x = torch.randn(*shape)
        np.testing.assert_allclose(
            run_graph_module(model, {"x0": x.numpy()})["y"], module(x).numpy()
        )
