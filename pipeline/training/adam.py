"""``torch.optim.Adam`` (weight_decay 0, amsgrad off) in TensorFlow, operation for operation.

PyTorch, per parameter, step t (its ``_single_tensor_adam``, the CPU default)::

    m = m + (1 - beta1) * (g - m)                     # exp_avg.lerp_(g, 1 - beta1)
    v = v * beta2 + (1 - beta2) * g * g               # mul_(beta2).addcmul_(g, g, 1 - beta2)
    denom = sqrt(v) / sqrt(1 - beta2**t) + eps        # eps added AFTER the bias correction
    p = p - (lr / (1 - beta1**t)) * m / denom

The bias corrections are computed in float64 and rounded to float32, as PyTorch does with its
Python floats. Keras' ``Adam`` (Keras 3) folds both corrections into the step size instead::

    alpha = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    p = p - alpha * m / (sqrt(v) + eps)

which equals PyTorch's update with ``eps`` replaced by ``eps / sqrt(1 - beta2**t)``: with the
default beta2 = 0.999 that is 31.6 * eps at step 1 and 10 * eps at step 10. The two differ
wherever ``|g|`` is not large against eps; the measured drift on AutoVC is in the
train-parity report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import torch


@dataclass(frozen=True)
class AdamConfig:
    """``torch.optim.Adam``'s hyperparameters; the defaults are the authors' (lr 1e-4) and
    PyTorch's (betas, eps)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class TorchAdam(tf.Module):
    """Adam with PyTorch's update rule for a fixed list of variables (like
    ``torch.optim.Adam(params)``). ``apply(gradients)`` takes one gradient per variable, in
    order; a missing gradient is an error (PyTorch would skip that parameter and its step
    count, which this class does not track per variable)."""

    def __init__(self, variables: Sequence[tf.Variable], config: AdamConfig = AdamConfig()) -> None:
        super().__init__(name="torch_adam")
        self.config = config
        self.variables_ = list(variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.exp_avg = [tf.Variable(tf.zeros_like(v), trainable=False, name="exp_avg") for v in variables]
        self.exp_avg_sq = [tf.Variable(tf.zeros_like(v), trainable=False, name="exp_avg_sq") for v in variables]

    def load_state(
        self, step: int, exp_avg: Sequence[np.ndarray], exp_avg_sq: Sequence[np.ndarray]
    ) -> None:
        """Continue from another optimizer's state (e.g. ``torch.optim.Adam``'s, see
        :func:`torch_adam_state`), or restart with ``step=0`` and zeros."""
        self.step.assign(step)
        for slot, value in zip(self.exp_avg, exp_avg, strict=True):
            slot.assign(value)
        for slot, value in zip(self.exp_avg_sq, exp_avg_sq, strict=True):
            slot.assign(value)

    def apply(self, gradients: Sequence[tf.Tensor | None]) -> None:
        if len(gradients) != len(self.variables_):
            raise ValueError(f"{len(gradients)} gradients for {len(self.variables_)} variables")
        missing = [v.name for v, g in zip(self.variables_, gradients) if g is None]
        if missing:
            raise ValueError(f"no gradient for {missing[:5]}")
        self._apply(list(gradients))

    @tf.function
    def _apply(self, gradients: list[tf.Tensor]) -> None:
        beta1, beta2 = self.config.betas
        step = self.step.assign_add(1)
        t = tf.cast(step, tf.float64)
        bias_correction1 = 1.0 - tf.pow(tf.constant(beta1, tf.float64), t)
        bias_correction2_sqrt = tf.sqrt(1.0 - tf.pow(tf.constant(beta2, tf.float64), t))
        for var, grad, exp_avg, exp_avg_sq in zip(self.variables_, gradients, self.exp_avg, self.exp_avg_sq):
            dtype = var.dtype
            step_size = tf.cast(self.config.lr / bias_correction1, dtype)
            m = exp_avg.assign_add(tf.cast(1.0 - beta1, dtype) * (grad - exp_avg))
            v = exp_avg_sq.assign(exp_avg_sq * tf.cast(beta2, dtype) + tf.cast(1.0 - beta2, dtype) * grad * grad)
            denom = tf.sqrt(v) / tf.cast(bias_correction2_sqrt, dtype) + tf.cast(self.config.eps, dtype)
            var.assign_add(-step_size * m / denom)


def torch_adam_state(
    optimizer: torch.optim.Adam, parameters: Sequence[torch.nn.Parameter]
) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
    """``(step, exp_avg, exp_avg_sq)`` of ``optimizer`` for ``parameters`` (zeros before its
    first step), as :meth:`TorchAdam.load_state` takes them."""
    steps = set()
    exp_avg, exp_avg_sq = [], []
    for p in parameters:
        state = optimizer.state.get(p, {})
        steps.add(int(state["step"]) if state else 0)
        exp_avg.append(state["exp_avg"].numpy().copy() if state else np.zeros(p.shape, np.float32))
        exp_avg_sq.append(state["exp_avg_sq"].numpy().copy() if state else np.zeros(p.shape, np.float32))
    if len(steps) > 1:
        raise ValueError(f"parameters are at different Adam steps: {sorted(steps)}")
    return steps.pop(), exp_avg, exp_avg_sq
