"""ONNX BatchNormalization in plain numpy, one channel at a time, in float64 (the test oracle).

Conventions (ONNX spec, opsets 9-15):

- X is ``[N, C, D1, ..., Dk]``; channel c's statistics are over every value of ``X[:, c]``.
- Inference: ``Y = scale * (X - mean) / sqrt(var + epsilon) + bias``.
- Training: Y uses the batch mean and the biased batch variance (divide by n, the number of
  values per channel); ``running = momentum * running + (1 - momentum) * batch``. The batch
  variance entering running_var is the biased one in ONNX and the unbiased one (divide by
  n - 1) in PyTorch, whose momentum p is ONNX's ``1 - momentum``.
"""

from __future__ import annotations

import numpy as np


class BatchNormalization:
    """``inference`` and ``training`` return arrays in X's dtype (running stats in var's)."""

    @staticmethod
    def inference(
        x: np.ndarray,
        scale: np.ndarray,
        bias: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        epsilon: float = 1e-5,
    ) -> np.ndarray:
        y = np.empty(x.shape, dtype=np.float64)
        for c in range(x.shape[1]):
            channel = x[:, c].astype(np.float64)
            y[:, c] = scale[c] * (channel - mean[c]) / np.sqrt(float(var[c]) + epsilon) + bias[c]
        return y.astype(x.dtype)

    @staticmethod
    def training(
        x: np.ndarray,
        scale: np.ndarray,
        bias: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        unbiased_running_var: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y, running_mean, running_var)``."""
        y = np.empty(x.shape, dtype=np.float64)
        running_mean = np.empty(mean.shape, dtype=np.float64)
        running_var = np.empty(var.shape, dtype=np.float64)
        for c in range(x.shape[1]):
            channel = x[:, c].astype(np.float64)
            n = channel.size
            batch_mean = channel.sum() / n
            squares = ((channel - batch_mean) ** 2).sum()
            biased = squares / n
            y[:, c] = scale[c] * (channel - batch_mean) / np.sqrt(biased + epsilon) + bias[c]
            running_mean[c] = momentum * mean[c] + (1 - momentum) * batch_mean
            batch_var = squares / (n - 1) if unbiased_running_var else biased
            running_var[c] = momentum * var[c] + (1 - momentum) * batch_var
        return y.astype(x.dtype), running_mean.astype(mean.dtype), running_var.astype(var.dtype)
