"""Audio front-end: a wav file to the AutoVC mel-spectrogram.

This follows the recipe of AutoVC's ``make_spect.py``:

1. 30 Hz, 5th-order Butterworth high-pass, applied forwards and backwards (``filtfilt``);
2. STFT with n_fft 1024, hop 256 and a periodic Hann window, on the signal reflect-padded by
   n_fft // 2 on each side (frames = len // 256 + 1);
3. magnitude spectrum times an 80-band Slaney mel filterbank (90-7600 Hz, Slaney area
   normalisation, the librosa default);
4. ``20 * log10(max(1e-5, mel)) - 16`` dB, then ``clip((db + 100) / 100, 0, 1)``, as float32.

The original recipe also adds dither after the filter: ``wav = y * 0.96 + (rand - 0.5) * 1e-6``,
with ``y`` the high-passed signal and ``rand`` drawn from ``numpy.random.RandomState(speaker_id)``.
The 0.96 gain scales the whole filtered signal (a constant -0.35 dB on every mel value that is
above the floor); the noise is added afterwards, unscaled. Here dither is off by default, which
makes the mel a pure function of the samples; ``dither_seed`` turns on both the 0.96 gain and the
noise, drawn from a fresh ``RandomState(dither_seed)``. The original seeds one generator per speaker
(with the speaker number) and draws from it file after file in sorted order, so a seed reproduces
its dither exactly only for the first file of a speaker.

Inputs at other sample rates are resampled to 16 kHz with ``scipy.signal.resample_poly`` (the
original assumes 16 kHz: its filter and filterbank are designed for that rate); multichannel files
are averaged to mono.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.runtime.errors import UsageError

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 256
N_MELS = 80
FMIN = 90.0
FMAX = 7600.0
HIGHPASS_HZ = 30.0
HIGHPASS_ORDER = 5
MIN_LEVEL = 1e-5
"""Magnitude floor before the log: -100 dB."""
REF_DB = 16.0
"""Subtracted from the dB value before normalisation."""
DITHER_GAIN = 0.96
DITHER_AMPLITUDE = 1e-6
SILENCE_PEAK = 1e-4
"""A file whose peak absolute sample (full scale = 1.0) is below this is treated as silent."""

_SLANEY_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_LOG_START_HZ = 1000.0
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa's ``htk=False``)."""
    hz = np.asarray(hz, dtype=np.float64)
    start_mel = _SLANEY_LOG_START_HZ / _SLANEY_LINEAR_HZ_PER_MEL
    linear = hz / _SLANEY_LINEAR_HZ_PER_MEL
    logarithmic = start_mel + np.log(np.maximum(hz, _SLANEY_LOG_START_HZ) / _SLANEY_LOG_START_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_LOG_START_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    start_mel = _SLANEY_LOG_START_HZ / _SLANEY_LINEAR_HZ_PER_MEL
    linear = mel * _SLANEY_LINEAR_HZ_PER_MEL
    logarithmic = _SLANEY_LOG_START_HZ * np.exp(_SLANEY_LOG_STEP * (np.maximum(mel, start_mel) - start_mel))
    return np.where(mel >= start_mel, logarithmic, linear)


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = FMIN,
    fmax: float = FMAX,
) -> np.ndarray:
    """Triangular Slaney mel filterbank, (n_mels, n_fft // 2 + 1) float32.

    Band edges are evenly spaced on the Slaney mel scale; each triangle is scaled by
    ``2 / (upper_hz - lower_hz)`` so that its area in Hz is 1 (Slaney normalisation). float32,
    as librosa returns it and as the original recipe used it.
    """
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths_hz = np.diff(edges_hz)
    offsets = edges_hz[:, None] - fft_hz[None, :]
    rising = -offsets[:-2] / widths_hz[:-1, None]
    falling = offsets[2:] / widths_hz[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


_MEL_BASIS = mel_filterbank().T


# scipy.signal is imported on first use: importing it costs a second at every CLI start.
@functools.cache
def _highpass_coefficients() -> tuple[np.ndarray, np.ndarray]:
    from scipy import signal

    return signal.butter(HIGHPASS_ORDER, HIGHPASS_HZ / (SAMPLE_RATE / 2.0), btype="high")


@functools.cache
def _hann() -> np.ndarray:
    from scipy import signal

    return signal.get_window("hann", N_FFT, fftbins=True)


def load_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float64 samples in [-1, 1] and its sample rate.

    Accepts anything soundfile reads at 16/24/32-bit integer or float precision, at any sample
    rate; several channels are averaged. 8-bit PCM is refused: its quantisation noise floor
    (about -50 dB) lies far above the recipe's -100 dB floor and would show up in every quiet frame.
    Raises UsageError for a missing file, a file that is not audio, an 8-bit file, an empty file
    and a silent one.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except sf.SoundFileError as error:
        raise UsageError(f"not a readable audio file: {path} ({error})") from error
    if info.subtype in ("PCM_S8", "PCM_U8"):
        raise UsageError(
            f"8-bit audio is not supported: {path} is {info.subtype}; convert it to 16-bit PCM first"
        )
    try:
        samples, sample_rate = sf.read(str(path), dtype="float64", always_2d=True)
    except sf.SoundFileError as error:
        raise UsageError(f"not a readable audio file: {path} ({error})") from error
    if samples.shape[0] == 0:
        raise UsageError(f"audio file has no samples: {path}")
    mono = samples.mean(axis=1)
    peak = float(np.max(np.abs(mono)))
    if not np.isfinite(peak):
        raise UsageError(f"audio file contains NaN or infinite samples: {path}")
    if peak < SILENCE_PEAK:
        raise UsageError(f"audio file is silent (peak {peak:.2e} < {SILENCE_PEAK:.0e} of full scale): {path}")
    return mono, int(sample_rate)


def resample_to_model_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample mono samples to 16 kHz with a polyphase filter (identity at 16 kHz)."""
    if sample_rate <= 0:
        raise UsageError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate == SAMPLE_RATE:
        return samples
    from scipy import signal

    ratio = Fraction(SAMPLE_RATE, sample_rate)
    return signal.resample_poly(samples, ratio.numerator, ratio.denominator)


def highpass(samples: np.ndarray) -> np.ndarray:
    """30 Hz 5th-order Butterworth high-pass at 16 kHz, zero-phase (forwards and backwards)."""
    from scipy import signal

    return signal.filtfilt(*_highpass_coefficients(), samples)


def magnitude_stft(samples: np.ndarray) -> np.ndarray:
    """|STFT| as (frames, n_fft // 2 + 1), reflect-padded by n_fft // 2 like AutoVC's ``pySTFT``."""
    padded = np.pad(samples, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return np.abs(np.fft.rfft(frames * _hann(), n=N_FFT, axis=-1))


def wav_to_mel(samples: np.ndarray, sample_rate: int, dither_seed: int | None = None) -> np.ndarray:
    """AutoVC mel-spectrogram (frames, 80) float32 in [0, 1] of mono samples at any rate.

    ``dither_seed`` None (default): no dither, no 0.96 gain. An integer: the original recipe's
    ``y * 0.96 + (RandomState(dither_seed).rand(n) - 0.5) * 1e-6`` after the high-pass.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1:
        raise UsageError(f"expected mono samples (1-D), got shape {samples.shape}")
    samples = resample_to_model_rate(samples, sample_rate)
    if samples.shape[0] < N_FFT:
        raise UsageError(
            f"audio too short: {samples.shape[0]} samples at {SAMPLE_RATE} Hz, "
            f"need at least one analysis window ({N_FFT} samples, {1000 * N_FFT // SAMPLE_RATE} ms)"
        )
    filtered = highpass(samples)
    if dither_seed is not None:
        noise = np.random.RandomState(dither_seed).rand(filtered.shape[0]) - 0.5
        filtered = filtered * DITHER_GAIN + noise * DITHER_AMPLITUDE
    mel = magnitude_stft(filtered) @ _MEL_BASIS
    db = 20.0 * np.log10(np.maximum(MIN_LEVEL, mel)) - REF_DB
    return np.clip((db + 100.0) / 100.0, 0.0, 1.0).astype(np.float32)


def mel_from_file(path: str | Path, dither_seed: int | None = None) -> np.ndarray:
    """:func:`load_wav` then :func:`wav_to_mel`."""
    samples, sample_rate = load_wav(path)
    return wav_to_mel(samples, sample_rate, dither_seed=dither_seed)
