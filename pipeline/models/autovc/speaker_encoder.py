"""The AutoVC authors' speaker encoder (``D_VECTOR`` in their ``model_bl.py``).

A unidirectional LSTM over mel frames whose output at the last frame goes through a linear layer
and is L2-normalised. Their checkpoint ``3000000-BL.ckpt`` holds ``{'model_b': state_dict}``
with ``module.``-prefixed keys; the state-dict keys here are the same (``lstm.*``,
``embedding.weight``, ``embedding.bias``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.models.autovc.checkpoint import load_matching, read_state_dict
from pipeline.runtime.errors import UsageError


class D_VECTOR(nn.Module):  # noqa: N801  (the authors' name, kept so the model is recognisable)
    """d-vector speaker embedding: (B, T, dim_input) -> unit-norm (B, dim_emb)."""

    def __init__(
        self, num_layers: int = 3, dim_input: int = 80, dim_cell: int = 768, dim_emb: int = 256
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim_input, dim_cell, num_layers=num_layers, batch_first=True)
        self.embedding = nn.Linear(dim_cell, dim_emb)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(mel)
        embeds = self.embedding(outputs[:, -1, :])
        return embeds / embeds.norm(p=2, dim=-1, keepdim=True)


def load_speaker_encoder(path: str | Path) -> tuple[D_VECTOR, dict[str, str]]:
    """The speaker encoder stored in ``path`` (``{'model_b': sd}`` or a bare state dict, with or
    without ``module.`` prefixes), in eval mode, and its origin (path and sha256).
    Layer count and sizes are read from the tensor shapes."""
    path = Path(path)
    state_dict, sha256 = read_state_dict(path, container_key="model_b")
    dims = _infer_dims(state_dict, path)
    encoder = D_VECTOR(**dims)
    label = "D_VECTOR(" + ", ".join(f"{k}={v}" for k, v in dims.items()) + ")"
    load_matching(encoder, state_dict, label, lambda key: "a layer size", path)
    return encoder.eval(), {"kind": "checkpoint", "path": str(path), "sha256": sha256}


def speaker_embedding(encoder: D_VECTOR, mel: np.ndarray | torch.Tensor) -> np.ndarray:
    """The unit-norm embedding (dim_emb,) float32 of one utterance's mel (T, dim_input).

    The whole utterance is used; the authors averaged the embeddings of 128-frame crops of
    several utterances per speaker.
    """
    mel = torch.as_tensor(mel, dtype=torch.float32)
    dim_input = encoder.lstm.input_size
    if mel.ndim != 2 or mel.shape[0] < 1 or mel.shape[1] != dim_input:
        raise UsageError(
            f"speaker encoder needs a mel of shape (T, {dim_input}) with T >= 1, "
            f"got {tuple(mel.shape)}"
        )
    if not torch.isfinite(mel).all():
        raise UsageError("speaker encoder input mel contains NaN or infinite values")
    with torch.no_grad():
        return encoder(mel.unsqueeze(0))[0].numpy()


def _infer_dims(state_dict: dict[str, torch.Tensor], path: Path) -> dict[str, int]:
    needed = ["lstm.weight_ih_l0", "embedding.weight"]
    missing = [key for key in needed if key not in state_dict]
    if missing:
        raise UsageError(
            f"checkpoint is not a D_VECTOR speaker encoder: missing keys ({', '.join(missing)}): "
            f"{path}"
        )
    layer_keys = [k for k in state_dict if re.fullmatch(r"lstm\.weight_ih_l\d+", k)]
    input_weight, embedding_weight = state_dict["lstm.weight_ih_l0"], state_dict["embedding.weight"]
    if input_weight.ndim != 2 or embedding_weight.ndim != 2:
        raise UsageError(
            f"checkpoint is not a D_VECTOR speaker encoder: lstm.weight_ih_l0 and embedding.weight "
            f"must be 2-D: {path}"
        )
    return {
        "num_layers": len(layer_keys),
        "dim_input": input_weight.shape[1],
        "dim_cell": embedding_weight.shape[1],
        "dim_emb": embedding_weight.shape[0],
    }
