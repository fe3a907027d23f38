"""ONNX LSTM in plain numpy, one batch entry and one time step at a time (the test oracle).

Conventions (ONNX spec, opsets 7-22):

- Gate order in W, R, B is ``i, o, f, c`` (PyTorch uses ``i, f, g, o``); P holds ``i, o, f``.
- B is ``[Wb, Rb]`` concatenated; both are added.
- ``layout=0``: X ``[T, B, F]``, Y ``[T, D, B, H]``, Y_h/Y_c ``[D, B, H]``;
  ``layout=1``: X ``[B, T, F]``, Y ``[B, T, D, H]``, Y_h/Y_c ``[B, D, H]``.
- Direction 0 of a bidirectional LSTM runs forward, direction 1 backward.
- ``sequence_lens[b] = L``: only steps ``0..L-1`` are processed (the backward direction
  starts at ``L-1``); Y is 0 at steps ``>= L``; Y_h/Y_c are the state after the last
  processed step.
- ``clip`` bounds every gate's pre-activation (after the peephole term), not ``h(C)``.
- ``input_forget=1``: ``f = 1 - i``.
- ``activation_alpha``/``activation_beta`` are consumed in activation order, only by the
  activations that take that parameter; missing ones take the ONNX operator's default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Activation = Callable[[np.ndarray], np.ndarray]

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


def _activations(
    names: Sequence[str], alphas: Sequence[float], betas: Sequence[float]
) -> list[Activation]:
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


class LSTM:
    """``run`` returns Y, Y_h, Y_c (all three, whatever the node requests)."""

    @staticmethod
    def run(
        X: np.ndarray,
        W: np.ndarray,
        R: np.ndarray,
        B: np.ndarray | None = None,
        sequence_lens: np.ndarray | None = None,
        initial_h: np.ndarray | None = None,
        initial_c: np.ndarray | None = None,
        P: np.ndarray | None = None,
        *,
        direction: str = "forward",
        layout: int = 0,
        clip: float | None = None,
        input_forget: int = 0,
        activations: Sequence[str] | None = None,
        activation_alpha: Sequence[float] = (),
        activation_beta: Sequence[float] = (),
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Y, Y_h, Y_c of one ONNX LSTM node, computed in float64 and returned in X's dtype."""
        dtype = X.dtype
        X, W, R = (np.asarray(a, np.float64) for a in (X, W, R))
        if layout == 1:
            X = X.transpose(1, 0, 2)
            if initial_h is not None:
                initial_h = initial_h.transpose(1, 0, 2)
            if initial_c is not None:
                initial_c = initial_c.transpose(1, 0, 2)
        seq_length, batch, _ = X.shape
        num_directions = W.shape[0]
        hidden = R.shape[2]
        assert num_directions == (2 if direction == "bidirectional" else 1)
        if activations is None:
            activations = ["Sigmoid", "Tanh", "Tanh"] * num_directions
        functions = _activations(activations, activation_alpha, activation_beta)
        lengths = np.full(batch, seq_length) if sequence_lens is None else sequence_lens

        Y = np.zeros((seq_length, num_directions, batch, hidden))
        Y_h = np.zeros((num_directions, batch, hidden))
        Y_c = np.zeros((num_directions, batch, hidden))
        for d in range(num_directions):
            backward = direction == "reverse" or d == 1
            f, g, h = functions[3 * d : 3 * d + 3]
            w_i, w_o, w_f, w_c = np.split(W[d], 4)
            r_i, r_o, r_f, r_c = np.split(R[d], 4)
            bias = np.zeros(8 * hidden) if B is None else np.asarray(B[d], np.float64)
            b_i, b_o, b_f, b_c = np.split(bias[: 4 * hidden] + bias[4 * hidden :], 4)
            peep = np.zeros(3 * hidden) if P is None else np.asarray(P[d], np.float64)
            p_i, p_o, p_f = np.split(peep, 3)

            def bound(z: np.ndarray) -> np.ndarray:
                return z if clip is None else np.clip(z, -clip, clip)

            for b in range(batch):
                h_t = (
                    np.zeros(hidden)
                    if initial_h is None
                    else np.asarray(initial_h[d, b], np.float64)
                )
                c_t = (
                    np.zeros(hidden)
                    if initial_c is None
                    else np.asarray(initial_c[d, b], np.float64)
                )
                steps = range(int(lengths[b]))
                for t in reversed(steps) if backward else steps:
                    x_t = X[t, b]
                    i = f(bound(w_i @ x_t + r_i @ h_t + p_i * c_t + b_i))
                    if input_forget:
                        forget = 1.0 - i
                    else:
                        forget = f(bound(w_f @ x_t + r_f @ h_t + p_f * c_t + b_f))
                    cell = g(bound(w_c @ x_t + r_c @ h_t + b_c))
                    c_t = forget * c_t + i * cell
                    o = f(bound(w_o @ x_t + r_o @ h_t + p_o * c_t + b_o))
                    h_t = o * h(c_t)
                    Y[t, d, b] = h_t
                Y_h[d, b] = h_t
                Y_c[d, b] = c_t
        if layout == 1:
            Y = Y.transpose(2, 0, 1, 3)
            Y_h = Y_h.transpose(1, 0, 2)
            Y_c = Y_c.transpose(1, 0, 2)
        return Y.astype(dtype), Y_h.astype(dtype), Y_c.astype(dtype)
