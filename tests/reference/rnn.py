"""ONNX RNN in plain numpy, one batch entry and one time step at a time (the test oracle).

Conventions (ONNX spec, opsets 7-22; layouts, directions, ``sequence_lens`` and activations in
:mod:`reference.recurrence`):

- W ``[D, H, F]``, R ``[D, H, H]``, B ``[D, 2H]`` = ``[Wb, Rb]``; both biases are added.
- ``H' = f(clip(x W^T + H R^T + Wb + Rb))``, f the direction's activation (default Tanh).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference.recurrence import Activation, State, Step, run_recurrence


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
        W, R = (np.asarray(a, np.float64) for a in (W, R))
        hidden = R.shape[2]

        def step_for(d: int, functions: list[Activation]) -> Step:
            (f,) = functions
            bias = np.zeros(2 * hidden) if B is None else np.asarray(B[d], np.float64)
            wb, rb = np.split(bias, 2)

            def step(x_t: np.ndarray, state: State) -> State:
                pre = W[d] @ x_t + R[d] @ state[0] + wb + rb
                return (f(pre if clip is None else np.clip(pre, -clip, clip)),)

            return step

        return run_recurrence(
            X, W.shape[0], hidden, (initial_h,), sequence_lens, step_for,
            direction=direction, layout=layout, activations=activations, default_activations=("Tanh",),
            activation_alpha=activation_alpha, activation_beta=activation_beta,
        )  # fmt: skip
