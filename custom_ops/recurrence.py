"""What the recurrent handlers (LSTM, GRU, RNN) share: the time loop, lowered per target, and
the parts of an ONNX recurrent node that are alike for all three.

A handler writes one step, ``step(t, inputs_t, state) -> (y_t, state)``, and
:func:`time_loop` runs it over axis 0 of its per-step inputs with one ``tf.while_loop``,
stacking ``y_t`` into ``y [T, B, W]``. How the loop reads its inputs and collects its outputs
depends on :func:`custom_ops.lowering.target`:

- ``"graph"`` and ``"xla"``: TensorArrays (gradient-friendly; XLA lowers them to in-place
  dynamic slices of one buffer).
- ``"tflite"``: no TensorArray/TensorList (LiteRT's converter needs a static element shape
  for those, and batch and time are dynamic): each step gathers its input row and writes its
  output row with XLA's ``DynamicUpdateSlice`` op (LiteRT's builtin ``DYNAMIC_UPDATE_SLICE``;
  TF runs it too), with ``shape_invariants`` keeping batch and time dynamic. LiteRT's ``WHILE``
  copies its loop-carried tensors every iteration, so a loop carrying the whole ``[T, B, W]``
  output costs O(T) per step. The steps therefore run in chunks of :data:`CHUNK_STEPS`: an inner
  loop carries only its chunk's rows, an outer loop writes each finished chunk into the output
  once (one loop of ``tanh(x_t + h)``, W=1024, B=1, one thread, on a loaded machine: one row per
  step T=512 0.8 s, T=2048 13 s; chunked, B=2: 0.14 s, 0.87 s; ``tf.tensor_scatter_nd_update``
  instead of the update slice: 2.4 s, 31 s). Every row is computed by the same ``step`` in the
  same order as in the other targets.

  LiteRT's fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` kernel is not used: TF 2.21's converter fuses
  only a function marked as a Keras LSTM whose initial states have a static shape, i.e. a fixed
  batch (``CheckFusableKerasLstm`` in its composite-function pass), and returns zeros for the
  final states; a model with a dynamic batch keeps this loop of builtin ops.

Shared by the handlers besides the loop: the activation table (``activations`` with
``activation_alpha``/``activation_beta``), ``direction`` and ``layout`` parsing, optional inputs,
the initial state and output layouts, the input projection of every step as one matmul, the
time reversal of backward directions, and the per-step recurrent matmuls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from custom_ops.lowering import target
from custom_ops.support import UnsupportedOptionError

if TYPE_CHECKING:
    from onnx_tf.pb_wrapper import OnnxNode

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
        return _chunked_loop(step, inputs, state, output_width)
    rows = [tf.TensorArray(x.dtype, size=steps).unstack(x) for x in inputs]
    y = tf.TensorArray(dtype, size=steps, element_shape=[None, output_width])

    def body(t: tf.Tensor, y: tf.TensorArray, *state: tf.Tensor) -> tuple:
        y_t, state = step(t, [r.read(t) for r in rows], tuple(state))
        return (t + 1, y.write(t, y_t), *state)

    _, y, *state = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), y, *state))
    return y.stack(), tuple(state)


CHUNK_STEPS = 64
"""Steps per chunk: 64 ran a 1024-wide loop at T=2048 1.4x faster than 32 (the output is copied
T/64 times, each chunk buffer 64 rows per step); T=512 was the same."""


def _chunked_loop(
    step: Step, inputs: Sequence[tf.Tensor], state: State, output_width: int
) -> tuple[tf.Tensor, State]:
    """:func:`time_loop` in LiteRT builtin ops (``WHILE``, ``GATHER``, ``DYNAMIC_UPDATE_SLICE``)
    for any T and B, in chunks of :data:`CHUNK_STEPS` steps (see the module docstring)."""
    steps = tf.shape(inputs[0])[0]
    batch = tf.shape(state[0])[0]
    dtype = state[0].dtype
    chunks = (steps + CHUNK_STEPS - 1) // CHUNK_STEPS
    # Whole chunks: an update never reaches past the end (where it would be moved, not cut).
    y = tf.zeros(tf.stack([chunks * CHUNK_STEPS, batch, output_width]), dtype)
    state_shapes = tuple(tf.TensorShape([None, *s.shape[1:]]) for s in state)

    def chunk(c: tf.Tensor, y: tf.Tensor, *state: tf.Tensor) -> tuple:
        start = c * CHUNK_STEPS
        count = tf.minimum(CHUNK_STEPS, steps - start)
        rows = tf.zeros(tf.stack([CHUNK_STEPS, batch, output_width]), dtype)

        def one_step(i: tf.Tensor, rows: tf.Tensor, *state: tf.Tensor) -> tuple:
            t = start + i
            y_t, state = step(t, [tf.gather(x, t) for x in inputs], tuple(state))
            return (i + 1, _write_rows(rows, y_t[tf.newaxis], i), *state)

        _, rows, *state = tf.while_loop(
            lambda i, *_: i < count, one_step, (tf.constant(0), rows, *state),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([CHUNK_STEPS, None, output_width]), *state_shapes),
        )
        return (c + 1, _write_rows(y, rows, start), *state)

    _, y, *state = tf.while_loop(
        lambda c, *_: c < chunks, chunk, (tf.constant(0), y, *state),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, output_width]), *state_shapes),
    )
    return y[:steps], tuple(state)


def _write_rows(y: tf.Tensor, rows: tf.Tensor, start: tf.Tensor) -> tf.Tensor:
    """``y`` with ``rows [K, B, W]`` written at rows ``start .. start + K - 1`` (LiteRT's
    ``DYNAMIC_UPDATE_SLICE``; TensorFlow runs it on CPU too)."""
    return xla.dynamic_update_slice(y, rows, tf.stack([start, 0, 0]))


# --- the parts of an ONNX LSTM, GRU or RNN node that are alike ----------------------------

Activation = Callable[[tf.Tensor], tf.Tensor]

# ONNX activation name (lower case) -> (default alpha, default beta); None: takes no such
# parameter. Defaults are those of the ONNX operator of the same name; ScaledTanh, whose operator
# documents none, defaults to plain tanh. (onnxruntime uses 0.0 for a missing alpha or beta of
# Affine, ScaledTanh and ThresholdedRelu.)
ACTIVATION_PARAMETERS: dict[str, tuple[float | None, float | None]] = {
    "relu": (None, None),
    "tanh": (None, None),
    "sigmoid": (None, None),
    "affine": (1.0, 0.0),
    "leakyrelu": (0.01, None),
    "thresholdedrelu": (1.0, None),
    "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5),
    "elu": (1.0, None),
    "softsign": (None, None),
    "softplus": (None, None),
}

ActivationSpec = tuple[str, float | None, float | None]  # lower-case name, alpha, beta


def activation(name: str, alpha: float | None, beta: float | None) -> Activation:
    """The TF function for one ONNX activation with its (already defaulted) parameters."""
    match name:
        case "relu":
            return tf.nn.relu
        case "tanh":
            return tf.tanh
        case "sigmoid":
            return tf.sigmoid
        case "affine":
            return lambda x: alpha * x + beta
        case "leakyrelu":
            return lambda x: tf.where(x >= 0, x, alpha * x)
        case "thresholdedrelu":
            return lambda x: tf.where(x > alpha, x, tf.zeros_like(x))
        case "scaledtanh":
            return lambda x: alpha * tf.tanh(beta * x)
        case "hardsigmoid":
            return lambda x: tf.clip_by_value(alpha * x + beta, 0.0, 1.0)
        case "elu":
            # expm1 of min(x, 0) keeps the unused branch finite, so gradients stay finite.
            return lambda x: tf.where(x >= 0, x, alpha * tf.math.expm1(tf.minimum(x, 0.0)))
        case "softsign":
            return tf.nn.softsign
        case "softplus":
            return tf.nn.softplus
    raise AssertionError(name)


def parse_activations(
    op: str, node_name: str, names: Sequence[str], alphas: Sequence[float], betas: Sequence[float]
) -> list[ActivationSpec]:
    """``(name, alpha, beta)`` per entry of ONNX ``activations``.

    ``activation_alpha``/``activation_beta`` are consumed in activation order, each value only
    by an activation that takes that parameter (as onnxruntime does); a missing value takes the
    default of the ONNX operator of the same name.
    """
    alpha_iter, beta_iter = iter(alphas), iter(betas)
    specs = []
    for name in names:
        key = name.lower()
        if key not in ACTIVATION_PARAMETERS:
            raise UnsupportedOptionError.of(
                op, node_name, "activation", name, ", ".join(sorted(ACTIVATION_PARAMETERS))
            )
        default_alpha, default_beta = ACTIVATION_PARAMETERS[key]
        alpha = next(alpha_iter, default_alpha) if default_alpha is not None else None
        beta = next(beta_iter, default_beta) if default_beta is not None else None
        specs.append((key, alpha, beta))
    return specs


def per_direction(functions: Sequence[Activation]) -> Activation:
    """Apply ``functions[d]`` to the columns of direction ``d`` of a ``[B, D*H]`` tensor."""
    if len(functions) == 1:
        return functions[0]
    return lambda x: tf.concat(
        [fn(part) for fn, part in zip(functions, tf.split(x, len(functions), axis=-1))], axis=-1
    )


_DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}


def node_directions(op: str, node: OnnxNode) -> tuple[bool, ...]:
    """Per direction of the node's ``direction`` attribute: whether it walks the sequence from
    its end."""
    direction = node.attrs.get("direction", "forward")
    if direction not in _DIRECTIONS:
        raise UnsupportedOptionError.of(op, node.name, "direction", direction, ", ".join(_DIRECTIONS))
    return _DIRECTIONS[direction]


def node_layout(op: str, node: OnnxNode) -> int:
    """The node's ``layout`` attribute (0: time-major, 1: batch-major), validated."""
    layout = node.attrs.get("layout", 0)
    if layout not in (0, 1):
        raise UnsupportedOptionError.of(op, node.name, "layout", layout, "0, 1")
    return layout


