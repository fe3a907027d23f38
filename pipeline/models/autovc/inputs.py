"""The input batch every backend runs: ``mel`` (B, T, 80), ``emb_src`` and ``emb_trg`` (B, dim_emb).

Sources: the embedded default (a synthetic utterance made by the project), mel ``.npy`` files,
wav files through the AutoVC front-end, speaker embeddings from ``.npy`` files or computed by
the speaker encoder. Utterances of different lengths are zero-padded at the end to the longest
one (the model pads to a multiple of ``freq`` the same way); their true lengths are recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.autovc.audio import N_MELS
from pipeline.models.autovc.flags import DEFAULT_MAX_FRAMES
from pipeline.models.autovc.spec import INPUT_NAMES
from pipeline.runtime.errors import UsageError


@dataclass
class InputBatch:
    """Arrays keyed by ONNX input name, plus what they are for the report."""

    arrays: dict[str, np.ndarray]
    lengths: list[int]
    sources: list[str]
    embedding_source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "shapes": {name: list(value.shape) for name, value in self.arrays.items()},
            "lengths": self.lengths,
            "utterances": self.sources,
            "embeddings": self.embedding_source,
            "padding": "zeros at the end to the longest utterance",
            **self.extra,
        }


def default_inputs(dim_emb: int) -> InputBatch:
    from pipeline.models.autovc.default_input import DEFAULT_INPUT_LABEL, default_batch

    arrays = default_batch(dim_emb)
    return InputBatch(arrays, [arrays["mel"].shape[1]], [DEFAULT_INPUT_LABEL], "default (seeded, norm 0.8)")


def build_inputs(
    *,
    dim_emb: int,
    mel_files: list[Path] | None = None,
    wav_files: list[Path] | None = None,
    emb_src: Path | None = None,
    emb_trg: Path | None = None,
    speaker_encoder: Path | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> InputBatch:
    """The batch from user files, or the embedded default when no mel or wav is given."""
    if max_frames < 1:
        raise UsageError(f"--max-frames must be at least 1, got {max_frames}")
    mels: list[np.ndarray] = []
    sources: list[str] = []
    for path in mel_files or []:
        mels.append(read_mel(path, max_frames))
        sources.append(str(path))
    for path in wav_files or []:
        from pipeline.models.autovc.audio import mel_from_file

        mel = mel_from_file(path)
        _check_mel(mel, str(path), max_frames)
        mels.append(mel)
        sources.append(str(path))

    if not mels:
        batch = default_inputs(dim_emb)
        if emb_src is None and emb_trg is None and speaker_encoder is None:
            return batch
        mels, sources = [batch.arrays["mel"][0]], batch.sources

    mel, lengths = pad_batch(mels)

    if speaker_encoder is not None:
        source = _embeddings_from_encoder(speaker_encoder, mels, dim_emb)
        src_label = f"speaker encoder {speaker_encoder}"
    elif emb_src is not None:
        source = read_embeddings(emb_src, len(mels), dim_emb)
        src_label = str(emb_src)
    else:
        from pipeline.models.autovc.default_input import default_embeddings

        source = np.repeat(default_embeddings(dim_emb)[0][None], len(mels), axis=0)
        src_label = "default"
    target = read_embeddings(emb_trg, len(mels), dim_emb) if emb_trg is not None else source
    trg_label = str(emb_trg) if emb_trg is not None else "same as source (reconstruction)"
    arrays = dict(zip(INPUT_NAMES, (mel, source.astype(np.float32), target.astype(np.float32))))
    return InputBatch(arrays, lengths, sources, f"source: {src_label}; target: {trg_label}")


def pad_batch(utterances: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """(T_i, C) arrays -> (B, max T_i, C) float32, zero-padded at the end, and the lengths T_i."""
    if not utterances:
        raise UsageError("no utterances to batch")
    if any(u.ndim != 2 for u in utterances) or len({u.shape[1] for u in utterances}) != 1:
        raise UsageError(f"utterances must all be (T, C) with the same C, got {[u.shape for u in utterances]}")
    lengths = [int(u.shape[0]) for u in utterances]
    batch = np.zeros((len(utterances), max(lengths), utterances[0].shape[1]), np.float32)
    for row, utterance in zip(batch, utterances):
        row[: len(utterance)] = utterance
    return batch, lengths


def read_mel(path: Path, max_frames: int = DEFAULT_MAX_FRAMES) -> np.ndarray:
    """A (T, 80) float32 mel from ``.npy`` (never unpickled)."""
    array = load_npy(path, "mel")
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise UsageError(f"mel {path}: expected shape (T, {N_MELS}), got {array.shape}")
    _check_mel(array, str(path), max_frames)
    return array.astype(np.float32)


def read_embeddings(path: Path, batch: int, dim_emb: int) -> np.ndarray:
    """(dim_emb,), (1, dim_emb) or (batch, dim_emb) from ``.npy``, returned as (batch, dim_emb)."""
    array = load_npy(path, "speaker embedding")
    shape = array.shape
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != dim_emb or array.shape[0] not in (1, batch):
        raise UsageError(
            f"speaker embedding {path}: expected shape ({dim_emb},) or ({batch}, {dim_emb}) "
            f"for this model, got {shape}"
        )
    _check_finite(array, f"speaker embedding {path}")
    return np.broadcast_to(array, (batch, dim_emb)).astype(np.float32)


def _check_mel(mel: np.ndarray, label: str, max_frames: int) -> None:
    if mel.shape[-1] != N_MELS:
        raise UsageError(f"mel {label}: expected {N_MELS} mel bands in the last axis, got shape {mel.shape}")
    if mel.shape[0] == 0:
        raise UsageError(f"mel {label}: has 0 frames")
    if mel.shape[0] > max_frames:
        raise UsageError(
            f"mel {label}: {mel.shape[0]} frames is over the limit of {max_frames} (raise it with --max-frames)"
        )
    _check_finite(mel, f"mel {label}")


def _check_finite(array: np.ndarray, label: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise UsageError(f"{label}: contains {int(bad.sum())} NaN/Inf values")


def load_npy(path: Path, what: str) -> np.ndarray:
    """A numeric array from a `.npy` file, never unpickled; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} file {path} not found")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UsageError(f"{what} file {path} is not a readable .npy array ({error})") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise UsageError(f"{what} file {path} does not hold a numeric array")
    return array


def _embeddings_from_encoder(checkpoint: Path, mels: list[np.ndarray], dim_emb: int) -> np.ndarray:
    from pipeline.models.autovc import load_speaker_encoder, speaker_embedding

    encoder, _ = load_speaker_encoder(checkpoint)
    embeddings = np.stack([speaker_embedding(encoder, m) for m in mels])
    if embeddings.shape[1] != dim_emb:
        raise UsageError(
            f"speaker encoder {checkpoint} makes {embeddings.shape[1]}-dim embeddings; the model needs {dim_emb}"
        )
    return embeddings
