"""Weights between the trainable TF module and PyTorch.

Both directions work on a :class:`~.trainable.TrainableGraph` and on the object
``tf.saved_model.load`` returns for one: their ``parameters`` and ``buffers`` map PyTorch
state-dict keys to ``tf.Variable``s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch


def tf_state_dict(module: Any) -> dict[str, torch.Tensor]:
    """The module's variables as a PyTorch state dict (parameters, then buffers; BatchNorm's
    ``num_batches_tracked`` stays int64), ready for ``Generator.load_state_dict(strict=True)``."""
    return {
        key: torch.from_numpy(np.array(var.numpy()))
        for key, var in [*module.parameters.items(), *module.buffers.items()]
    }


def write_checkpoint(module: Any, path: Path) -> Path:
    """Save the module's weights as the authors' checkpoint layout, ``{'model': state_dict}``
    with ``torch.save``, readable by ``load_generator``. The file appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"model": tf_state_dict(module)}, partial)
    os.replace(partial, path)
    return path


def assign_state(module: Any, state: Mapping[str, np.ndarray | torch.Tensor]) -> None:
    """Set every parameter and buffer of the module from a PyTorch state dict (same keys)."""
    variables = {**module.parameters, **module.buffers}
    missing = sorted(set(variables) - set(state))
    unexpected = sorted(set(state) - set(variables))
    if missing or unexpected:
        raise KeyError(f"state dict does not match the module: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, var in variables.items():
        value = state[key]
        var.assign(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)
