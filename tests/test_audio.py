"""Audio front-end (pipeline.models.autovc.audio) and the embedded default input (pipeline.models.autovc.default_input)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from pipeline.models.autovc.audio import (
    DITHER_GAIN,
    FMAX,
    FMIN,
    HIGHPASS_HZ,
    HIGHPASS_ORDER,
    HOP,
    MIN_LEVEL,
    N_FFT,
    N_MELS,
    REF_DB,
    SAMPLE_RATE,
    highpass,
    hz_to_mel,
    load_wav,
    mel_filterbank,
    mel_from_file,
    mel_to_hz,
    wav_to_mel,
)
from pipeline.models.autovc.default_input import (
    EMBEDDING_NORM,
    default_batch,
    default_embeddings,
    default_mel,
)
from pipeline.runtime.errors import UsageError

WAV_NAMES = ("p225_003.wav", "p226_008.wav", "p227_011.wav", "p228_005.wav")

# librosa.mel_frequencies(n_mels=40) (fmin 0, fmax 11025, Slaney scale), as printed in librosa's
# documentation: https://librosa.org/doc/latest/generated/librosa.mel_frequencies.html
LIBROSA_MEL_FREQUENCIES_40 = [
    0.0, 85.317, 170.635, 255.952, 341.269, 426.586, 511.904, 597.221, 682.538, 767.855,
    853.173, 938.49, 1024.856, 1119.114, 1222.042, 1334.436, 1457.167, 1591.187, 1737.532,
    1897.337, 2071.84, 2262.393, 2470.47, 2697.686, 2945.799, 3216.731, 3512.582, 3835.643,
    4188.417, 4573.636, 4994.285, 5453.621, 5955.205, 6502.92, 7101.009, 7754.107, 8467.272,
    9246.028, 10096.408, 11025.0,
]  # fmt: skip
# librosa.filters.mel(sr=22050, n_fft=2048) rows 0 and 1 (Slaney norm), as given in the
# documentation of the mel_filter crate, a port checked against librosa:
# https://docs.rs/mel_filter/latest/mel_filter/fn.mel.html
LIBROSA_FILTERBANK_ROW0 = [0.0, 0.016182853208219942, 0.032365706416439884, 0.028990088037379964,
                           0.012807234829160026, 0.0]  # fmt: skip
LIBROSA_FILTERBANK_ROW1 = [0.0, 0.0, 0.0, 0.009779235793639925, 0.025962089001859864,
                           0.035393705451959974, 0.01921085224374004, 0.003027999035520103, 0.0]  # fmt: skip


def _normalised_db(magnitude: np.ndarray) -> np.ndarray:
    """The recipe's last step written out from its definition, for analytic expectations."""
    db = 20.0 * np.log10(np.maximum(MIN_LEVEL, magnitude)) - REF_DB
    return np.clip((db + 100.0) / 100.0, 0.0, 1.0)


def _tone(freq_hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2.0 * np.pi * freq_hz * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)


# --- mel scale and filterbank against librosa's published numbers ---------------------------


def test_slaney_mel_scale_matches_librosa_documentation() -> None:
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(11025.0), 40))
    np.testing.assert_allclose(edges, LIBROSA_MEL_FREQUENCIES_40, rtol=0, atol=6e-4)
    np.testing.assert_allclose(hz_to_mel(mel_to_hz(np.linspace(0, 45, 91))), np.linspace(0, 45, 91), atol=1e-12)


