"""ONNX LSTM in plain numpy, one batch entry and one time step at a time (the test oracle).

Conventions (ONNX spec, opsets 7-22; layouts, directions, ``sequence_lens`` and activations in
:mod:`reference.recurrence`):

- Gate order in W, R, B is ``i, o, f, c`` (PyTorch uses ``i, f, g, o``); P holds ``i, o, f``.
- B is ``[Wb, Rb]`` concatenated; both are added.
- Activations ``f, g, h`` per direction (default Sigmoid, Tanh, Tanh).
- ``clip`` bounds every gate's pre-activation (after the peephole term), not ``h(C)``.
- ``input_forget=1``: ``f = 1 - i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference.recurrence import Activation, State, Step, run_recurrence


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
        W, R = (np.asarray(a, np.float64) for a in (W, R))
        hidden = R.shape[2]

        def bound(z: np.ndarray) -> np.ndarray:
            return z if clip is None else np.clip(z, -clip, clip)

        def step_for(d: int, functions: list[Activation]) -> Step:
            f, g, h = functions
            w_i, w_o, w_f, w_c = np.split(W[d], 4)
            r_i, r_o, r_f, r_c = np.split(R[d], 4)
            bias = np.zeros(8 * hidden) if B is None else np.asarray(B[d], np.float64)
            b_i, b_o, b_f, b_c = np.split(bias[: 4 * hidden] + bias[4 * hidden :], 4)
            peep = np.zeros(3 * hidden) if P is None else np.asarray(P[d], np.float64)
            p_i, p_o, p_f = np.split(peep, 3)

            def step(x_t: np.ndarray, state: State) -> State:
                h_t, c_t = state
                i = f(bound(w_i @ x_t + r_i @ h_t + p_i * c_t + b_i))
                if input_forget:
                    forget = 1.0 - i
                else:
                    forget = f(bound(w_f @ x_t + r_f @ h_t + p_f * c_t + b_f))
                cell = g(bound(w_c @ x_t + r_c @ h_t + b_c))
                c_t = forget * c_t + i * cell
                o = f(bound(w_o @ x_t + r_o @ h_t + p_o * c_t + b_o))
                return o * h(c_t), c_t

            return step

        return run_recurrence(
            X, W.shape[0], hidden, (initial_h, initial_c), sequence_lens, step_for,
            direction=direction, layout=layout, activations=activations, default_activations=("Sigmoid", "Tanh", "Tanh"),
            activation_alpha=activation_alpha, activation_beta=activation_beta,
        )  # fmt: skip
