"""Squeeze / Unsqueeze (axes as attribute, constant input or run-time input) and Where
through onnx-tf + custom_ops, against onnx's node tests, numpy references and PyTorch."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import tensorflow as tf
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_onnx_tf, run_test_case
from reference.squeeze import Squeeze as SqueezeReference
from reference.unsqueeze import Unsqueeze as UnsqueezeReference
from reference.where import Where as WhereReference

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.squeeze import Squeeze  # noqa: E402
from custom_ops.handlers.unsqueeze import Unsqueeze  # noqa: E402
from custom_ops.handlers.where import Where  # noqa: E402


@pytest.mark.parametrize(
    "folder", official_node_tests("test_squeeze", "test_unsqueeze", "test_where"), ids=lambda p: p.name
)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


@pytest.mark.parametrize(
    ("op_type", "handler", "opsets"),
    [
        ("Squeeze", Squeeze, [1, 11, 13, 17, 21, 23]),
        ("Unsqueeze", Unsqueeze, [1, 11, 13, 17, 21, 23]),
        ("Where", Where, [9, 16, 17, 23]),
    ],
)
def test_onnx_tf_dispatches_to_our_handler(op_type: str, handler: type, opsets: list[int]) -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset in opsets:
        dispatched = get_all_backend_handlers({"": opset})[""][op_type]
        assert dispatched is handler, (op_type, opset)
        assert hasattr(dispatched, f"version_{dispatched.SINCE_VERSION}"), (op_type, opset)


# --- axes as attribute, constant input, or run-time input -----------------------------------

AXES_SOURCES = ["attribute", "initializer", "constant_node", "graph_input", "computed"]


def _axes_model(
    op_type: str,
    x_shape: list[int | None],
    axes: list[int] | None,
    source: str,
    y_shape: list[int | None],
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A model applying ``op_type`` with ``axes`` delivered by ``source``; returns the extra
    feeds the model needs (the run-time axes).

    ``computed`` axes are ``Add(axes_in - 1, ones)``: not foldable when the graph is traced.
    """
    opset = 11 if source == "attribute" else 17
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)
    nodes, inputs, initializers, feeds = [], [x], [], {}
    node_inputs = ["x"]
    attrs = {}
    if axes is not None:
        axes_array = np.array(axes, dtype=np.int64)
        if source == "attribute":
            attrs["axes"] = axes
        elif source == "initializer":
            initializers.append(numpy_helper.from_array(axes_array, "axes"))
            node_inputs.append("axes")
        elif source == "constant_node":
            value = numpy_helper.from_array(axes_array)
            nodes.append(helper.make_node("Constant", [], ["axes"], value=value))
            node_inputs.append("axes")
        elif source == "graph_input":
            inputs.append(helper.make_tensor_value_info("axes", TensorProto.INT64, [len(axes)]))
            feeds["axes"] = axes_array
            node_inputs.append("axes")
        else:
            inputs.append(helper.make_tensor_value_info("axes_in", TensorProto.INT64, [len(axes)]))
            initializers.append(numpy_helper.from_array(np.ones(len(axes), dtype=np.int64), "ones"))
            nodes.append(helper.make_node("Add", ["axes_in", "ones"], ["axes"]))
            feeds["axes_in"] = axes_array - 1
            node_inputs.append("axes")
    nodes.append(helper.make_node(op_type, node_inputs, ["y"], **attrs))
    graph = helper.make_graph(nodes, op_type.lower(), inputs, [y], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model, feeds


SQUEEZE_CASES = [
    ((1, 3, 1, 5), [0]),
    ((1, 3, 1, 5), [2, 0]),
    ((1, 3, 1, 5), [-2]),
    ((3, 1, 1), [-1, 1]),
    ((1,), [0]),
    ((1, 3, 1, 5), None),
    ((1, 1), None),
]


@pytest.mark.parametrize(
    ("shape", "axes", "source"),
    [
        (shape, axes, source)
        for shape, axes in SQUEEZE_CASES
        # no axes: the attribute left out (opset 11) or the optional input left out (opset 17)
        for source in (AXES_SOURCES if axes is not None else ["attribute", "no_axes_input"])
    ],
    ids=str,
)
def test_squeeze(shape: tuple[int, ...], axes: list[int] | None, source: str) -> None:
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    expected = SqueezeReference.run(x, axes)
    model, feeds = _axes_model("Squeeze", list(shape), axes, source, list(expected.shape))
    run_test_case(model, {"x": x, **feeds}, {"y": expected})


UNSQUEEZE_CASES = [
    ((3, 4), [0]),
    ((3, 4), [2]),
    ((3, 4), [-1]),
    ((3, 4), [3, 0]),
    ((3, 4), [-1, 1, -5]),
    ((), [0, 1]),
]


@pytest.mark.parametrize("source", AXES_SOURCES)
@pytest.mark.parametrize(("shape", "axes"), UNSQUEEZE_CASES, ids=str)
def test_unsqueeze(shape: tuple[int, ...], axes: list[int], source: str) -> None:
    x = np.asarray(np.random.default_rng(len(shape)).standard_normal(shape), dtype=np.float32)
    expected = UnsqueezeReference.run(x, axes)
    model, feeds = _axes_model("Unsqueeze", list(shape), axes, source, list(expected.shape))
    run_test_case(model, {"x": x, **feeds}, {"y": expected})


@pytest.mark.parametrize("op_type", ["Squeeze", "Unsqueeze"])
def test_run_time_axes_with_dynamic_dims_keep_the_rank(op_type: str) -> None:
    """x declared ``[None, 3, None]``; the output's rank is known after tracing, so later
    handlers that need a static rank still work; two shapes go through one graph."""
    axes, y_shape = ([-1], [None, 3]) if op_type == "Squeeze" else ([1, -1], [None, 1, 3, None, 1])
    model, feeds = _axes_model(op_type, [None, 3, None], axes, "graph_input", y_shape)
    from onnx_tf.backend import prepare

    rep = prepare(model)
    concrete = rep.tf_module.__call__.get_concrete_function(
        x=tf.TensorSpec([None, 3, None], tf.float32), axes=tf.TensorSpec([len(axes)], tf.int64)
    )
    assert concrete.structured_outputs["y"].shape.rank == (2 if op_type == "Squeeze" else 5)
    reference = SqueezeReference if op_type == "Squeeze" else UnsqueezeReference
    for shape in [(2, 3, 1), (5, 3, 1)]:
        x = np.random.default_rng(shape[0]).standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(rep.run({"x": x, **feeds})["y"], reference.run(x, axes))


def test_squeeze_rejects_a_run_time_axis_that_is_not_1() -> None:
    model, feeds = _axes_model("Squeeze", [1, 3, 5], [1], "graph_input", [1, 5])
    with pytest.raises(tf.errors.InvalidArgumentError, match="not 1"):
        run_onnx_tf(model, {"x": np.zeros((1, 3, 5), np.float32), **feeds})


def test_unsqueeze_rejects_repeated_constant_axes() -> None:
    model, _ = _axes_model("Unsqueeze", [3, 4], [1, -3], "initializer", [3, 1, 4])
    with pytest.raises(ValueError, match="invalid axes"):
        run_onnx_tf(model, {"x": np.zeros((3, 4), np.float32)})


# --- Where ---------------------------------------------------------------------------------

WHERE_SHAPES = [
    ((2, 3), (2, 3), (2, 3)),
    ((3,), (2, 3), (1,)),
    ((2, 1, 4), (3, 1), ()),
    ((), (2, 2), (2, 2)),
]


@pytest.mark.parametrize("opset", [9, 16])
@pytest.mark.parametrize(
    ("dtype", "onnx_type"), [(np.float32, TensorProto.FLOAT), (np.int64, TensorProto.INT64)]
)
@pytest.mark.parametrize("shapes", WHERE_SHAPES, ids=lambda s: "-".join(map(str, s)).replace(" ", ""))
def test_where(shapes: tuple[tuple[int, ...], ...], dtype: type, onnx_type: int, opset: int) -> None:
    rng = np.random.default_rng(sum(map(len, shapes)))
    condition = np.asarray(rng.integers(0, 2, shapes[0]), dtype=bool)
    x = np.asarray(rng.standard_normal(shapes[1]) * 10, dtype=dtype)
    y = np.asarray(rng.standard_normal(shapes[2]) * 10, dtype=dtype)
    graph = helper.make_graph(
        [helper.make_node("Where", ["condition", "x", "y"], ["z"])],
        "where",
        [
            helper.make_tensor_value_info("condition", TensorProto.BOOL, shapes[0]),
            helper.make_tensor_value_info("x", onnx_type, shapes[1]),
            helper.make_tensor_value_info("y", onnx_type, shapes[2]),
        ],
        [helper.make_tensor_value_info("z", onnx_type, np.broadcast_shapes(*shapes))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    expected = WhereReference.run(condition, x, y)
    run_test_case(model, {"condition": condition, "x": x, "y": y}, {"z": expected})


# --- PyTorch ------------------------------------------------------------------------------


class _ShapeOps(torch.nn.Module):
    """unsqueeze, squeeze and torch.where with broadcasting, on dynamic batch and time."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(1)  # [B, 1, T]
        h = torch.where(gate.unsqueeze(-1) > 0, h, -0.5 * h)  # gate [B, 1] -> [B, 1, 1]
        return h.squeeze(1) + x.unsqueeze(-1).squeeze(-1)


@pytest.mark.parametrize("opset", [13, 16, 17])
def test_torch_export(opset: int) -> None:
    module = _ShapeOps()
    generator = torch.Generator().manual_seed(opset)
    x, gate = torch.randn(3, 7, generator=generator), torch.randn(3, 1, generator=generator)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (x, gate),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["x", "gate"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "time"}, "gate": {0: "batch"}},
        )
    model = onnx.load_from_string(buffer.getvalue())
    assert {"Squeeze", "Unsqueeze", "Where"} <= {n.op_type for n in model.graph.node}
    for batch, time in [(3, 7), (2, 11)]:
        x, gate = torch.randn(batch, time, generator=generator), torch.randn(batch, 1, generator=generator)
        run_test_case(model, {"x": x.numpy(), "gate": gate.numpy()}, {"y": module(x, gate).numpy()})
