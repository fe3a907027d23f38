"""ONNX LSTM (opsets 7, 14, 22) for onnx-tf, replacing its built-in handler.

The built-in handler builds a ``tf.compat.v1`` LSTM cell and caches it at class level, so every
later LSTM node (and every later ``prepare()``) reuses the first node's cell; on Keras 3 it does
not run at all. This handler keeps no state outside the graph it builds.

Two implementations of the recurrence, both in TF ops with CPU and GPU kernels; D directions:

A. TF's fused ``BlockLSTM`` op, one per direction (a backward direction runs on the
   time-reversed input), when it computes exactly this node and its steps are small
   (:func:`fused_op_applies`, :func:`fused_op_pays`): one kernel runs every step, where a
   ``tf.while_loop`` pays tens of microseconds of op overhead per step.
B. Otherwise (any activation, clip, ``input_forget``, ``sequence_lens``, any float type):

   1. One matmul projects the input of every time step and direction:
      ``X[T*B, F] @ W^T[F, 4*D*H] + (Wb + Rb)``, columns ordered gate, direction, unit.
   2. The projection of a backward direction is reversed in time (only the valid prefix of each
      batch entry when ``sequence_lens`` is given), so that every direction walks forward.
   3. One ``tf.while_loop`` runs all directions together on the state ``h, c [B, D*H]``
      (direction-major columns). Per step the only matmuls are ``h_d[B, H] @ R_d^T[H, 4H]``, one
      per direction (plain 2-D matmuls: a batched matmul over D was several times slower on CPU).
   4. Outputs of backward directions are reversed back.

Lowering targets (:mod:`custom_ops.lowering`): ``"graph"`` chooses A or B as above; ``"xla"``
and ``"tflite"`` always take B (``BlockLSTM`` has no XLA kernel and no LiteRT lowering), whose
loop :func:`custom_ops.recurrence.time_loop` writes with TensorArrays for graph mode and XLA and
in chunks into a preallocated output tensor for LiteRT's builtin ops.

ONNX conventions: gate order ``i, o, f, c`` in W, R, B (PyTorch's order is ``i, f, g, o``),
``i, o, f`` in P; B is ``[Wb, Rb]``. ``layout=0``: X ``[T, B, F]``, Y ``[T, D, B, H]``,
Y_h/Y_c ``[D, B, H]``; ``layout=1``: X ``[B, T, F]``, Y ``[B, T, D, H]``, Y_h/Y_c
``[B, D, H]``. For steps ``t >= sequence_lens[b]``, Y is 0 and the state stops updating, so
Y_h/Y_c hold the state of the last valid step. ``clip`` bounds the pre-activation of every gate
(after the peephole term), not the input of ``h``; ``input_forget=1`` sets ``f = 1 - i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op
from onnx_tf.pb_wrapper import OnnxNode

from custom_ops.lowering import target
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
    """The attributes of one LSTM node, validated. ``f``, ``g``, ``h`` act on ``[B, D*H]``."""

    hidden_size: int | None
    backward: tuple[bool, ...]  # per direction: walks the sequence from its end
    layout: int
    clip: float | None
    input_forget: bool
    default_activations: bool  # sigmoid, tanh, tanh in every direction
    f: Activation
    g: Activation
    h: Activation

    @classmethod
    def from_node(cls, node: OnnxNode) -> _Config:
        attrs = node.attrs
        backward = node_directions("LSTM", node)
        specs = node_activations("LSTM", node, ["Sigmoid", "Tanh", "Tanh"])
        default_activations = [name for name, _, _ in specs] == ["sigmoid", "tanh", "tanh"] * len(backward)
        f, g, h = gate_functions(specs, 3)
        return cls(
            hidden_size=attrs.get("hidden_size"),
            backward=backward,
            layout=node_layout("LSTM", node),
            clip=attrs.get("clip"),
            input_forget=bool(attrs.get("input_forget", 0)),
            default_activations=default_activations,
            f=f,
            g=g,
            h=h,
        )


def lstm(
    config: _Config,
    x: tf.Tensor,
    w: tf.Tensor,
    r: tf.Tensor,
    b: tf.Tensor | None = None,
    seq_lens: tf.Tensor | None = None,
    initial_h: tf.Tensor | None = None,
    initial_c: tf.Tensor | None = None,
    p: tf.Tensor | None = None,
    *,
    fused_op: bool | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Y, Y_h, Y_c of one ONNX LSTM node (inputs and outputs in the node's layout).

    ``fused_op``: run the recurrence as TF's ``BlockLSTM`` op (True; only where
    :func:`fused_op_applies`, and only for the ``"graph"`` lowering target) or as the
    ``tf.while_loop`` of :func:`custom_ops.recurrence.time_loop` (False); None chooses by
    :func:`fused_op_pays` in graph mode, the loop for XLA and LiteRT.
    """
    dirs = len(config.backward)
    hidden = config.hidden_size or r.shape[-1]
    if hidden is None:
        raise ValueError("LSTM: hidden_size is neither an attribute nor known from R's shape")
    x = time_major(x, config.layout)
    batch = tf.shape(x)[1]
    h, c = (initial_state(s, config.layout, batch, dirs * hidden, x.dtype) for s in (initial_h, initial_c))
    graph_mode = target() == "graph"  # BlockLSTM has no XLA kernel and no LiteRT lowering
    if fused_op is None:
        fused_op = graph_mode and fused_op_applies(config, x, w, seq_lens) and fused_op_pays(w, hidden)
    elif fused_op and not (graph_mode and fused_op_applies(config, x, w, seq_lens)):
        raise ValueError(f"LSTM: BlockLSTM does not implement this node's options for target {target()!r}")
    recurrence = _fused_op_recurrence if fused_op else _loop_recurrence
    y, h, c = recurrence(config, hidden, x, w, r, b, seq_lens, h, c, p)
    return tuple(onnx_outputs(y, (h, c), config.layout, dirs, hidden))


