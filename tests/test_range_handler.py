"""Range (11) through onnx-tf + custom_ops, against onnx's node tests and onnxruntime, with
scalar and one-element ``start``/``limit``/``delta`` (the latter as ONNX's own function bodies
pass them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx import helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case

# (the expanded variants build the range with a Loop, which fails as graph output here)
NODE_TESTS = [f for f in official_node_tests("test_range") if not f.name.endswith("_expanded")]


@pytest.mark.parametrize("folder", NODE_TESTS, ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


@pytest.mark.parametrize(
    ("start", "delta", "shape", "dtype"),
    [(1, 2, [1], np.int64), (10, -3, [1], np.int32), (0.5, 0.25, [1], np.float32), (2, 1, [], np.int64)],
    ids=str,
)
def test_one_element_bounds_match_onnxruntime(start, delta, shape: list[int], dtype: type) -> None:
    elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        [helper.make_node("Range", ["start", "limit", "delta"], ["y"])],
        "range",
        [helper.make_tensor_value_info("limit", elem_type, shape)],
        [helper.make_tensor_value_info("y", elem_type, [None])],
        initializer=[
            numpy_helper.from_array(np.full(shape, start, dtype), "start"),
            numpy_helper.from_array(np.full(shape, delta, dtype), "delta"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    limit = np.full(shape, 2 if delta < 0 else 7, dtype)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"limit": limit})[0]
    np.testing.assert_array_equal(want, np.arange(start, limit.item(), delta, dtype))
    run_test_case(model, {"limit": limit}, {"y": want})
