"""AutoVC: the generator in PyTorch, its weights, the authors' speaker encoder, the audio
front-end, the default input and the model's spec (names, axes, flags; :mod:`.spec`).

The PyTorch names are loaded on first use, so that importing the spec or the input builders (as
the command line does to list its flags) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DEFAULT_HYPERPARAMETERS": "checkpoint",
    "ModelInfo": "checkpoint",
    "load_generator": "checkpoint",
    "random_generator": "checkpoint",
    "AutoVC": "model",
    "Decoder": "model",
    "Encoder": "model",
    "Generator": "model",
    "Postnet": "model",
    "D_VECTOR": "speaker_encoder",
    "load_speaker_encoder": "speaker_encoder",
    "speaker_embedding": "speaker_encoder",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