def fused_op_applies(config: _Config, x: tf.Tensor, w: tf.Tensor, seq_lens: tf.Tensor | None) -> bool:
    """Whether ``BlockLSTM`` computes exactly this node: float32 (its only CPU type besides
    half), sigmoid/tanh/tanh, no clip (it clips the cell state, ONNX the gate inputs), no
    ``input_forget``, no ``sequence_lens`` (it takes only a maximum length), and a known
    input width."""
    return (
        x.dtype == tf.float32
        and config.default_activations
        and config.clip is None
        and not config.input_forget
        and seq_lens is None
        and w.shape[-1] is not None
    )


def fused_op_pays(w: tf.Tensor, hidden: int) -> bool:
    """Whether ``BlockLSTM`` is the faster recurrence: when one step's weights are small.

    Each of its steps multiplies ``[x_t, h]`` by all of ``[W; R]``, where the loop multiplies
    only ``h`` by ``R`` (the input projection is one matmul over all steps before it); but a
    loop step costs about 25 TF ops of fixed overhead (tens of microseconds on CPU) against one
    kernel's inner loop. Up to :data:`FUSED_OP_MAX_STEP_WEIGHTS` weights per direction the
    overhead dominates: AutoVC's 32-unit encoder layers run 2-3x faster fused; 128-unit layers
    sit at the limit (faster fused at batch 1, slower at batch 8); its 512- and 1024-unit
    decoder layers run up to 1.5x slower fused. See ``python -m benchmarks --only lstm``.
    """
    return (w.shape[-1] + hidden) * 4 * hidden <= FUSED_OP_MAX_STEP_WEIGHTS


FUSED_OP_MAX_STEP_WEIGHTS = 2**17
"""Largest ``(input + hidden) * 4 * hidden`` for which :func:`fused_op_pays` (512 KiB of float32)."""

# ONNX gate blocks i, o, f, c -> BlockLSTM's i, c, f, o. (BlockLSTMV2 orders them i, f, c, o,
# but TF 2.21 registers BlockLSTM's gradient for it, which assumes i, c, f, o: wrong gradients.)
_ONNX_TO_ICFO = [0, 3, 2, 1]

