"""The training batch of a parity run: mels cropped or zero-padded to one length that is a
multiple of ``freq`` (as the authors' data loader crops segments and ``pad_seq`` pads), and
one speaker embedding per utterance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.autovc.inputs import default_inputs
from pipeline.models.autovc.model import N_MELS
from pipeline.models.autovc.spec import INPUT_NAMES
from pipeline.runtime.errors import UsageError


@dataclass(frozen=True)
class TrainingBatch:
    """``mel`` (B, frames, 80) and ``emb`` (B, dim_emb), float32; ``lengths`` are the
    utterances' lengths before cropping or padding."""

    mel: np.ndarray
    emb: np.ndarray
    sources: tuple[str, ...]
    lengths: tuple[int, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "mel_shape": list(self.mel.shape),
            "emb_shape": list(self.emb.shape),
            "utterances": list(self.sources),
            "lengths": list(self.lengths),
            "fitting": "first frames kept when longer, zeros appended when shorter",
        }


def training_batch(
    mels: Sequence[np.ndarray], emb: np.ndarray, frames: int, freq: int, sources: Sequence[str]
) -> TrainingBatch:
    """Stack ``mels`` (each (T, 80)) cropped or zero-padded at the end to ``frames``."""
    if frames < freq or frames % freq:
        raise UsageError(f"frames must be a positive multiple of freq={freq}, got {frames}")
    emb = np.asarray(emb, np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(mels):
        raise UsageError(f"need one embedding per utterance: {len(mels)} utterances, embeddings {emb.shape}")
    fitted = []
    for mel, source in zip(mels, sources):
        mel = np.asarray(mel, np.float32)
        if mel.ndim != 2 or mel.shape[1] != N_MELS:
            raise UsageError(f"{source}: mel must be (T, {N_MELS}), got {mel.shape}")
        fitted.append(np.pad(mel[:frames], ((0, max(0, frames - len(mel))), (0, 0))))
    return TrainingBatch(
        mel=np.stack(fitted), emb=emb, sources=tuple(sources), lengths=tuple(len(m) for m in mels)
    )


def read_training_batch(path: Path, frames: int, freq: int) -> TrainingBatch:
    """The utterances of a ``metadata.npz``: ``speakers`` (names), ``mel_<speaker>`` (T, 80)
    and ``embeddings`` (one row per speaker)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            speakers = [str(s) for s in data["speakers"]]
            mels = [data[f"mel_{speaker}"] for speaker in speakers]
            emb = data["embeddings"]
    except (OSError, KeyError, ValueError) as error:
        raise UsageError(f"cannot read training data from {path}: {error}") from None
    return training_batch(mels, emb, frames, freq, [f"{path.name}:{s}" for s in speakers])


def default_training_batch(dim_emb: int, frames: int, freq: int) -> TrainingBatch:
    """The project's embedded synthetic utterance and its seeded embedding (batch of one)."""
    batch = default_inputs(dim_emb)
    mel = batch.arrays["mel"][0]
    return training_batch([mel], batch.arrays[INPUT_NAMES[1]], frames, freq, batch.sources)
