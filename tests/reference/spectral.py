"""ONNX's opset-17 signal ops in numpy (the test oracle): windows from their cosine sums, DFT and
STFT with ``numpy.fft``, frames cut one by one."""

from __future__ import annotations

import numpy as np

COSINES = {
    "HannWindow": (0.5, 0.5),
    "HammingWindow": (25 / 46, 21 / 46),
    "BlackmanWindow": (0.42, 0.5, 0.08),
}


def window(op_type: str, size: int, periodic: bool) -> np.ndarray:
    n = np.arange(size, dtype=np.float64)
    denominator = size if periodic else size - 1
    terms = [
        (-1) ** k * c * np.cos(2 * np.pi * k * n / denominator)
        for k, c in enumerate(COSINES[op_type])
    ]
    return np.sum(terms, axis=0).astype(np.float32)


def as_pairs(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(np.float32)


def dft(x: np.ndarray, axis: int, length: int | None, inverse: bool, onesided: bool) -> np.ndarray:
    """``x`` is ``[..., 1]`` or ``[..., 2]``; ``axis`` counts the axes of ``x``."""
    z = x[..., 0] + (1j * x[..., 1] if x.shape[-1] == 2 else 0)
    z = (np.fft.ifft if inverse else np.fft.fft)(z, n=length, axis=axis)
    if onesided:
        z = np.take(z, np.arange(z.shape[axis] // 2 + 1), axis=axis)
    return as_pairs(z)


def stft(signal: np.ndarray, step: int, window: np.ndarray, onesided: bool = True) -> np.ndarray:
    """``signal`` ``[batch, length]`` (real) -> ``[batch, frames, bins, 2]``."""
    size = window.shape[0]
    count = 1 + (signal.shape[1] - size) // step
    frames = np.stack(
        [signal[:, t * step : t * step + size] * window for t in range(count)], axis=1
    )
    spectrum = np.fft.fft(frames, axis=-1)
    if onesided:
        spectrum = spectrum[..., : size // 2 + 1]
    return as_pairs(spectrum)