def _fused_op_recurrence(
    config: _Config,
    hidden: int,
    x: tf.Tensor,
    w: tf.Tensor,
    r: tf.Tensor,
    b: tf.Tensor | None,
    seq_lens: tf.Tensor | None,
    h: tf.Tensor,
    c: tf.Tensor,
    p: tf.Tensor | None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One ``BlockLSTM`` op per direction (a backward one on the time-reversed input).

    ``x [T, B, F]``, ``h, c [B, D*H]`` -> ``y [T, B, D, H]`` in sequence order and the last
    ``h, c [B, D*H]``. ``seq_lens`` is None (see :func:`fused_op_applies`).
    """
    dirs = len(config.backward)
    steps = tf.cast(tf.shape(x)[0], tf.int64)
    zeros = tf.zeros([hidden], x.dtype)
    h_parts, c_parts = tf.split(h, dirs, axis=1), tf.split(c, dirs, axis=1)
    ys, hs, cs = [], [], []
    w_t, r_t = tf.transpose(w, [0, 2, 1]), tf.transpose(r, [0, 2, 1])  # [D, F, 4H], [D, H, 4H]
    for d, backward in enumerate(config.backward):
        # [W_d^T; R_d^T] -> [F + H, 4H], columns ordered gate (ICFO), unit.
        weights = tf.reshape(tf.concat([w_t[d], r_t[d]], axis=0), [-1, 4, hidden])
        weights = tf.reshape(tf.gather(weights, _ONNX_TO_ICFO, axis=1), [-1, 4 * hidden])
        if b is None:
            bias = tf.zeros([4 * hidden], x.dtype)
        else:
            bias = tf.reshape(tf.gather(tf.reshape(b[d, : 4 * hidden] + b[d, 4 * hidden :], [4, hidden]), _ONNX_TO_ICFO), [-1])
        p_i, p_o, p_f = tf.split(p[d], 3) if p is not None else (zeros, zeros, zeros)
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=steps,
            x=tf.reverse(x, axis=[0]) if backward else x,
            cs_prev=c_parts[d],
            h_prev=h_parts[d],
            w=weights,
            wci=p_i,
            wcf=p_f,
            wco=p_o,
            b=bias,
            forget_bias=0.0,
            cell_clip=-1.0,  # no clipping
            use_peephole=p is not None,
        )
        cell, hidden_states = outputs[1], outputs[6]  # each [T, B, H]
        hs.append(hidden_states[-1])
        cs.append(cell[-1])
        ys.append(tf.reverse(hidden_states, axis=[0]) if backward else hidden_states)
    return tf.stack(ys, axis=2), tf.concat(hs, axis=1), tf.concat(cs, axis=1)


def _loop_recurrence(
    config: _Config,
    hidden: int,
    x: tf.Tensor,
    w: tf.Tensor,
    r: tf.Tensor,
    b: tf.Tensor | None,
    seq_lens: tf.Tensor | None,
    h: tf.Tensor,
    c: tf.Tensor,
    p: tf.Tensor | None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The input projection as one matmul, then one ``tf.while_loop`` for all directions.

    ``x [T, B, F]``, ``h, c [B, D*H]`` -> ``y [T, B, D, H]`` in sequence order and the last
    valid ``h, c [B, D*H]``.
    """
    dirs = len(config.backward)
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    if seq_lens is not None:
        seq_lens = tf.cast(seq_lens, tf.int32)

    # 1. Input projection, all steps and directions in one matmul; 2. every direction in
    # walking order.
    bias = None
    if b is not None:
        w_bias, r_bias = tf.split(b, 2, axis=1)
        bias = w_bias + r_bias
    xw = input_projection(x, w, bias, 4, hidden, config.backward, seq_lens)

    r_weights = recurrent_weights(r, dirs)
    if p is not None:  # P [D, 3H] -> p_i, p_o, p_f, each [D*H] direction-major like the state
        p = tf.transpose(tf.reshape(p, [dirs, 3, hidden]), [1, 0, 2])
        p_i, p_o, p_f = tf.unstack(tf.reshape(p, [3, dirs * hidden]))
    per_step = [xw]
    if seq_lens is not None:
        per_step.append(per_step_validity(seq_lens, steps))  # [T, B, 1]
    bound = clip_bound(config.clip)

    def step(t: tf.Tensor, rows: list[tf.Tensor], state: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tuple]:
        h, c = state
        z_i, z_o, z_f, z_c = tf.split(rows[0] + recurrent_matmul(h, r_weights, 4, hidden), 4, axis=-1)
        if p is not None:
            z_i += p_i * c
            z_f += p_f * c
        i = config.f(bound(z_i))
        f = 1.0 - i if config.input_forget else config.f(bound(z_f))
        c_new = f * c + i * config.g(bound(z_c))
        if p is not None:
            z_o += p_o * c_new
        h_new = config.f(bound(z_o)) * config.h(c_new)
        if seq_lens is None:
            return h_new, (h_new, c_new)
        valid_t = rows[1]  # [B, 1]
        y_t = tf.where(valid_t, h_new, tf.zeros_like(h_new))
        return y_t, (tf.where(valid_t, h_new, h), tf.where(valid_t, c_new, c))

    # 3. The recurrence, all directions in one loop.
    y, (h, c) = time_loop(step, per_step, (h, c), dirs * hidden)
    # 4. Backward directions back in sequence order.
    y = by_direction(tf.reshape(y, [steps, batch, dirs, hidden]), config.backward, seq_lens)
    return y, h, c


@onnx_op("LSTM")
class LSTM(RecurrentOp, BackendHandler):
    """ONNX LSTM as a single ``tf.while_loop``; see the module docstring for the semantics."""

    INPUT_COUNT = 8
    parse = staticmethod(_Config.from_node)
    compute = staticmethod(lstm)
