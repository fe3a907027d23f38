"""The models ``export --model NAME`` builds: one package per model, each described by one
:class:`ModelSpec`. The commands and stages read a model only through its spec, so that a new
model is a new package and one line in :data:`MODELS`.

Importing a spec must not import torch (the command line lists the models in ``--help``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.runtime.errors import UsageError


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to export: the torch module (eval mode) and where its weights came from
    (``hyperparameters``, ``origin``: ``{"kind": "checkpoint", "path", "sha256"}`` or
    ``{"kind": "random", "seed"}``, and a ``label`` for reports)."""

    module: Any
    info: Mapping[str, Any]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the commands need to know about one model."""

    name: str
    summary: str
    """One line for ``--help``."""
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    """ONNX name -> {axis: dim name}, for inputs and outputs."""
    checkpoint_format: str
    """What ``--checkpoint`` must hold, for ``--help`` and errors."""
    load: Callable[[Any], LoadedModel]
    """``load(options)``: from ``options.checkpoint``, or seeded random weights
    (``options.seed``) when it is None; reads the model's own flags (:attr:`flags`)."""
    random: Callable[[int, Mapping[str, Any]], LoadedModel]
    """``random(seed, hyperparameters)``: the model :attr:`load` gives for that seed, rebuilt
    from what :meth:`metadata` recorded (``parity`` adds PyTorch this way)."""
    example_inputs: Callable[[Any, int, int], tuple]
    """``example_inputs(module, batch, frames)``: the tensors the exporter traces."""
    inputs: Callable[[LoadedModel, Mapping[str, Any]], Any]
    """``inputs(model, input_options)``: the parity batch (an ``InputBatch``) from the input
    flags (``--mel``, ``--wav``, ...), or the model's default input."""
    xla_buckets: Callable[[Any], Mapping[str, int]]
    """``xla_buckets(options)``: dim name -> multiple the model pads it to (``serving_xla``
    compiles one program per bucket)."""
    flags: tuple[str, ...] = ()
    """Export options beyond the common ones that this model reads (others are refused)."""
    input_flags: tuple[str, ...] = ()
    """Input options (keys of ``ExportOptions.inputs``) that this model reads."""

    def default_output_name(self, options: Any) -> str:
        """``artifacts/<this>`` when ``--out`` is not given."""
        return options.checkpoint.stem if options.checkpoint else f"{self.name}-random-seed{options.seed}"

    def metadata(self, info: Mapping[str, Any]) -> dict[str, str]:
        """ONNX metadata_props recording the weights (``parity`` rebuilds random-weight models)."""
        import json

        return {
            f"{self.name}.hyperparameters": json.dumps(dict(info["hyperparameters"]), sort_keys=True),
            f"{self.name}.weights_origin": json.dumps(info["origin"], sort_keys=True),
            f"{self.name}.weights_label": info["label"],
        }


MODELS: dict[str, str] = {
    "autovc": "pipeline.models.autovc.spec",
    "dvector": "pipeline.models.dvector.spec",
}
"""Model name -> the module whose ``SPEC`` describes it; the first is the default."""
DEFAULT_MODEL = next(iter(MODELS))


def model_spec(name: str) -> ModelSpec:
    """The spec of the model called ``name`` (one of :data:`MODELS`)."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return importlib.import_module(MODELS[name]).SPEC
