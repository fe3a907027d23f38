"""Flags that several commands share: ``--debug``/``--force``, ``--device``, the input files
(``--mel``, ``--wav``, ...), LiteRT output, and ``NAME=VALUE`` parsing."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from pipeline.models.autovc.inputs import DEFAULT_MAX_FRAMES
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES
from pipeline.runtime.errors import UsageError


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output folder that this tool did not write")


def device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where torch, onnxruntime and TF run (default auto: GPU where available)")


def input_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inputs (default: the embedded synthetic utterance)")
    group.add_argument("--mel", type=Path, action="append", default=[], metavar="FILE.npy",
                       help="mel-spectrogram (T, 80) float32; repeat for a batch of several lengths")
    group.add_argument("--wav", type=Path, action="append", default=[], metavar="FILE.wav",
                       help="audio run through the AutoVC front-end (any rate, mono or stereo); repeatable")
    group.add_argument("--emb-src", type=Path, metavar="FILE.npy", help="source speaker embedding(s) (dim_emb,) or (B, dim_emb)")
    group.add_argument("--emb-trg", type=Path, metavar="FILE.npy",
                       help="target speaker embedding(s); default: the source embedding (reconstruction)")
    group.add_argument("--speaker-encoder", type=Path, metavar="CKPT",
                       help="compute source embeddings from each input with the AutoVC speaker encoder (model_b)")
    group.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                       help=f"refuse inputs longer than this many frames (default {DEFAULT_MAX_FRAMES})")
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


def input_options(args: argparse.Namespace) -> dict:
    return dict(mel_files=args.mel, wav_files=args.wav, emb_src=args.emb_src, emb_trg=args.emb_trg,
                speaker_encoder=args.speaker_encoder, max_frames=args.max_frames)


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
