"""LpPool (opsets 1 to 22) through onnx-tf + custom_ops, against onnx's node tests, a numpy
reference (``tests/reference/pool.py``) and onnxruntime, in graph mode and compiled with XLA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case, run_xla_module
from reference.pool import Pool as PoolReference

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.lp_pool import LpPool  # noqa: E402 (after register(), as said above)


@pytest.mark.parametrize("folder", official_node_tests("test_lppool"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-5, rtol=1e-5)


def test_onnx_tf_dispatches_to_our_handler() -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset, since in [(1, 1), (2, 2), (11, 11), (17, 11), (18, 18), (21, 18), (22, 22), (23, 22)]:
        dispatched = get_all_backend_handlers({"": opset})[""]["LpPool"]
        assert dispatched is LpPool, opset
        assert dispatched.SINCE_VERSION == since and hasattr(dispatched, f"version_{since}"), opset


def _model(x_shape: list[int | None], opset: int, **attrs) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("LpPool", ["x"], ["y"], **attrs)],
        "lppool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(x_shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


# (attrs) with ceil_mode and dilations (18 on), every auto_pad, explicit pads, 1-D to 3-D
CASES = [
    {"kernel_shape": [3], "strides": [2], "dilations": [2], "pads": [2, 1], "ceil_mode": 1, "p": 3},
    {"kernel_shape": [2, 3], "strides": [2, 2], "dilations": [2, 1], "pads": [1, 0, 0, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_UPPER", "p": 1},
    {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_LOWER", "p": 4},
    {"kernel_shape": [2, 3], "strides": [3, 1], "auto_pad": "VALID"},
    {"kernel_shape": [2, 2, 3], "strides": [2, 1, 2], "pads": [1, 0, 1, 0, 1, 1], "ceil_mode": 1, "p": 3},
]


def _input(attrs: dict, batch: int = 2) -> np.ndarray:
    rank = len(attrs["kernel_shape"])
    shape = [batch, 3, 7, 8, 5][: 2 + rank]
    return np.random.default_rng(rank + batch).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("opset", [18, 22])
@pytest.mark.parametrize("attrs", CASES, ids=str)
def test_matches_reference_and_onnxruntime(attrs: dict, opset: int) -> None:
    x = _input(attrs)
    model = _model([None] * x.ndim, opset, **attrs)
    want = PoolReference.run(x, "lp", **attrs)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, atol=1e-5, rtol=1e-5)
    run_test_case(model, {"x": x}, {"y": want}, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("opset", "p"), [(1, 3.0), (1, None), (2, 3), (11, None)])
def test_versions_before_18(opset: int, p: float | int | None) -> None:
    """Version 1 takes a float ``p`` (default 2.0), 2 and 11 an int (default 2)."""
    attrs = {"kernel_shape": [2, 3], "strides": [1, 2], "pads": [1, 1, 0, 1]}
    if p is not None:
        attrs["p"] = p
    x = _input(attrs)
    want = PoolReference.run(x, "lp", **attrs)
    run_test_case(_model([None, 3, None, None], opset, **attrs), {"x": x}, {"y": want}, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attrs", CASES[:2], ids=str)
def test_compiles_under_xla(attrs: dict) -> None:
    """The ``serving_xla`` path, at two batch sizes of one dynamic signature."""
    for batch in (1, 3):
        x = _input(attrs, batch)
        got = run_xla_module(_model([None] * x.ndim, 22, **attrs), {"x": x})["y"]
        np.testing.assert_allclose(got, PoolReference.run(x, "lp", **attrs), atol=1e-5, rtol=1e-5)
