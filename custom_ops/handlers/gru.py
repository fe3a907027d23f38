"""ONNX GRU (opsets 7, 14, 22) for onnx-tf, replacing its built-in handler.

The built-in handler refuses ``linear_before_reset=1`` (which PyTorch always exports) and, with
0, needs Keras 2's ``GRUCell``; it also caches its cell at class level like the built-in LSTM.
This handler keeps no state outside the graph it builds, and runs the recurrence as the LSTM
handler's loop does (:mod:`custom_ops.recurrence`): one matmul projects the input of every step
and direction, backward directions are reversed in time, and one ``tf.while_loop`` runs all
directions on the state ``h [B, D*H]``, for every lowering target (graph, XLA, LiteRT builtins).

ONNX conventions: gate order ``z, r, h`` (update, reset, hidden) in W ``[D, 3H, F]``, R
``[D, 3H, H]`` and B ``[D, 6H]`` = ``[Wb, Rb]`` (PyTorch's order is ``r, z, n``). Per step, with
``f``/``g`` the node's activations (sigmoid/tanh by default)::

    z = f(x W_z + h R_z + Wb_z + Rb_z)
    r = f(x W_r + h R_r + Wb_r + Rb_r)
    linear_before_reset=0:  n = g(x W_h + (r * h) R_h + Rb_h + Wb_h)
    linear_before_reset=1:  n = g(x W_h + r * (h R_h + Rb_h) + Wb_h)     (PyTorch's GRU)
    h = (1 - z) * n + z * h

``clip`` bounds the pre-activation of every gate. Layouts, ``sequence_lens`` (Y is 0 past an
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
from custom_ops.support import UnsupportedOptionError


@dataclass(frozen=True)
class _Config:
    """The attributes of one GRU node, validated. ``f``, ``g`` act on ``[B, D*H]``."""

    hidden_size: int | None
    backward: tuple[bool, ...]  # per direction: walks the sequence from its end
    layout: int
    clip: float | None
    linear_before_reset: bool
    f: Activation
    g: Activation

    @classmethod
    def from_node(cls, node: OnnxNode) -> _Config:
        linear_before_reset = node.attrs.get("linear_before_reset", 0)
        if linear_before_reset not in (0, 1):
            raise UnsupportedOptionError.of("GRU", node.name, "linear_before_reset", linear_before_reset, "0, 1")
        f, g = gate_functions(node_activations("GRU", node, ["Sigmoid", "Tanh"]), 2)
        return cls(
            hidden_size=node.attrs.get("hidden_size"),
            backward=node_directions("GRU", node),
            layout=node_layout("GRU", node),
            clip=node.attrs.get("clip"),
            linear_before_reset=bool(linear_before_reset),
            f=f,
            g=g,
        )


def gru(
    config: _Config,
    x: tf.Tensor,
    w: tf.Tensor,
    r: tf.Tensor,
    b: tf.Tensor | None = None,
    seq_lens: tf.Tensor | None = None,
    initial_h: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Y, Y_h of one ONNX GRU node (inputs and outputs in the node's layout)."""
    dirs = len(config.backward)
    hidden = config.hidden_size or r.shape[-1]
    if hidden is None:
        raise ValueError("GRU: hidden_size is neither an attribute nor known from R's shape")
    x = time_major(x, config.layout)
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    h = initial_state(initial_h, config.layout, batch, dirs * hidden, x.dtype)
    if seq_lens is not None:
        seq_lens = tf.cast(seq_lens, tf.int32)

    # Biases: Wb and Rb of z and r, and Wb_h, go into the input projection; so does Rb_h unless
    # it is added before the reset gate multiplies (linear_before_reset=1).
    rb_h = None
    bias = None
    if b is not None:
        w_bias, r_bias = tf.split(b, 2, axis=1)  # each [D, 3H]
        r_zr, r_h = r_bias[:, : 2 * hidden], r_bias[:, 2 * hidden :]
        if config.linear_before_reset:
            bias = w_bias + tf.concat([r_zr, tf.zeros_like(r_h)], axis=1)
            rb_h = tf.reshape(r_h, [dirs * hidden])  # direction-major like the state
        else:
            bias = w_bias + r_bias
    xw = input_projection(x, w, bias, 3, hidden, config.backward, seq_lens)

    r_weights = recurrent_weights(r, dirs)
    if not config.linear_before_reset:  # (r * h) R_h is its own matmul
        r_zr_weights = [r_d.gate_rows(0, 2 * hidden) for r_d in r_weights]
        r_h_weights = [r_d.gate_rows(2 * hidden, 3 * hidden) for r_d in r_weights]
    per_step = [xw]
    if seq_lens is not None:
        per_step.append(per_step_validity(seq_lens, steps))  # [T, B, 1]
    bound = clip_bound(config.clip)

    def step(t: tf.Tensor, rows: list[tf.Tensor], state: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tuple]:
        (h,) = state
        x_z, x_r, x_h = tf.split(rows[0], 3, axis=-1)
        if config.linear_before_reset:
            h_z, h_r, h_h = tf.split(recurrent_matmul(h, r_weights, 3, hidden), 3, axis=-1)
            if rb_h is not None:
                h_h += rb_h
            reset = config.f(bound(x_r + h_r))
            n = config.g(bound(x_h + reset * h_h))
        else:
            h_z, h_r = tf.split(recurrent_matmul(h, r_zr_weights, 2, hidden), 2, axis=-1)
            reset = config.f(bound(x_r + h_r))
            n = config.g(bound(x_h + recurrent_matmul(reset * h, r_h_weights, 1, hidden)))
        update = config.f(bound(x_z + h_z))
        h_new = (1.0 - update) * n + update * h
        if seq_lens is None:
            return h_new, (h_new,)
        valid_t = rows[1]  # [B, 1]
        return tf.where(valid_t, h_new, tf.zeros_like(h_new)), (tf.where(valid_t, h_new, h),)

    y, (h,) = time_loop(step, per_step, (h,), dirs * hidden)
    y = by_direction(tf.reshape(y, [steps, batch, dirs, hidden]), config.backward, seq_lens)
    y, y_h = onnx_outputs(y, (h,), config.layout, dirs, hidden)
    return y, y_h


@onnx_op("GRU")
class GRU(RecurrentOp, BackendHandler):
    """ONNX GRU as a single ``tf.while_loop``; see the module docstring for the semantics."""

    INPUT_COUNT = 6
    parse = staticmethod(_Config.from_node)
    compute = staticmethod(gru)
