"""The toy model's spec: everything ``export --model toy`` needs, its flags included."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models import LoadedModel, ModelSpec
from pipeline.models.flags import ExtraStage, ModelFlag

CHANNELS = 3  # tests.toy_model.model.CHANNELS, without importing torch
FRAMES = 20


@dataclass
class ToyBatch:
    arrays: dict[str, np.ndarray]

    def describe(self) -> dict[str, Any]:
        return {"shapes": {name: list(value.shape) for name, value in self.arrays.items()}}


def _dump_weights(model: LoadedModel, directory: Path) -> None:
    directory.mkdir()
    np.save(directory / "conv.npy", model.module.conv.weight.detach().cpu().numpy())


WIDTH = ModelFlag("--width", "output channels of the toy Conv1d (default 4)", 4, {"type": int})
DUMP_WEIGHTS = ModelFlag("--dump-weights", "also write weights/conv.npy", False, {"action": "store_true"},
                         stage=ExtraStage("dump weights", "weights", _dump_weights))


def load(options: Any) -> LoadedModel:
    return random(options.seed, {"width": options.model_flags[WIDTH.key]})


def random(seed: int, hyperparameters: Mapping[str, Any]) -> LoadedModel:
    import torch

    from tests.toy_model.model import Toy

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = Toy(**hyperparameters).eval()
    info = {"hyperparameters": dict(hyperparameters), "origin": {"kind": "random", "seed": seed},
            "label": f"random weights, seed {seed}"}
    return LoadedModel(module, info)


def example_inputs(module: Any, batch: int, frames: int) -> tuple:
    import torch

    return (torch.zeros(batch, CHANNELS, frames),)


def inputs(model: LoadedModel, input_options: Mapping[str, Any]) -> ToyBatch:
    assert not input_options  # the toy reads no input flag
    return ToyBatch({"x": np.random.default_rng(0).standard_normal((2, CHANNELS, FRAMES)).astype(np.float32)})


SPEC = ModelSpec(
    name="toy",
    summary="a Conv1d + ReLU for the tests (x -> y)",
    input_names=("x",),
    output_names=("y",),
    dynamic_axes={"x": {0: "batch", 2: "time"}, "y": {0: "batch", 2: "time"}},
    checkpoint_format="none (random weights only)",
    load=load,
    random=random,
    example_inputs=example_inputs,
    inputs=inputs,
    xla_buckets=lambda options: {},
    flags=(WIDTH, DUMP_WEIGHTS),
)
