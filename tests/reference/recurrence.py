"""What the LSTM, GRU and RNN references share, from the ONNX spec (opsets 7-22): layouts,
directions, ``sequence_lens``, initial states, and the activations with their alpha/beta. Each
op's own file holds its step's math only.

- ``layout=0``: X ``[T, B, F]``, Y ``[T, D, B, H]``, each final state ``[D, B, H]``;
  ``layout=1``: X ``[B, T, F]``, Y ``[B, T, D, H]``, each final state ``[B, D, H]``; initial
  states are laid out like final ones.
- Direction 0 of a bidirectional node runs forward, direction 1 backward.
- ``sequence_lens[b] = L``: only steps ``0..L-1`` are processed (the backward direction starts
  at ``L-1``); Y is 0 at steps ``>= L``; the final states are those after the last processed step.
- ``activation_alpha``/``activation_beta`` are consumed in activation order, only by the
  activations that take that parameter; missing ones take the ONNX operator's default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Activation = Callable[[np.ndarray], np.ndarray]
State = tuple[np.ndarray, ...]  # h first, then any other state (the LSTM's c), each [H]
Step = Callable[[np.ndarray, State], State]  # (x_t [F], state) -> next state

# name (lower case) -> (default alpha or None if unused, default beta or None if unused)
_PARAMETERS: dict[str, tuple[float | None, float | None]] = {
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


def _activation(name: str, alpha: float | None, beta: float | None) -> Activation:
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh
    if name == "sigmoid":
        return lambda x: 1.0 / (1.0 + np.exp(-x))
    if name == "affine":
        return lambda x: alpha * x + beta
    if name == "leakyrelu":
        return lambda x: np.where(x >= 0, x, alpha * x)
    if name == "thresholdedrelu":
        return lambda x: np.where(x > alpha, x, 0.0)
    if name == "scaledtanh":
        return lambda x: alpha * np.tanh(beta * x)
    if name == "hardsigmoid":
        return lambda x: np.minimum(np.maximum(alpha * x + beta, 0.0), 1.0)
    if name == "elu":
        return lambda x: np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0.0)) - 1.0))
    if name == "softsign":
        return lambda x: x / (1.0 + np.abs(x))
    if name == "softplus":
        return lambda x: np.log1p(np.exp(x))
    raise ValueError(f"unknown activation {name!r}")


def _activations(names: Sequence[str], alphas: Sequence[float], betas: Sequence[float]) -> list[Activation]:
    """The activation functions, alpha/beta consumed in order by those that take them."""
    alpha_iter, beta_iter = iter(alphas), iter(betas)
    functions = []
    for name in names:
        key = name.lower()
        default_alpha, default_beta = _PARAMETERS[key]
        alpha = next(alpha_iter, default_alpha) if default_alpha is not None else None
        beta = next(beta_iter, default_beta) if default_beta is not None else None
        functions.append(_activation(key, alpha, beta))
    return functions


def run_recurrence(
    X: np.ndarray,
    num_directions: int,
    hidden: int,
    initial_states: Sequence[np.ndarray | None],
    sequence_lens: np.ndarray | None,
    step_for: Callable[[int, list[Activation]], Step],
    *,
    direction: str,
    layout: int,
    activations: Sequence[str] | None,
    default_activations: Sequence[str],
    activation_alpha: Sequence[float],
    activation_beta: Sequence[float],
) -> tuple[np.ndarray, ...]:
    """Y and the final states of one node, computed in float64 and returned in X's dtype
    (``num_directions`` and ``hidden`` from the weights' shapes). ``step_for(d, functions)`` is direction ``d``'s step, given its activation functions
    (``default_activations`` when the node has none)."""
    dtype = X.dtype
    X = np.asarray(X, np.float64)
    if layout == 1:
        X = X.transpose(1, 0, 2)
        initial_states = [None if s is None else s.transpose(1, 0, 2) for s in initial_states]
    seq_length, batch, _ = X.shape
    assert num_directions == (2 if direction == "bidirectional" else 1)
    per_direction = len(default_activations)
    if activations is None:
        activations = list(default_activations) * num_directions
    functions = _activations(activations, activation_alpha, activation_beta)
    lengths = np.full(batch, seq_length) if sequence_lens is None else sequence_lens

    Y = np.zeros((seq_length, num_directions, batch, hidden))
    finals = [np.zeros((num_directions, batch, hidden)) for _ in initial_states]
    for d in range(num_directions):
        backward = direction == "reverse" or d == 1
        step = step_for(d, functions[per_direction * d : per_direction * (d + 1)])
        for b in range(batch):
            state = tuple(np.zeros(hidden) if s is None else np.asarray(s[d, b], np.float64) for s in initial_states)
            steps = range(int(lengths[b]))
            for t in reversed(steps) if backward else steps:
                state = step(X[t, b], state)
                Y[t, d, b] = state[0]
            for final, value in zip(finals, state):
                final[d, b] = value
    if layout == 1:
        Y = Y.transpose(2, 0, 1, 3)
        finals = [final.transpose(1, 0, 2) for final in finals]
    return tuple(value.astype(dtype) for value in (Y, *finals))
