"""Tolerances of the training-parity checks, and why they are what they are.

* Loss (same weights, same batch), elementwise ``atol 1e-7 + rtol 1e-5 * |torch|``.
  Measured: 0 to 1.4e-7 relative.
* Gradients, per parameter: ``||tf - torch|| <= 5e-2 * ||torch|| + 3e-5 * G * sqrt(n)``
  (L2 norms over the parameter's n elements; G = the largest |gradient| element of the whole
  model at that step). Not elementwise, because of two float32 effects that PyTorch shares:
  - rounding: a gradient sums over batch, time and channels, and BatchNorm's backward
    subtracts nearly equal terms. PyTorch's own float32 gradients differ from float64 by up to
    4e-4 relative (L2) on the full AutoVC; TF's from PyTorch's by up to 9e-4;
  - kinks: where a pre-activation of a ReLU lies within float32 noise of 0, the two frameworks
    may take different branches, and the gradient of every weight upstream changes by that one
    position's contribution. Measured on the full AutoVC over 10 steps: flips moved parameters
    by up to 1.5e-2 relative (2e-2 G in single elements); PyTorch float32 against float64 shows
    the same at other steps (1.7e-3). The tolerance is about 3 times the largest seen.
  The ``3e-5 G sqrt(n)`` floor covers biases that training-mode BatchNorm cancels (exact
  gradient 0, rounding noise of about 1e-6 G in both frameworks). Implementation errors (a wrong
  gate order, BatchNorm on running statistics, a sum instead of a mean) are O(1) relative.
* BatchNorm running statistics after a training forward from the same state, elementwise
  ``atol 1e-6 + rtol 2e-5 * |torch|``: means and variances of activations, accurate to a few
  ulps (measured up to 0.45 of this). PyTorch's unbiased running variance differs from the
  biased one by ``momentum * batch_var / (n - 1)`` (4e-4 of the batch variance for n = 256
  values per channel); ``num_batches_tracked`` exactly.
* Optimizer, elementwise ``atol 1e-9 + rtol 1e-6 * |weight|`` (a few ulps of the weight; one
  Adam step moves a weight by up to ``lr``): TF's weights after its step equal
  ``torch.optim.Adam``'s update of the same state with TF's gradient (:func:`adam_update`), and
  :class:`~.adam.TorchAdam` fed PyTorch's gradients follows ``torch.optim.Adam``.
  Weights against PyTorch's own weights are reported (in units of lr), not judged: Adam divides
  each gradient element by its own magnitude, so elements whose gradient is near rounding noise
  or at a kink step by up to ``lr`` either way, in either framework.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.parity.metrics import Tolerance

from .adam import AdamConfig

LOSS = Tolerance(atol=1e-7, rtol=1e-5)
GRADIENT_RELATIVE_L2 = 5e-2
GRADIENT_FLOOR_OF_SCALE = 3e-5
BN_STATS = Tolerance(atol=1e-6, rtol=2e-5)
OPTIMIZER = Tolerance(atol=1e-9, rtol=1e-6)


def gradient_allowed_l2(reference: np.ndarray, scale: float) -> float:
    """Largest allowed ``||tf - torch||`` for one parameter's gradient ``reference`` in a model
    whose largest |gradient| element is ``scale``."""
    reference = np.asarray(reference, np.float64)
    return GRADIENT_RELATIVE_L2 * float(np.linalg.norm(reference)) + GRADIENT_FLOOR_OF_SCALE * scale * math.sqrt(
        reference.size
    )


def adam_update(
    gradient: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, step: int, config: AdamConfig
) -> np.ndarray:
    """The change ``torch.optim.Adam`` makes to a weight at 1-based ``step`` from the moments
    before it, in float64."""
    beta1, beta2 = config.betas
    g = np.asarray(gradient, np.float64)
    m = beta1 * np.asarray(exp_avg, np.float64) + (1 - beta1) * g
    v = beta2 * np.asarray(exp_avg_sq, np.float64) + (1 - beta2) * g * g
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = np.sqrt(1 - beta2**step)
    return -(config.lr / bias_correction1) * m / (np.sqrt(v) / bias_correction2_sqrt + config.eps)
