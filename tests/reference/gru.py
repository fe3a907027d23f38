"""ONNX GRU in plain numpy, one batch entry and one time step at a time (the test oracle).

Conventions (ONNX spec, opsets 7-22; layouts, directions, ``sequence_lens`` and activations in
:mod:`reference.recurrence`):

- Gate order in W, R, B is ``z, r, h`` (update, reset, hidden); PyTorch uses ``r, z, n``.
- B is ``[Wb, Rb]`` concatenated.
- ``linear_before_reset=0``: ``h~ = g(x Wh^T + (r * H) Rh^T + Rbh + Wbh)``;
  ``linear_before_reset=1``: ``h~ = g(x Wh^T + r * (H Rh^T + Rbh) + Wbh)``.
- ``H' = (1 - z) * h~ + z * H``.
- ``clip`` bounds the pre-activation of z, r and h~.
- Activations ``f, g`` per direction (default Sigmoid, Tanh).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference.recurrence import Activation, State, Step, run_recurrence


class GRU:
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
        linear_before_reset: int = 0,
        activations: Sequence[str] | None = None,
        activation_alpha: Sequence[float] = (),
        activation_beta: Sequence[float] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Y, Y_h of one ONNX GRU node, computed in float64 and returned in X's dtype."""
        W, R = (np.asarray(a, np.float64) for a in (W, R))
        hidden = R.shape[2]

        def bound(v: np.ndarray) -> np.ndarray:
            return v if clip is None else np.clip(v, -clip, clip)

        def step_for(d: int, functions: list[Activation]) -> Step:
            f, g = functions
            w_z, w_r, w_h = np.split(W[d], 3)
            r_z, r_r, r_h = np.split(R[d], 3)
            bias = np.zeros(6 * hidden) if B is None else np.asarray(B[d], np.float64)
            wb_z, wb_r, wb_h, rb_z, rb_r, rb_h = np.split(bias, 6)

            def step(x_t: np.ndarray, state: State) -> State:
                (h_t,) = state
                z = f(bound(w_z @ x_t + r_z @ h_t + wb_z + rb_z))
                r = f(bound(w_r @ x_t + r_r @ h_t + wb_r + rb_r))
                if linear_before_reset:
                    candidate = g(bound(w_h @ x_t + r * (r_h @ h_t + rb_h) + wb_h))
                else:
                    candidate = g(bound(w_h @ x_t + r_h @ (r * h_t) + rb_h + wb_h))
                return ((1.0 - z) * candidate + z * h_t,)

            return step

        return run_recurrence(
            X, W.shape[0], hidden, (initial_h,), sequence_lens, step_for,
            direction=direction, layout=layout, activations=activations, default_activations=("Sigmoid", "Tanh"),
            activation_alpha=activation_alpha, activation_beta=activation_beta,
        )  # fmt: skip