def test_filterbank_matches_librosa_reference_rows() -> None:
    bank = mel_filterbank(sample_rate=22050, n_fft=2048, n_mels=128, fmin=0.0, fmax=11025.0)
    assert bank.shape == (128, 1025) and bank.dtype == np.float32
    np.testing.assert_allclose(bank[0, :6], LIBROSA_FILTERBANK_ROW0, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(bank[1, :9], LIBROSA_FILTERBANK_ROW1, rtol=1e-6, atol=1e-9)


def test_autovc_filterbank_triangles_peak_at_centres_with_unit_area() -> None:
    bank = mel_filterbank()
    bin_hz = SAMPLE_RATE / N_FFT
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))
    fft_hz = np.arange(N_FFT // 2 + 1) * bin_hz
    assert bank.shape == (N_MELS, N_FFT // 2 + 1)
    for band, row in enumerate(bank):
        lower, centre, upper = edges_hz[band : band + 3]
        assert abs(fft_hz[np.argmax(row)] - centre) <= bin_hz / 2 + 1e-9
        assert np.all(row[(fft_hz <= lower) | (fft_hz >= upper)] == 0)
        # Slaney normalisation: each triangle has area 1 in Hz (sampled on the FFT grid).
        assert row.sum() * bin_hz == pytest.approx(1.0, abs=0.25 if band < 10 else 0.05)


# --- the recipe's steps against analytic results -------------------------------------------


@pytest.mark.parametrize("freq_hz", [10.0, 20.0, 30.0, 45.0, 100.0, 300.0])
def test_highpass_has_squared_butterworth_response(freq_hz: float) -> None:
    """filtfilt applies |H|^2: 1 / (1 + (fc / f)^(2n)) for an order-n Butterworth high-pass."""
    filtered = highpass(_tone(freq_hz, 4.0, amplitude=1.0))[SAMPLE_RATE:-SAMPLE_RATE]
    amplitude = np.sqrt(2.0 * np.mean(filtered**2))
    expected = 1.0 / (1.0 + (HIGHPASS_HZ / freq_hz) ** (2 * HIGHPASS_ORDER))
    assert amplitude == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("fft_bin", [9, 64, 200, 301, 480])
def test_bin_centred_tone_gives_analytic_mel(fft_bin: int) -> None:
    """A tone on FFT bin k under a periodic Hann window has |X| = A N/4 at k, A N/8 at k +- 1, 0 elsewhere."""
    amplitude = 0.5
    samples = _tone(fft_bin * SAMPLE_RATE / N_FFT, 2.0, amplitude)
    mel = wav_to_mel(samples, SAMPLE_RATE)
    bank = mel_filterbank().astype(np.float64)
    spectrum = np.zeros(N_FFT // 2 + 1)
    spectrum[fft_bin] = amplitude * N_FFT / 4
    spectrum[[fft_bin - 1, fft_bin + 1]] = amplitude * N_FFT / 8
    expected = _normalised_db(bank @ spectrum)
    assert mel.shape == (samples.shape[0] // HOP + 1, N_MELS) and mel.dtype == np.float32
    # The first and last 8 frames (128 ms) hold the high-pass's start and end transients.
    np.testing.assert_allclose(mel[8:-8], np.broadcast_to(expected, mel[8:-8].shape), rtol=0, atol=1e-6)
    assert np.count_nonzero(expected) >= 1


@pytest.mark.parametrize("freq_hz", [150.0, 440.0, 1234.5, 3000.0, 6000.0])
def test_tone_lands_in_the_band_around_its_frequency(freq_hz: float) -> None:
    mel = wav_to_mel(_tone(freq_hz, 1.0), SAMPLE_RATE)
    centres_hz = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))[1:-1]
    loudest = int(np.argmax(np.median(mel[8:-8], axis=0)))
    below = int(np.searchsorted(centres_hz, freq_hz)) - 1
    assert loudest in (below, below + 1)


def test_dither_applies_the_096_gain_to_the_filtered_signal(shared_data: Path) -> None:
    samples, rate = load_wav(shared_data / "p225_003.wav")
    plain = wav_to_mel(samples, rate)
    dithered = wav_to_mel(samples, rate, dither_seed=225)
    np.testing.assert_array_equal(dithered, wav_to_mel(samples, rate, dither_seed=225))
    assert not np.array_equal(dithered, wav_to_mel(samples, rate, dither_seed=226))
    # Where the speech is loud (above -50 dB), the 1e-6 noise moves a value by under 2e-6 and the
    # gain is a constant dB shift; at -70 dB the noise alone already moves values by 2e-5.
    loud = (plain > 0.5) & (plain < 0.99)
    shift = 20.0 * np.log10(DITHER_GAIN) / 100.0
    np.testing.assert_allclose(dithered[loud] - plain[loud], shift, rtol=0, atol=5e-6)


# --- reading files -------------------------------------------------------------------------


def test_44k_stereo_24bit_file_matches_16k_mono(shared_data: Path, tmp_path: Path) -> None:
    samples, rate = load_wav(shared_data / "p225_003.wav")
    reference = wav_to_mel(0.5 * samples, rate)
    upsampled = signal.resample_poly(samples, 441, 160)
    stereo_path = tmp_path / "stereo_44k.wav"
    sf.write(stereo_path, np.stack([0.7 * upsampled, 0.3 * upsampled], axis=1), 44100, subtype="PCM_24")
    mel = mel_from_file(stereo_path)
    assert mel.shape == reference.shape
    # Away from the edges (resampler and reflect padding), the 16k -> 44.1k -> 16k round trip only
    # differs where its two anti-aliasing filters roll off: bands above ~7 kHz (measured 0.024);
    # the bands below differ by 24-bit rounding and filter ripple (measured 3.9e-4).
    difference = np.abs(mel - reference)[3:-3]
    band_upper_hz = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))[2:]
    assert difference[:, band_upper_hz <= 7000.0].max() < 1e-3
    assert difference.max() < 0.03


