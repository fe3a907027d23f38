"""ONNX InstanceNormalization, GroupNormalization, LayerNormalization and RMSNormalization in
numpy, in float64 (the test oracle): standardise with the biased variance over the op's axes (or
divide by the root mean square), then scale and shift.
"""

from __future__ import annotations

import numpy as np


def _standardize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon)


def _per_channel(values: np.ndarray, rank: int) -> np.ndarray:
    return values.astype(np.float64).reshape((1, -1) + (1,) * (rank - 2))


class InstanceNormalization:
    @staticmethod
    def run(
        x: np.ndarray, scale: np.ndarray, bias: np.ndarray, epsilon: float = 1e-5
    ) -> np.ndarray:
        y = _standardize(x.astype(np.float64), tuple(range(2, x.ndim)), epsilon)
        return (y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)).astype(x.dtype)


class GroupNormalization:
    @staticmethod
    def run(
        x: np.ndarray, scale: np.ndarray, bias: np.ndarray, num_groups: int, epsilon: float = 1e-5
    ) -> np.ndarray:
        """Scale and bias per channel (opset 21) or per group (opset 18): ``[C]`` or ``[G]``."""
        n, c = x.shape[:2]
        grouped = x.astype(np.float64).reshape(n, num_groups, -1)
        y = _standardize(grouped, (2,), epsilon).reshape(x.shape)
        if scale.shape[0] != c:
            scale, bias = np.repeat(scale, c // num_groups), np.repeat(bias, c // num_groups)
        return (y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)).astype(x.dtype)


class LayerNormalization:
    @staticmethod
    def run(
        x: np.ndarray,
        scale: np.ndarray,
        bias: np.ndarray | None = None,
        axis: int = -1,
        epsilon: float = 1e-5,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y, Mean, InvStdDev)``."""
        axes = tuple(range(axis % x.ndim, x.ndim))
        wide = x.astype(np.float64)
        mean = wide.mean(axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(((wide - mean) ** 2).mean(axis=axes, keepdims=True) + epsilon)
        y = (wide - mean) * inv_std * scale
        if bias is not None:
            y = y + bias
        return y.astype(x.dtype), mean.astype(np.float32), inv_std.astype(np.float32)


class RMSNormalization:
    @staticmethod
    def run(x: np.ndarray, scale: np.ndarray, axis: int = -1, epsilon: float = 1e-5) -> np.ndarray:
        """``x / sqrt(mean(x^2) + epsilon) * scale``, the mean over the axes from ``axis`` on."""
        axes = tuple(range(axis % x.ndim, x.ndim))
        wide = x.astype(np.float64)
        return (wide / np.sqrt((wide**2).mean(axis=axes, keepdims=True) + epsilon) * scale).astype(x.dtype)
