"""ONNX LeakyRelu, PRelu and Mish in numpy (the test oracle). LeakyRelu and PRelu: ``x`` where
``x >= 0``, else ``alpha * x`` (LeakyRelu, alpha defaults to 0.01) or ``slope * x`` (PRelu, slope
broadcast to X)."""

from __future__ import annotations

import numpy as np


class LeakyRelu:
    @staticmethod
    def run(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
        return np.where(x >= 0, x, np.float64(alpha) * x).astype(x.dtype)


class PRelu:
    @staticmethod
    def run(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, np.broadcast_to(slope, x.shape) * x).astype(x.dtype)


class Mish:
    """``x * tanh(ln(1 + e^x))`` in float64; ``logaddexp(0, x)`` is ``ln(1 + e^x)`` without overflow."""

    @staticmethod
    def run(x: np.ndarray) -> np.ndarray:
        wide = x.astype(np.float64)
        return (wide * np.tanh(np.logaddexp(0.0, wide))).astype(x.dtype)
