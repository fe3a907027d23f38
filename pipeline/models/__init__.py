"""The models ``export --model NAME`` builds: one package per model, each described by one
:class:`ModelSpec`. The commands and stages read a model only through its spec, so that a new
model is a new package and one line in :data:`MODELS`.

Importing a spec must not import torch (the command line lists the models in ``--help``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.models.flags import ModelFlag
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
    (``options.seed``) when it is None; reads its own flags (:attr:`flags`) from
    ``options.model_flags``, a value for each."""
    random: Callable[[int, Mapping[str, Any]], LoadedModel]
    """``random(seed, hyperparameters)``: the model :attr:`load` gives for that seed, rebuilt
    from what :meth:`metadata` recorded (``parity`` adds PyTorch this way)."""
    example_inputs: Callable[[Any, int, int], tuple]
    """``example_inputs(module, batch, frames)``: the tensors the exporter traces."""
    inputs: Callable[[LoadedModel, Mapping[str, Any]], Any]
    """``inputs(model, input_options)``: the parity batch (``arrays`` by ONNX input name and
    ``describe()`` for the report) from a value for each of :attr:`input_flags`, or the
    model's default input."""
    xla_buckets: Callable[[Any], Mapping[str, int]]
    """``xla_buckets(options)``: dim name -> multiple the model pads it to (``serving_xla``
    compiles one program per bucket)."""
    flags: tuple[ModelFlag, ...] = ()
    """The command-line flags of this model beyond the common ones (``export`` refuses them
    for the other models)."""
    input_flags: tuple[ModelFlag, ...] = ()
    """The flags of the parity input that this model reads (``--mel``, ...)."""

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


FlagKind = Literal["flags", "input_flags"]


def declared_flags(kind: FlagKind) -> dict[str, ModelFlag]:
    """The flags of one kind (:attr:`ModelSpec.flags` or :attr:`ModelSpec.input_flags`) of every
    model, by key, each once, in the order of :data:`MODELS`. Models that read the same flag
    share its :class:`ModelFlag`."""
    found: dict[str, ModelFlag] = {}
    for name in MODELS:
        for flag in getattr(model_spec(name), kind):
            if found.setdefault(flag.key, flag) != flag:
                raise ValueError(f"{flag.option} of --model {name} differs from another model's {found[flag.key].option}")
    return found


def models_reading(flag: ModelFlag, kind: FlagKind) -> list[str]:
    """The names of the models that declare ``flag``."""
    return [name for name in MODELS if flag in getattr(model_spec(name), kind)]