def test_load_wav_accepts_int_and_float_formats(tmp_path: Path) -> None:
    tone = _tone(440.0, 0.5)
    for subtype, tolerance in (("PCM_16", 2**-15), ("PCM_24", 2**-23), ("PCM_32", 2**-31), ("FLOAT", 1e-7)):
        path = tmp_path / f"tone_{subtype}.wav"
        sf.write(path, tone, SAMPLE_RATE, subtype=subtype)
        samples, rate = load_wav(path)
        assert rate == SAMPLE_RATE and samples.dtype == np.float64 and samples.ndim == 1
        np.testing.assert_allclose(samples, tone, rtol=0, atol=tolerance)


def test_load_wav_mixes_channels_to_mono(tmp_path: Path) -> None:
    left, right = _tone(440.0, 0.5), _tone(1000.0, 0.5, amplitude=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    samples, rate = load_wav(path)
    assert rate == 22050
    np.testing.assert_allclose(samples, (left + right) / 2, rtol=0, atol=1e-7)


def _write_text(path: Path) -> Path:
    path.write_text("not audio\n")
    return path


def _write_samples(path: Path, samples: np.ndarray, subtype: str = "PCM_16") -> Path:
    sf.write(path, samples, SAMPLE_RATE, subtype=subtype)
    return path


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda d: d / "missing.wav", "audio file not found"),
        (lambda d: _write_text(d / "notes.wav"), "not a readable audio file"),
        (lambda d: _write_samples(d / "empty.wav", np.zeros(0)), "has no samples"),
        (lambda d: _write_samples(d / "zeros.wav", np.zeros(16000)), "silent"),
        (lambda d: _write_samples(d / "hiss.wav", _tone(440.0, 1.0, amplitude=5e-5), "FLOAT"), "silent"),
        (lambda d: _write_samples(d / "8bit.wav", _tone(440.0, 1.0), "PCM_U8"), "8-bit audio is not supported"),
    ],
    ids=["missing", "not-audio", "empty", "all-zero", "below-threshold", "8-bit"],
)
def test_load_wav_refuses_bad_files(tmp_path: Path, make_file: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_wav(make_file(tmp_path))


def test_wav_to_mel_refuses_audio_shorter_than_one_window() -> None:
    with pytest.raises(UsageError, match="audio too short"):
        wav_to_mel(_tone(440.0, 0.05), SAMPLE_RATE)


# --- the real recordings --------------------------------------------------------------------


def test_real_recordings_have_the_shared_mels_distribution(shared_data: Path) -> None:
    """The shared mels are not segments of these recordings, so compare distributions.

    ``metadata.npz`` holds mels of other utterances (speakers p225, p228, p256, p270; the wavs are
    p225-p228): no offset aligns any shared mel with any of the four wavs (best max abs difference
    0.51, best correlation 0.58). What must agree is the level and spectral tilt of loud speech, per
    band: the 90th percentile of each band over all frames (measured: max difference 0.106, mean
    -0.036, correlation 0.958). A wrong dB reference (16 dB = 0.16), a missing Slaney normalisation
    (-31 dB in the low bands) or a power spectrum instead of magnitude breaks these bounds.
    """
    metadata = np.load(shared_data / "metadata.npz")
    shared = np.concatenate([metadata[f"mel_{speaker}"] for speaker in metadata["speakers"]])
    ours = []
    for name in WAV_NAMES:
        samples, rate = load_wav(shared_data / name)
        mel = wav_to_mel(samples, rate)
        assert mel.shape == (samples.shape[0] // HOP + 1, N_MELS) and mel.dtype == np.float32
        assert 0.0 <= mel.min() and mel.max() <= 1.0
        ours.append(mel)
    our_profile = np.percentile(np.concatenate(ours), 90, axis=0)
    shared_profile = np.percentile(shared, 90, axis=0)
    assert np.abs(our_profile - shared_profile).max() < 0.15
    assert abs(np.mean(our_profile - shared_profile)) < 0.06
    assert np.corrcoef(our_profile, shared_profile)[0, 1] > 0.9


# --- the embedded default input -------------------------------------------------------------


def test_default_mel_is_deterministic_voiced_and_in_range() -> None:
    mel = default_mel()
    np.testing.assert_array_equal(mel, default_mel())
    frames = mel.shape[0]
    assert mel.shape == (frames, N_MELS) and mel.dtype == np.float32
    assert 100 <= frames <= 130 and frames % 32 != 0
    assert 0.0 <= mel.min() and mel.max() <= 1.0 and mel.std() > 0.05
    # The harmonics of f0 100-220 Hz lie in the bands below 1 kHz: loud there in voiced frames,
    # and well above the pause (0.85-0.95 s) and the bands at the top, where only the noise floor is.
    centres_hz = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))[1:-1]
    low_bands = centres_hz < 1000.0
    voiced = mel[int(0.3 * SAMPLE_RATE / HOP) : int(0.7 * SAMPLE_RATE / HOP)]
    pause = mel[int(0.85 * SAMPLE_RATE / HOP) : int(0.95 * SAMPLE_RATE / HOP)]
    assert voiced[:, low_bands].max() > 0.8
    assert voiced[:, low_bands].mean() > pause[:, low_bands].mean() + 0.3
    assert voiced[:, low_bands].mean() > voiced[:, centres_hz > 6000.0].mean() + 0.3


def test_default_embeddings_are_deterministic_distinct_and_scaled() -> None:
    source, target = default_embeddings()
    again_source, again_target = default_embeddings()
    np.testing.assert_array_equal(source, again_source)
    np.testing.assert_array_equal(target, again_target)
    for vector in (source, target):
        assert vector.shape == (256,) and vector.dtype == np.float32
        assert np.linalg.norm(vector) == pytest.approx(EMBEDDING_NORM, rel=1e-6)
    assert abs(float(source @ target)) < 0.5 * EMBEDDING_NORM**2
    assert default_embeddings(64)[0].shape == (64,)


def test_default_batch_has_the_onnx_input_names_and_shapes() -> None:
    batch = default_batch(dim_emb=128)
    frames = default_mel().shape[0]
    assert {name: (array.shape, array.dtype) for name, array in batch.items()} == {
        "mel": ((1, frames, N_MELS), np.float32),
        "emb_src": ((1, 128), np.float32),
        "emb_trg": ((1, 128), np.float32),
    }
    np.testing.assert_array_equal(batch["mel"][0], default_mel())
