"""The D_VECTOR speaker encoder's spec: ``mel`` (batch, time, 80) -> ``embedding`` (batch,
dim_emb). Checkpoints are the authors' format, ``{'model_b': state_dict}`` (``3000000-BL.ckpt``);
without one, seeded random weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.models import LoadedModel, ModelSpec
from pipeline.models.autovc.flags import MAX_FRAMES, MEL, WAV

INPUT_NAMES = ("mel",)
OUTPUT_NAMES = ("embedding",)
DYNAMIC_AXES = {"mel": {0: "batch", 1: "time"}, "embedding": {0: "batch"}}


def load(options: Any) -> LoadedModel:
    """From ``options.checkpoint`` (layer count and sizes read from its shapes), else the
    authors' sizes with seeded random weights."""
    from pipeline.models.autovc.speaker_encoder import load_speaker_encoder

    if options.checkpoint is None:
        return random(options.seed, {})
    encoder, origin = load_speaker_encoder(options.checkpoint)
    label = f"checkpoint {options.checkpoint.name} (sha256 {origin['sha256'][:12]})"
    return LoadedModel(encoder, {"hyperparameters": _sizes(encoder), "origin": origin, "label": label})


def random(seed: int, hyperparameters: Mapping[str, Any]) -> LoadedModel:
    """``D_VECTOR(**hyperparameters)`` (the authors' sizes by default) with the default
    initialisation drawn from ``seed``; the global torch RNG is left untouched."""
    import torch

    from pipeline.models.autovc.speaker_encoder import D_VECTOR

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = D_VECTOR(**hyperparameters).eval()
    info = {"hyperparameters": _sizes(encoder), "origin": {"kind": "random", "seed": seed},
            "label": f"random weights, seed {seed}"}
    return LoadedModel(encoder, info)


def _sizes(encoder: Any) -> dict[str, int]:
    return {
        "num_layers": encoder.lstm.num_layers,
        "dim_input": encoder.lstm.input_size,
        "dim_cell": encoder.lstm.hidden_size,
        "dim_emb": encoder.embedding.out_features,
    }


def example_inputs(module: Any, batch: int, frames: int) -> tuple:
    import torch

    return (torch.zeros(batch, frames, module.lstm.input_size),)


def inputs(model: LoadedModel, input_options: Mapping[str, Any]) -> Any:
    """AutoVC's mel batch (the same ``--mel``/``--wav`` files or the default utterance), its
    ``mel`` only."""
    from pipeline.models.autovc.inputs import build_inputs

    batch = build_inputs(dim_emb=model.info["hyperparameters"]["dim_emb"], **input_options)
    batch.arrays = {"mel": batch.arrays["mel"]}
    batch.embedding_source = "none (the model computes the embedding)"
    return batch


SPEC = ModelSpec(
    name="dvector",
    summary="AutoVC's D_VECTOR speaker encoder (mel -> embedding)",
    input_names=INPUT_NAMES,
    output_names=OUTPUT_NAMES,
    dynamic_axes=DYNAMIC_AXES,
    checkpoint_format="the authors' speaker encoder checkpoint (3000000-BL.ckpt: {'model_b': state_dict})",
    load=load,
    random=random,
    example_inputs=example_inputs,
    inputs=inputs,
    xla_buckets=lambda options: {},
    input_flags=(MEL, WAV, MAX_FRAMES),
)
