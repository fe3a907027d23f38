"""AutoVC's one spec: its ONNX names, dynamic axes, example and default inputs, checkpoint
loader and the flags it reads. Every other module takes AutoVC's names from here.

An ONNX graph cannot have an input and an output of the same name, so the mel input is ``mel``
and the decoder's mel output is ``mel_decoder``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.models import LoadedModel, ModelSpec
from pipeline.models.autovc.flags import FREQ, INPUT_FLAGS, TRAINABLE

INPUT_NAMES = ("mel", "emb_src", "emb_trg")
OUTPUT_NAMES = ("mel_decoder", "mel_postnet", "codes")
TIME = "time"
DYNAMIC_AXES = {
    "mel": {0: "batch", 1: TIME},
    "emb_src": {0: "batch"},
    "emb_trg": {0: "batch"},
    "mel_decoder": {0: "batch", 1: TIME},
    "mel_postnet": {0: "batch", 1: TIME},
    "codes": {0: "batch", 1: "segments"},
}

def load(options: Any) -> LoadedModel:
    """The generator from ``options.checkpoint`` (``{'model': state_dict}``), or seeded random
    weights, with ``--freq`` from ``options.model_flags``, wrapped as the exported :class:`~.model.AutoVC`."""
    from pipeline.models.autovc.checkpoint import load_generator, random_generator
    from pipeline.models.autovc.model import AutoVC

    freq = options.model_flags[FREQ.key]
    if options.checkpoint is not None:
        generator, info = load_generator(options.checkpoint, freq=freq)
    else:
        generator, info = random_generator(options.seed, freq=freq)
    return LoadedModel(AutoVC(generator).eval(), info)


def random(seed: int, hyperparameters: Mapping[str, Any]) -> LoadedModel:
    from pipeline.models.autovc.checkpoint import random_generator
    from pipeline.models.autovc.model import AutoVC

    generator, info = random_generator(seed, **hyperparameters)
    return LoadedModel(AutoVC(generator).eval(), info)


def example_inputs(module: Any, batch: int, frames: int) -> tuple:
    import torch

    from pipeline.models.autovc.model import N_MELS

    dim_emb = module.generator.dim_emb
    return (torch.zeros(batch, frames, N_MELS), torch.zeros(batch, dim_emb), torch.zeros(batch, dim_emb))


def inputs(model: LoadedModel, input_options: Mapping[str, Any]) -> Any:
    from pipeline.models.autovc.inputs import build_inputs

    return build_inputs(dim_emb=model.module.generator.dim_emb, **input_options)


SPEC = ModelSpec(
    name="autovc",
    summary="the AutoVC generator (mel, emb_src, emb_trg -> mel_decoder, mel_postnet, codes)",
    input_names=INPUT_NAMES,
    output_names=OUTPUT_NAMES,
    dynamic_axes=DYNAMIC_AXES,
    checkpoint_format="AutoVC generator checkpoint (autovc.ckpt: {'model': state_dict})",
    load=load,
    random=random,
    example_inputs=example_inputs,
    inputs=inputs,
    # AutoVC zero-pads time to a multiple of freq itself: serving_xla compiles per bucket.
    xla_buckets=lambda options: {TIME: options.model_flags[FREQ.key]},
    flags=(FREQ, TRAINABLE),
    input_flags=INPUT_FLAGS,
)
