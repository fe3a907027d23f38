"""The time loop of the recurrent handlers (LSTM; GRU and RNN can reuse it), lowered per target.

A handler writes one step, ``step(t, inputs_t, state) -> (y_t, state)``, and
:func:`time_loop` runs it over axis 0 of its per-step inputs with one ``tf.while_loop``,
stacking ``y_t`` into ``y [T, B, W]``. How the loop reads its inputs and collects its outputs
depends on :func:`custom_ops.lowering.target`:

- ``"graph"`` and ``"xla"``: TensorArrays (gradient-friendly; XLA lowers them to in-place
  dynamic slices of one buffer).
- ``"tflite"``: no TensorArray/TensorList (LiteRT's converter needs a static element shape
  for those, and batch and time are dynamic): each step gathers its input row and writes its
  output row into a preallocated ``[T, B, W]`` tensor (``tf.tensor_scatter_nd_update``, a
  builtin ``SCATTER_ND``-family op in LiteRT), with ``shape_invariants`` keeping batch and time
  dynamic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from custom_ops.lowering import target

State = tuple[tf.Tensor, ...]
Step = Callable[[tf.Tensor, Sequence[tf.Tensor], State], tuple[tf.Tensor, State]]


def time_loop(
    step: Step, inputs: Sequence[tf.Tensor], state: State, output_width: int
) -> tuple[tf.Tensor, State]:
    """Run ``step`` for ``t = 0 .. T-1``; ``inputs`` are ``[T, ...]`` tensors (the step gets
    row ``t`` of each), ``state`` tensors keep their shapes. Returns ``y [T, B, output_width]``
    (``y_t`` of every step, stacked) and the last state."""
    steps = tf.shape(inputs[0])[0]
    dtype = state[0].dtype
    if target() == "tflite":
        return _preallocated_loop(step, inputs, state, output_width, steps, dtype)
    rows = [tf.TensorArray(x.dtype, size=steps).unstack(x) for x in inputs]
    y = tf.TensorArray(dtype, size=steps, element_shape=[None, output_width])

    def body(t: tf.Tensor, y: tf.TensorArray, *state: tf.Tensor) -> tuple:
        y_t, state = step(t, [r.read(t) for r in rows], tuple(state))
        return (t + 1, y.write(t, y_t), *state)

    _, y, *state = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), y, *state))
    return y.stack(), tuple(state)


def _preallocated_loop(
    step: Step, inputs: Sequence[tf.Tensor], state: State, output_width: int, steps: tf.Tensor, dtype: tf.DType
) -> tuple[tf.Tensor, State]:
    """:func:`time_loop` without TensorArrays: rows read with ``gather``, written with
    ``tensor_scatter_nd_update`` into a ``[T, B, W]`` tensor allocated before the loop."""
    batch = tf.shape(state[0])[0]
    y = tf.zeros(tf.stack([steps, batch, output_width]), dtype)
    zero = tf.constant(0)

    def body(t: tf.Tensor, y: tf.Tensor, *state: tf.Tensor) -> tuple:
        y_t, state = step(t, [tf.gather(x, t) for x in inputs], tuple(state))
        y = tf.tensor_scatter_nd_update(y, tf.reshape(t, [1, 1]), y_t[tf.newaxis])
        return (t + 1, y, *state)

    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None, None, output_width]),
        *(tf.TensorShape([None, *s.shape[1:]]) for s in state),
    )
    _, y, *state = tf.while_loop(
        lambda t, *_: t < steps, body, (zero, y, *state), shape_invariants=invariants
    )
    return y, tuple(state)
