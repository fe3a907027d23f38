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


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps"),
    [
        ([0], [32], [1], None),  # the first half of torch's chunk(2) of 64 channels
        ([32], [2**63 - 1], [1], None),  # the second half: an open end
        ([-3, 1], [-1, 100], [2, 0], [1, 2]),  # negative bounds, an end past the size, a step
        ([0, -100], [2, 3], None, None),  # default axes, a start before the beginning
    ],
)
def test_bounds_computed_in_the_graph(starts, ends, axes, steps, jit_compile) -> None:
    """Slice whose starts and ends are computed at run time (as torch's ``chunk`` exports them,
    from the input's Shape): numpy's slice of the same clamped bounds, in graph mode and under
    XLA. onnx-tf's implementation, which served these before, fails on axes out of order or
    defaulted ("indices ... out of order" from its SparseToDense) and, inside the AdaIN-VC model
    of tests/zoo, gave half of a 64-channel ``chunk`` a size XLA could not multiply with 32
    channels (``test_zoo.py``'s ``adain_vc`` cases)."""
    from onnx import helper
    from onnx_tf.pb_wrapper import OnnxNode

    from custom_ops.handlers.slice import Slice

    x = np.arange(3 * 64 * 5, dtype=np.float32).reshape(3, 64, 5)
    index = [slice(None)] * 3
    for k, (start, end) in enumerate(zip(starts, ends)):
        index[axes[k] if axes is not None else k] = slice(start, min(end, 2**31), steps[k] if steps else 1)
    want = x[tuple(index)]
    names = ["x", "starts", "ends"] + (["axes"] if axes is not None or steps is not None else [])
    names += ["steps"] if steps is not None else []
    node = OnnxNode(helper.make_node("Slice", names, ["y"]))
    constants = {"axes": axes if axes is not None else list(range(len(starts))), "steps": steps}

    @tf.function(jit_compile=jit_compile, input_signature=[tf.TensorSpec([None, 64, None])] * 1)
    def sliced(t: tf.Tensor) -> tf.Tensor:
        # bounds that are not trace-time constants: offset by a run-time zero from the input's shape
        zero = tf.shape(t, out_type=tf.int64)[0] * 0
        tensor_dict = {"x": t, "starts": tf.constant(starts, tf.int64) + zero,
                       "ends": tf.constant([min(e, 2**62) for e in ends], tf.int64) + zero}
        tensor_dict.update({name: tf.constant(constants[name], tf.int64) for name in names[3:]})
        # a product with a tensor of the expected static shape, as adaptive instance norm does
        return Slice.version_13(node, tensor_dict=tensor_dict)[0] * tf.ones(want.shape)

    np.testing.assert_array_equal(sliced(tf.constant(x)).numpy(), want)
