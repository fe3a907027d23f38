"""The LSTM handler's two recurrences (TF's fused ``BlockLSTM`` op and the ``tf.while_loop``)
against the numpy reference and each other, forward and backward, and which one it picks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from onnx import helper
from reference.lstm import LSTM as Reference

import custom_ops

custom_ops.register()  # before importing onnx_tf or a handler module: the compat shims

from onnx_tf.pb_wrapper import OnnxNode  # noqa: E402 (after register(), as said above)

from custom_ops.handlers.lstm import _Config, fused_op_applies, fused_op_pays, lstm  # noqa: E402

INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")


def _config(**attrs: object) -> _Config:
    return _Config.from_node(OnnxNode(helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="lstm", **attrs)))


def _case(seed: int, direction: str, layout: int, peepholes: bool, states: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dirs, steps, batch, features, hidden = (2 if direction == "bidirectional" else 1), 9, 3, 5, 4
    state_shape = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    arrays = {
        "X": rng.normal(size=(batch, steps, features) if layout else (steps, batch, features)),
        "W": rng.normal(0, 0.5, (dirs, 4 * hidden, features)),
        "R": rng.normal(0, 0.5, (dirs, 4 * hidden, hidden)),
        "B": rng.normal(0, 0.5, (dirs, 8 * hidden)),
        "initial_h": rng.normal(size=state_shape) if states else None,
        "initial_c": rng.normal(size=state_shape) if states else None,
        "P": rng.normal(0, 0.5, (dirs, 3 * hidden)) if peepholes else None,
    }
    return {k: v.astype(np.float32) for k, v in arrays.items() if v is not None}


CASES = [
    ("forward", 0, False, False),
    ("reverse", 1, True, True),
    ("bidirectional", 0, True, False),
    ("bidirectional", 1, False, True),
]


@pytest.mark.parametrize(("direction", "layout", "peepholes", "states"), CASES)
def test_both_recurrences_match_the_reference(direction: str, layout: int, peepholes: bool, states: bool) -> None:
    arrays = _case(len(direction) + layout, direction, layout, peepholes, states)
    attrs = {"hidden_size": 4, "direction": direction, "layout": layout}
    expected = Reference.run(*(arrays.get(n) for n in INPUTS), direction=direction, layout=layout)
    config = _config(**attrs)
    tensors = {n: tf.constant(arrays[n]) if n in arrays else None for n in INPUTS}
    assert fused_op_applies(config, tensors["X"], tensors["W"], None)
    for fused_op in (True, False):
        outputs = lstm(config, *tensors.values(), fused_op=fused_op)
        for name, got, want in zip(("Y", "Y_h", "Y_c"), outputs, expected):
            np.testing.assert_allclose(got.numpy(), want, atol=1e-5, rtol=0, err_msg=f"{name} fused_op={fused_op}")


def test_gradients_agree_between_recurrences() -> None:
    """d(loss)/d(every input) of a bidirectional LSTM with peepholes and initial states: the fused
    op's registered gradient against the while loop's."""
    arrays = _case(3, "bidirectional", 0, True, True)
    config = _config(hidden_size=4, direction="bidirectional")
    upstream = np.random.default_rng(4)
    weights = [tf.constant(upstream.normal(size=s).astype(np.float32)) for s in ((9, 2, 3, 4), (2, 3, 4), (2, 3, 4))]
    grads = {}
    for fused_op in (True, False):
        tensors = {n: tf.constant(arrays[n]) if n in arrays else None for n in INPUTS}
        with tf.GradientTape() as tape:
            tape.watch([t for t in tensors.values() if t is not None])
            outputs = lstm(config, *tensors.values(), fused_op=fused_op)
            loss = sum(tf.reduce_sum(o * w) for o, w in zip(outputs, weights))
        grads[fused_op] = tape.gradient(loss, {n: t for n, t in tensors.items() if t is not None})
    for name, fused in grads[True].items():
        np.testing.assert_allclose(fused.numpy(), grads[False][name].numpy(), atol=1e-5, rtol=1e-5, err_msg=name)


def test_fused_op_only_where_it_is_exact_and_pays() -> None:
    x, w = tf.zeros([3, 2, 512]), tf.zeros([2, 128, 512])
    assert fused_op_applies(_config(hidden_size=32, direction="bidirectional"), x, w, None)
    assert not fused_op_applies(_config(hidden_size=32, clip=1.0), x, w, None)
    assert not fused_op_applies(_config(hidden_size=32, input_forget=1), x, w, None)
    assert not fused_op_applies(_config(hidden_size=32, activations=["Sigmoid", "Tanh", "Relu"]), x, w, None)
    assert not fused_op_applies(_config(hidden_size=32), x, w, tf.constant([3, 3]))
    assert not fused_op_applies(_config(hidden_size=32), tf.zeros([3, 2, 512], tf.float64), w, None)
    # AutoVC: the 32-unit encoder layers are fused, the 512- and 1024-unit decoder layers loop.
    assert fused_op_pays(tf.zeros([2, 128, 512]), 32) and fused_op_pays(tf.zeros([2, 128, 64]), 32)
    assert not fused_op_pays(tf.zeros([1, 2048, 320]), 512)
    assert not fused_op_pays(tf.zeros([1, 4096, 1024]), 1024)


def test_fused_op_refuses_what_it_cannot_compute() -> None:
    x = tf.zeros([3, 2, 5])
    w, r = tf.zeros([1, 16, 5]), tf.zeros([1, 16, 4])
    with pytest.raises(ValueError, match="BlockLSTM"):
        lstm(_config(hidden_size=4, clip=1.0), x, w, r, fused_op=True)
