"""Inputs of a parity run: one or more named cases, each a dict of arrays by ONNX input name.

Utterances of different lengths are zero-padded at the end into one batch; their lengths are
recorded in the case description. Padding frames are compared like every other frame: all
backends run the same padded tensor, so every output element (padding included) must agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.autovc.inputs import pad_batch
from pipeline.models.autovc.spec import INPUT_NAMES as AUTOVC_INPUTS


@dataclass
class InputCase:
    """One set of inputs; ``description`` is copied into report.json as is (JSON types only)."""

    name: str
    arrays: dict[str, np.ndarray]
    description: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.description,
            "tensors": {name: _tensor_summary(value) for name, value in self.arrays.items()},
        }


def metadata_sweep_cases(npz_path: Path, input_names: Sequence[str] = AUTOVC_INPUTS) -> list[InputCase]:
    """One case per (source speaker, target speaker) pair of an AutoVC ``metadata.npz``.

    The file holds ``speakers`` (N names), ``embeddings`` (N, dim) and ``mel_<speaker>`` (T, 80).
    Each case batches every speaker's mel (zero-padded to the longest) with the source speaker's
    embedding as ``emb_src`` and the target's as ``emb_trg`` on every row, so the N * N cases run
    every mel with every embedding pair.
    """
    mel_name, src_name, trg_name = input_names
    with np.load(npz_path, allow_pickle=False) as data:
        speakers = [str(s) for s in data["speakers"]]
        embeddings = np.asarray(data["embeddings"], np.float32)
        mels = [np.asarray(data[f"mel_{speaker}"], np.float32) for speaker in speakers]
    batch, lengths = pad_batch(mels)
    rows = len(speakers)
    cases = []
    for source, target in product(range(rows), repeat=2):
        arrays = {
            mel_name: batch,
            src_name: np.repeat(embeddings[source][None], rows, axis=0),
            trg_name: np.repeat(embeddings[target][None], rows, axis=0),
        }
        description = {
            "source": str(npz_path),
            "utterances": [f"mel_{speaker}" for speaker in speakers],
            "lengths": lengths,
            "emb_src": speakers[source],
            "emb_trg": speakers[target],
        }
        cases.append(InputCase(f"{speakers[source]}->{speakers[target]}", arrays, description))
    return cases


def _tensor_summary(value: np.ndarray) -> dict[str, Any]:
    summary: dict[str, Any] = {"shape": list(value.shape), "dtype": str(value.dtype)}
    if value.size and np.issubdtype(value.dtype, np.number):
        summary.update(min=float(value.min()), max=float(value.max()), mean=float(value.mean()))
    return summary
