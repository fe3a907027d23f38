"""The Slice and Reshape handlers (``custom_ops/handlers/slice.py``, ``reshape.py``): onnx's
official node tests, and the same ops compiled with XLA (where onnx-tf's shape-derived bounds
came out wrong, or were not compile-time constants)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case

import custom_ops

custom_ops.register()  # onnx-tf needs the compat shims before a handler module is imported

from custom_ops.handlers.reshape import reshape  # noqa: E402
from custom_ops.handlers.slice import static_slice  # noqa: E402


@pytest.mark.parametrize("folder", official_node_tests("test_slice"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps"),
    [
        ([0], [2], [0], None),  # an LSTM's initial state of layer 1 from torch's [layers*D, B, H] zeros
        ([2], [4], [0], None),
        ([-1, 2**63 - 1], [-(2**63), 0], [1, -1], [-1, -2]),  # open ends, negative steps and axes
        ([1, 0], [1000, 2], None, [2, 1]),
    ],
)
def test_static_bounds_compile_under_xla(starts, ends, axes, steps) -> None:
    """Slicing a tensor whose leading size is only known at run time, in a function compiled with
    XLA, gives numpy's slice (the same Python slice semantics, written independently here)."""
    x = np.arange(4 * 3 * 5, dtype=np.float32).reshape(4, 3, 5)
    index = [slice(None)] * 3
    for k, (start, end) in enumerate(zip(starts, ends)):
        axis = (axes[k] if axes is not None else k) % 3
        index[axis] = slice(max(min(start, 2**31), -(2**31)), max(min(end, 2**31), -(2**31)), steps[k] if steps else 1)
    want = x[tuple(index)]
    bounds = [np.array(v, np.int64) if v is not None else None for v in (starts, ends, axes, steps)]

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, 3, 5])])
    def compiled(t: tf.Tensor) -> tf.Tensor:
        return static_slice(t, *bounds)

    np.testing.assert_array_equal(compiled(tf.constant(x)).numpy(), want)


@pytest.mark.parametrize("folder", official_node_tests("test_reshape"), ids=lambda p: p.name)
def test_reshape_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


@pytest.mark.parametrize(("target", "want_shape"), [([0, 0, -1], (2, 3, 20)), ([-1, 0], (40, 3)), ([0, 3, 2, 10], (2, 3, 2, 10))])
def test_reshape_with_copied_dims_compiles_under_xla(target, want_shape) -> None:
    """ONNX's 0 (copy the input's size) in a function compiled with XLA, batch dynamic; numpy's
    reshape with the zeros replaced by hand is the reference."""
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, 3, 4, 5])])
    def compiled(t: tf.Tensor) -> tf.Tensor:
        return reshape(t, tf.constant(target, tf.int64))

    np.testing.assert_array_equal(compiled(tf.constant(x)).numpy(), x.reshape(want_shape))
