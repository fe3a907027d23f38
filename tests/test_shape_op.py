"""Shape (with opset 15's start/end) through onnx-tf + custom_ops: onnx's node tests, a numpy
reference over a table of bounds, dynamic dimensions, and no AutoGraph on the way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from onnx import TensorProto, helper
from onnx_tf_harness import load_node_test, official_node_tests, run_onnx_tf, run_test_case
from reference.shape import Shape as ShapeReference

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.shape import Shape  # noqa: E402


@pytest.mark.parametrize("folder", official_node_tests("test_shape"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=0)


def test_onnx_tf_dispatches_to_our_handler() -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset in (1, 13, 15, 17, 19, 21, 23):
        dispatched = get_all_backend_handlers({"": opset})[""]["Shape"]
        assert dispatched is Shape, opset
        assert hasattr(dispatched, f"version_{dispatched.SINCE_VERSION}"), opset


# (start, end); None: attribute absent. Bounds past the rank, negative past the front, crossed.
BOUNDS = [(None, None), (1, None), (None, 2), (-1, None), (None, -1), (-2, -1), (0, 10), (-10, 2),
          (3, 1), (4, None), (None, -10), (2, 2)]  # fmt: skip


@pytest.mark.parametrize(("start", "end"), BOUNDS)
def test_start_and_end_against_the_reference(start: int | None, end: int | None) -> None:
    x = np.zeros((2, 3, 4, 5), np.float32)
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    node = helper.make_node("Shape", ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "shape", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = run_onnx_tf(model, {"x": x})["y"]
    expected = ShapeReference.run(x, start or 0, end)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_dynamic_dimensions_are_read_at_run_time_without_autograph(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.stages.tf_convert as tf_convert

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Shape went through the AutoGraph fallback")

    monkeypatch.setattr(tf_convert, "_node_ops_autograph", refuse)
    node = helper.make_node("Shape", ["x"], ["y"], start=1, end=-1)
    graph = helper.make_graph([node], "shape", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 80, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [None])])
    module = tf_convert.OnnxGraphModule(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    serving = module.serving_function()  # traced with N and T unknown
    for dims in ((1, 7, 80, 1), (3, 2, 80, 1)):
        got = serving(x=tf.zeros(dims))["y"].numpy()
        np.testing.assert_array_equal(got, ShapeReference.run(np.zeros(dims), 1, -1))
