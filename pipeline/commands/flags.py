"""Flags that several commands share: ``--debug``/``--force``, ``--device``, the models' own
flags (declared in their specs), ``--parity-chunk-frames``, LiteRT output, and ``NAME=VALUE``
parsing."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from pipeline.models import FlagKind, declared_flags, models_reading
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES
from pipeline.runtime.errors import UsageError


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output folder that this tool did not write")


def device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where torch, onnxruntime and TF run (default auto: GPU where available)")


def model_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every model of :data:`~pipeline.models.MODELS` declares (its own, then those of
    its input), each once, its help naming the models that read it."""
    groups = (("flags", "model options (refused for a --model that does not read them)"),
              ("input_flags", "inputs (default: the model's own; AutoVC's is the embedded synthetic utterance)"))
    for kind, title in groups:
        group = parser.add_argument_group(title)
        for flag in declared_flags(kind).values():
            flag.add_to(group, f" [--model {', '.join(models_reading(flag, kind))}]")


def parity_chunks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parity-chunk-frames", type=_frames_budget, default=DEFAULT_CHUNK_FRAMES, metavar="N",
                        help="run the parity check on batch chunks of at most N frames (rows x padded length; "
                        f"an utterance longer than N is a chunk of its own; 0: never split; default {DEFAULT_CHUNK_FRAMES})")


def _frames_budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of frames >= 0 (0: never split), got {text!r}")
    return value


def tflite_flags(parser: argparse.ArgumentParser) -> None:
    from pipeline.stages.tflite import QUANTIZE_VARIANTS

    group = parser.add_argument_group("LiteRT (TFLite)")
    group.add_argument("--tflite", action="store_true",
                       help="also write model.tflite: LiteRT builtin ops only, any batch and length "
                       "(resize_tensor_input, then allocate_tensors)")
    group.add_argument("--tflite-quantize", action="append", default=[], choices=QUANTIZE_VARIANTS,
                       help="also write model.<variant>.tflite (implies --tflite; repeatable): dynamic "
                       "(int8 weights) or float16 weights; size and error are reported, not held to the tolerance")


def tflite_variants(args: argparse.Namespace) -> tuple[str, ...]:
    """The --tflite-quantize variants, each once, in the order given."""
    return tuple(dict.fromkeys(args.tflite_quantize))


def key_value(item: str, flag: str, parse: Callable) -> tuple[str, Any]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"{flag} expects NAME=VALUE, got {item!r}")
    try:
        return name, parse(value)
    except ValueError as error:
        raise UsageError(f"{flag} {item!r}: {error}") from None


def model_flag_values(args: argparse.Namespace, kind: FlagKind) -> dict[str, Any]:
    """The value of every flag :func:`model_flags` added of one kind, by key."""
    return {key: getattr(args, key) for key in declared_flags(kind)}
