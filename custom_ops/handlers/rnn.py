"""ONNX RNN (opsets 7, 14, 22) for onnx-tf, replacing its built-in handler.

The built-in handler needs Keras 2's ``BasicRNNCell`` (absent from Keras 3) and caches its cell at
class level like the built-in LSTM. This handler keeps no state outside the graph it builds, and
runs the recurrence as the LSTM handler's loop does (:mod:`custom_ops.recurrence`): one matmul
projects the input of every step and direction, backward directions are reversed in time, and one
``tf.while_loop`` runs all directions on the state ``h [B, D*H]``, for every lowering target
(graph, XLA, LiteRT builtins).

ONNX conventions: W ``[D, H, F]``, R ``[D, H, H]``, B ``[D, 2H]`` = ``[Wb, Rb]``; per step
``h = f(clip(x W^T + h R^T + Wb + Rb))`` with ``f`` the node's activation (tanh by default; one
per direction), ``clip`` bounding the pre-activation. Layouts, ``sequence_lens`` (Y is 0 past an
entry's length, Y_h its last valid state) and initial states as for the LSTM handler:
``layout=0``: X ``[T, B, F]``, Y ``[T, D, B, H]``, Y_h ``[D, B, H]``; ``layout=1``: X
``[B, T, F]``, Y ``[B, T, D, H]``, Y_h ``[B, D, H]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op
from onnx_tf.pb_wrapper import OnnxNode

from custom_ops.recurrence import (
    Activation,
    RecurrentOp,
    by_direction,
    clip_bound,
    gate_functions,
    initial_state,
    input_projection,
    node_activations,
    node_directions,
    node_layout,
    onnx_outputs,
    per_step_validity,
    recurrent_matmul,
    recurrent_weights,
    time_loop,
    time_major,
)


@dataclass(frozen=True)
class _Config:
    """The attributes of one RNN node, validated. ``f`` acts on ``[B, D*H]``."""

    hidden_size: int | None
    backward: tuple[bool, ...]  # per direction: walks the sequence from its end
    layout: int
    clip: float | None
    f: Activation

    @classmethod
    def from_node(cls, node: OnnxNode) -> _Config:
        (f,) = gate_functions(node_activations("RNN", node, ["Tanh"]), 1)
        return cls(
            hidden_size=node.attrs.get("hidden_size"),
            backward=node_directions("RNN", node),
            layout=node_layout("RNN", node),
            clip=node.attrs.get("clip"),
            f=f,
        )


def rnn(
    config: _Config,
    x: tf.Tensor,
    w: tf.Tensor,
    r: tf.Tensor,
    b: tf.Tensor | None = None,
    seq_lens: tf.Tensor | None = None,
    initial_h: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Y, Y_h of one ONNX RNN node (inputs and outputs in the node's layout)."""
    dirs = len(config.backward)
    hidden = config.hidden_size or r.shape[-1]
    if hidden is None:
        raise ValueError("RNN: hidden_size is neither an attribute nor known from R's shape")
    x = time_major(x, config.layout)
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    h = initial_state(initial_h, config.layout, batch, dirs * hidden, x.dtype)
    if seq_lens is not None:
        seq_lens = tf.cast(seq_lens, tf.int32)
    bias = None
    if b is not None:
        w_bias, r_bias = tf.split(b, 2, axis=1)
        bias = w_bias + r_bias
    xw = input_projection(x, w, bias, 1, hidden, config.backward, seq_lens)
    r_weights = recurrent_weights(r, dirs)
    per_step = [xw]
    if seq_lens is not None:
        per_step.append(per_step_validity(seq_lens, steps))  # [T, B, 1]
    bound = clip_bound(config.clip)

    def step(t: tf.Tensor, rows: list[tf.Tensor], state: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tuple]:
        (h,) = state
        h_new = config.f(bound(rows[0] + recurrent_matmul(h, r_weights, 1, hidden)))
        if seq_lens is None:
            return h_new, (h_new,)
        valid_t = rows[1]  # [B, 1]
        return tf.where(valid_t, h_new, tf.zeros_like(h_new)), (tf.where(valid_t, h_new, h),)

    y, (h,) = time_loop(step, per_step, (h,), dirs * hidden)
    y = by_direction(tf.reshape(y, [steps, batch, dirs, hidden]), config.backward, seq_lens)
    y, y_h = onnx_outputs(y, (h,), config.layout, dirs, hidden)
    return y, y_h


@onnx_op("RNN")
class RNN(RecurrentOp, BackendHandler):
    """ONNX RNN as a single ``tf.while_loop``; see the module docstring for the semantics."""

    INPUT_COUNT = 6
    parse = staticmethod(_Config.from_node)
    compute = staticmethod(rnn)
