"""ONNX RNN in plain numpy, one batch entry and one time step at a time (the test oracle).

Conventions (ONNX spec, opsets 7-22):

- W ``[D, H, F]``, R ``[D, H, H]``, B ``[D, 2H]`` = ``[Wb, Rb]``; both biases are added.
- ``H' = f(clip(x W^T + H R^T + Wb + Rb))``, f the direction's activation (default Tanh).
- ``layout=0``: X ``[T, B, F]``, Y ``[T, D, B, H]``, Y_h ``[D, B, H]``;
  ``layout=1``: X ``[B, T, F]``, Y ``[B, T, D, H]``, Y_h ``[B, D, H]``.
- Direction 0 of a bidirectional RNN runs forward, direction 1 backward.
- ``sequence_lens[b] = L``: only steps ``0..L-1`` are processed (the backward direction starts
  at ``L-1``); Y is 0 at steps ``>= L``; Y_h is the state after the last processed step.
- alpha/beta of the activations as for the LSTM (:mod:`reference.lstm`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference.lstm import _activations


class RNN:
    """``run`` returns Y, Y_h (both, whatever the node requests)."""

    @staticmethod
    def run(
        X: np.ndarray,
        W: np.ndarray,
        R: np.ndarray,
        B: np.ndarray | None = None,
        sequence_lens: np.ndarray | None = None,
        initial_h: np.ndarray | None = None,
        *,
        direction: str = "forward",
        layout: int = 0,
        clip: float | None = None,
        activations: Sequence[str] | None = None,
        activation_alpha: Sequence[float] = (),
        activation_beta: Sequence[float] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Y, Y_h of one ONNX RNN node, computed in float64 and returned in X's dtype."""
        dtype = X.dtype
        X, W, R = (np.asarray(a, np.float64) for a in (X, W, R))
        if layout == 1:
            X = X.transpose(1, 0, 2)
            if initial_h is not None:
                initial_h = initial_h.transpose(1, 0, 2)
        seq_length, batch, _ = X.shape
        num_directions = W.shape[0]
        hidden = R.shape[2]
        assert num_directions == (2 if direction == "bidirectional" else 1)
        if activations is None:
            activations = ["Tanh"] * num_directions
        functions = _activations(activations, activation_alpha, activation_beta)
        lengths = np.full(batch, seq_length) if sequence_lens is None else sequence_lens

        Y = np.zeros((seq_length, num_directions, batch, hidden))
        Y_h = np.zeros((num_directions, batch, hidden))
        for d in range(num_directions):
            backward = direction == "reverse" or d == 1
            f = functions[d]
            bias = np.zeros(2 * hidden) if B is None else np.asarray(B[d], np.float64)
            wb, rb = np.split(bias, 2)
            for b in range(batch):
                h_t = np.zeros(hidden) if initial_h is None else np.asarray(initial_h[d, b], np.float64)
                steps = range(int(lengths[b]))
                for t in reversed(steps) if backward else steps:
                    pre = W[d] @ X[t, b] + R[d] @ h_t + wb + rb
                    h_t = f(pre if clip is None else np.clip(pre, -clip, clip))
                    Y[t, d, b] = h_t
                Y_h[d, b] = h_t
        if layout == 1:
            Y = Y.transpose(2, 0, 1, 3)
            Y_h = Y_h.transpose(1, 0, 2)
        return Y.astype(dtype), Y_h.astype(dtype)