def node_activations(op: str, node: OnnxNode, defaults: Sequence[str]) -> list[ActivationSpec]:
    """The node's ``activations`` (``defaults`` for each direction when absent), with their
    alpha/beta: ``len(defaults)`` per direction, direction 0's first."""
    dirs = len(node_directions(op, node))
    names = node.attrs.get("activations", list(defaults) * dirs)
    if len(names) != len(defaults) * dirs:
        raise UnsupportedOptionError.of(
            op, node.name, "activations", list(names),
            f"{len(defaults) * dirs} functions for direction {node.attrs.get('direction', 'forward')!r}",
        )
    alphas, betas = node.attrs.get("activation_alpha", []), node.attrs.get("activation_beta", [])
    return parse_activations(op, node.name, names, alphas, betas)


def gate_functions(specs: Sequence[ActivationSpec], gates: int) -> list[Activation]:
    """One function per activation slot (``gates`` slots per direction), each acting on the
    direction-major columns of a ``[B, D*H]`` tensor; one op per step when all directions use
    the same activation."""
    if specs[gates:] == specs[:gates]:  # both directions alike: one op per step, not one each
        specs = specs[:gates]
    return [per_direction([activation(*s) for s in specs[k::gates]]) for k in range(gates)]


class RecurrentOp:
    """The ONNX-facing part of the LSTM, GRU and RNN handlers (put before ``BackendHandler`` in
    the bases): versions 7, 14 (adds ``layout``) and 22 (adds bfloat16) all run
    ``compute(parse(node), *inputs)`` on the node's first ``INPUT_COUNT`` inputs, an omitted one
    as None. A handler sets the three."""

    INPUT_COUNT: int
    parse: Callable[[OnnxNode], object]  # the node's attributes, validated
    compute: Callable[..., Sequence[tf.Tensor]]  # (config, *inputs) -> the node's outputs

    @classmethod
    @tf.autograph.experimental.do_not_convert  # explicit graph code; nothing to convert
    def _common(cls, node: OnnxNode, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        inputs = [optional_input(node, tensor_dict, k) for k in range(cls.INPUT_COUNT)]
        return list(cls.compute(cls.parse(node), *inputs))

    @classmethod
    def version_7(cls, node: OnnxNode, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_14(cls, node: OnnxNode, **kwargs) -> list[tf.Tensor]:
        """Adds ``layout``."""
        return cls._common(node, **kwargs)

    @classmethod
    def version_22(cls, node: OnnxNode, **kwargs) -> list[tf.Tensor]:
        """Adds bfloat16."""
        return cls._common(node, **kwargs)


def optional_input(node: OnnxNode, tensor_dict: dict, index: int) -> tf.Tensor | None:
    """Input ``index`` of ``node``, or None when omitted or given as the empty name."""
    if index < len(node.inputs) and node.inputs[index]:
        return tensor_dict[node.inputs[index]]
    return None


def reverse_time(x: tf.Tensor, seq_lens: tf.Tensor | None) -> tf.Tensor:
    """Reverse ``x[T, B, ...]`` in time; with ``seq_lens`` only each entry's valid prefix."""
    if seq_lens is None:
        return tf.reverse(x, axis=[0])
    return tf.reverse_sequence(x, seq_lens, seq_axis=0, batch_axis=1)


def by_direction(x: tf.Tensor, backward: Sequence[bool], seq_lens: tf.Tensor | None) -> tf.Tensor:
    """Reverse in time the backward directions of ``x[T, B, ..., D, H]`` (direction axis -2)."""
    if not any(backward):
        return x
    parts = tf.unstack(x, len(backward), axis=-2)
    return tf.stack(
        [reverse_time(v, seq_lens) if back else v for v, back in zip(parts, backward)], axis=-2
    )


def time_major(x: tf.Tensor, layout: int) -> tf.Tensor:
    """ONNX X in the node's layout -> ``[T, B, F]``."""
    return tf.transpose(x, [1, 0, 2]) if layout == 1 else x


def initial_state(
    state: tf.Tensor | None, layout: int, batch: tf.Tensor, width: int, dtype: tf.DType
) -> tf.Tensor:
    """An ONNX initial state (``[D, B, H]`` or, for layout 1, ``[B, D, H]``; None: zeros) ->
    ``[B, D*H]``, direction-major columns. (A state that XLA saw with the wrong batch here came
    from onnx-tf's Slice: see :mod:`custom_ops.handlers.slice`.)"""
    if state is None:
        return tf.zeros([batch, width], dtype)
    if layout == 0:
        state = tf.transpose(state, [1, 0, 2])
    return tf.reshape(state, [batch, width])


def onnx_outputs(
    y: tf.Tensor, states: Sequence[tf.Tensor], layout: int, dirs: int, hidden: int
) -> list[tf.Tensor]:
    """``y [T, B, D, H]`` and last states ``[B, D*H]`` -> ONNX Y and Y_h (Y_c) in the node's
    layout: ``[T, D, B, H]``, ``[D, B, H]``; layout 1: ``[B, T, D, H]``, ``[B, D, H]``."""
    batch = tf.shape(y)[1]
    states = [tf.reshape(s, [batch, dirs, hidden]) for s in states]
    if layout == 0:
        return [tf.transpose(y, [0, 2, 1, 3]), *(tf.transpose(s, [1, 0, 2]) for s in states)]
    return [tf.transpose(y, [1, 0, 2, 3]), *states]


def gate_major(v: tf.Tensor, gates: int, dirs: int, hidden: int) -> tf.Tensor:
    """``[D, gates*H, K]`` (ONNX) -> ``[gates*D*H, K]``, rows ordered gate, direction, unit."""
    v = tf.reshape(v, [dirs, gates, hidden, -1])
    return tf.reshape(tf.transpose(v, [1, 0, 2, 3]), [gates * dirs * hidden, -1])


def input_projection(
    x: tf.Tensor,
    w: tf.Tensor,
    bias: tf.Tensor | None,
    gates: int,
    hidden: int,
    backward: Sequence[bool],
    seq_lens: tf.Tensor | None,
) -> tf.Tensor:
    """``x [T, B, F] @ W^T + bias`` for every step and direction in one matmul, each direction
    in walking order (backward ones reversed in time, within ``seq_lens`` when given).

    ``w [D, G*H, F]`` (G ``gates``), ``bias [D, G*H]`` or None -> ``[T, B, G*D*H]``, columns
    ordered gate, direction, unit.
    """
    dirs = len(backward)
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    xw = tf.matmul(tf.reshape(x, [steps * batch, -1]), gate_major(w, gates, dirs, hidden), transpose_b=True)
    if bias is not None:
        xw = xw + tf.reshape(gate_major(bias[:, :, tf.newaxis], gates, dirs, hidden), [-1])
    xw = by_direction(tf.reshape(xw, [steps, batch, gates, dirs, hidden]), backward, seq_lens)
    return tf.reshape(xw, [steps, batch, gates * dirs * hidden])


@dataclass(frozen=True)
class RecurrentWeights:
    """One direction's recurrent weights, both ways round, made once before the time loop:
    ``rows`` is ``R_d [N, H]`` as ONNX stores it (N = gates x hidden, rows ordered gate, unit),
    ``transposed`` is ``R_d^T [H, N]``.

    :meth:`times` computes ``h @ R_d^T`` from ``transposed`` (a plain matmul: the faster kernel
    in graph mode, and under XLA for batches above 1), except under XLA at batch 1, where it
    reads ``rows``: each output is then a dot product over one contiguous row, which XLA's CPU
    matrix-vector kernel ran 10-25% faster per step on one 1024-unit LSTM layer (batches 2-8 in
    that layout: 1.4-3x slower). XLA knows the batch when it compiles, so the ``tf.cond``
    keeps one branch and ``rows`` (one transposing copy of the stored ``R_d^T``) is made only
    when that branch is kept.
    """

    rows: tf.Tensor
    transposed: tf.Tensor

    def times(self, h: tf.Tensor) -> tf.Tensor:
        """``h [B, H] @ R_d^T`` -> ``[B, N]``."""
        if target() != "xla":
            return tf.matmul(h, self.transposed)
        return tf.cond(
            tf.equal(tf.shape(h)[0], 1),
            lambda: tf.matmul(h, self.rows, transpose_b=True),
            lambda: tf.matmul(h, self.transposed),
        )

    def gate_rows(self, start: int, stop: int) -> RecurrentWeights:
        """The weights of output units ``start:stop`` (e.g. some of the gates)."""
        return RecurrentWeights(self.rows[start:stop], self.transposed[:, start:stop])


def recurrent_weights(r: tf.Tensor, dirs: int) -> list[RecurrentWeights]:
    """ONNX ``R [D, N, H]`` -> one :class:`RecurrentWeights` per direction. (The converter
    stores R transposed, so that ``transposed`` cancels against its inverse: see
    pipeline.stages.tf_convert.)"""
    return [
        RecurrentWeights(rows, transposed)
        for rows, transposed in zip(tf.unstack(r, dirs), tf.unstack(tf.transpose(r, [0, 2, 1]), dirs))
    ]


def recurrent_matmul(h: tf.Tensor, r: Sequence[RecurrentWeights], gates: int, hidden: int) -> tf.Tensor:
    """``h[B, D*H]`` times each direction's ``R_d^T [H, G*H]`` -> ``[B, G*D*H]``, columns ordered
    gate, direction, unit: one plain 2-D matmul per direction (a batched matmul over D was several
    times slower on CPU)."""
    if len(r) == 1:
        return r[0].times(h)
    parts = [
        tf.reshape(r_d.times(h_d), [-1, gates, 1, hidden])
        for h_d, r_d in zip(tf.split(h, len(r), axis=1), r)
    ]
    return tf.reshape(tf.concat(parts, axis=2), [-1, gates * len(r) * hidden])


def per_step_validity(seq_lens: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
    """``[T, B, 1]`` booleans: step t is inside entry b's sequence."""
    return tf.transpose(tf.sequence_mask(seq_lens, steps))[:, :, tf.newaxis]


def clip_bound(clip: float | None) -> Activation:
    """ONNX ``clip``: bound a gate's pre-activation to ``[-clip, clip]`` (identity when absent)."""
    if clip is None:
        return lambda z: z
    return lambda z: tf.clip_by_value(z, -clip, clip)
