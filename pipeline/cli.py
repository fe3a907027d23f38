"""``python -m pipeline``: export, convert, parity, train-parity.

Every subcommand prints stage progress on stderr and ends with one line. Failures the user can
act on print one ``error:`` line and exit 2 (bad arguments or input files) or 1 (a run that
failed); ``--debug`` prints the traceback first.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from pipeline.models import DEFAULT_MODEL, MODELS, model_spec
from pipeline.models.autovc.inputs import DEFAULT_MAX_FRAMES
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES
from pipeline.parity.metrics import DEFAULT_TOLERANCE
from pipeline.runtime.errors import PipelineError, UsageError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pipeline.runtime.provenance import record_command

    record_command(sys.argv[1:] if argv is None else argv, parser.prog)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except (KeyboardInterrupt, Exception) as error:
        if args.debug:
            traceback.print_exc()
        # Ctrl-C inside an extension module's import surfaces as an ImportError caused by it.
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
        if cause is not None:
            print("interrupted: no output was written", file=sys.stderr)
            return 130
        if isinstance(error, PipelineError):
            print(f"error: {error}", file=sys.stderr)
            return error.exit_code
        if _is_bad_model(error):
            print(f"error: {error}", file=sys.stderr)
            return UsageError.exit_code
        first_line = (str(error).strip().splitlines() or [""])[0]  # a bug: say so in one line
        print(
            f"internal error: {type(error).__name__}: {first_line} (run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _is_bad_model(error: BaseException) -> bool:
    """An ONNX node our handlers refuse while translating it: a bad input, not a bug."""
    support = sys.modules.get("custom_ops.support")  # never imported just to answer this
    return support is not None and isinstance(error, support.UnsupportedOptionError)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say one line and exit 2 like every other usage error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(UsageError.exit_code)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pipeline",
        description="Convert AutoVC from PyTorch to TensorFlow through ONNX and prove the result exact.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND", parser_class=_Parser)
    _add_export(commands)
    _add_convert(commands)
    _add_parity(commands)
    _add_train_parity(commands)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output folder that this tool did not write")


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where torch, onnxruntime and TF run (default auto: GPU where available)")


def _input_flags(parser: argparse.ArgumentParser) -> None:
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


def _input_options(args: argparse.Namespace) -> dict:
    return dict(mel_files=args.mel, wav_files=args.wav, emb_src=args.emb_src, emb_trg=args.emb_trg,
                speaker_encoder=args.speaker_encoder, max_frames=args.max_frames)


def _add_export(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "export",
        help="PyTorch AutoVC -> model.onnx -> TF SavedModel, checked against torch",
        description=(
            "Build the model (--model, AutoVC by default; from --checkpoint, or seeded random weights when "
            "none is given), export it "
            "to ONNX, import it into TensorFlow with our handlers, write a SavedModel and check all "
            "three frameworks agree. Output folder: model.onnx, saved_model/, report/, manifest.json "
            "(and trainable/ with --trainable)."
        ),
    )
    p.add_argument("--model", choices=tuple(MODELS), default=DEFAULT_MODEL,
                   help="the model to build: " + "; ".join(f"{name}: {model_spec(name).summary}" for name in MODELS)
                   + f" (default {DEFAULT_MODEL})")
    p.add_argument("--checkpoint", type=Path,
                   help="; ".join(f"{name}: {model_spec(name).checkpoint_format}" for name in MODELS))
    p.add_argument("--freq", type=int, default=32, help="code down-sampling factor of the checkpoint (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights when no --checkpoint (default 0)")
    p.add_argument("--out", type=Path,
                   help="output folder (default artifacts/<checkpoint name or MODEL-random-seed0, e.g. autovc-random-seed0>)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--fold-batchnorm", action="store_true",
                   help="fold BatchNorm into the preceding Conv (default: keep BatchNormalization nodes)")
    p.add_argument("--trainable", action="store_true",
                   help="also write trainable/: a TF SavedModel to fine-tune, variables named after the "
                   "PyTorch parameters, with train_forward, loss and inference (about 30 s and 115 MB more)")
    _tflite_flags(p)
    _device(p)
    _input_flags(p)
    _common(p)
    p.set_defaults(command=_run_export)


def _tflite_flags(parser: argparse.ArgumentParser) -> None:
    from pipeline.stages.tflite import QUANTIZE_VARIANTS

    group = parser.add_argument_group("LiteRT (TFLite)")
    group.add_argument("--tflite", action="store_true",
                       help="also write model.tflite: LiteRT builtin ops only, any batch and length "
                       "(resize_tensor_input, then allocate_tensors)")
    group.add_argument("--tflite-quantize", action="append", default=[], choices=QUANTIZE_VARIANTS,
                       help="also write model.<variant>.tflite (implies --tflite; repeatable): dynamic "
                       "(int8 weights) or float16 weights; size and error are reported, not held to the tolerance")


def _tflite_variants(args: argparse.Namespace) -> tuple[str, ...]:
    """The --tflite-quantize variants, each once, in the order given."""
    return tuple(dict.fromkeys(args.tflite_quantize))


def _add_convert(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "convert",
        help="any ONNX model our handlers cover -> TF SavedModel",
        description="Import an ONNX model with onnx-tf and our handlers and write a TF SavedModel "
        "with a serving_default signature (ONNX input/output names, dynamic dims kept as None).",
    )
    p.add_argument("model", type=Path, help="the ONNX model file")
    p.add_argument("--out", type=Path, required=True, help="output folder for the SavedModel")
    _tflite_flags(p)
    _common(p)
    p.set_defaults(command=_run_convert)


def _add_parity(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "parity",
        help="compare PyTorch, onnxruntime and TensorFlow on the same inputs; write report.json/html",
        description=(
            "Run the same inputs through onnxruntime (--onnx), the TF SavedModel (--saved-model) and, "
            "when the PyTorch AutoVC is known (--checkpoint, or random weights recorded in the ONNX "
            "metadata), PyTorch; compare every pair per output and per ONNX node. Exit 1 when a pair "
            "breaks the tolerance: |candidate - reference| <= atol + rtol * |reference| per element."
        ),
    )
    p.add_argument("--onnx", type=Path, required=True, help="the ONNX model")
    p.add_argument("--saved-model", type=Path, required=True, help="the TF SavedModel folder")
    p.add_argument("--report", type=Path, required=True,
                   help="folder for report.json, report.html, summary.txt (and manifest.json)")
    p.add_argument("--tflite", type=Path, metavar="FILE",
                   help="a LiteRT model of the same graph (e.g. export's model.tflite): adds the LiteRT backend")
    p.add_argument("--checkpoint", type=Path, help="AutoVC checkpoint the ONNX was exported from (adds PyTorch)")
    p.add_argument("--freq", type=int, default=32, help="code down-sampling factor of the checkpoint (default 32)")
    p.add_argument("--sweep", type=Path, metavar="PATH",
                   help="many inputs: a metadata.npz, or a folder with metadata.npz, .wav and mel .npy files")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input by ONNX name, for models that are not AutoVC (default: seeded random)")
    p.add_argument("--atol", type=float, default=DEFAULT_TOLERANCE.atol, help=f"default {DEFAULT_TOLERANCE.atol:g}")
    p.add_argument("--rtol", type=float, default=DEFAULT_TOLERANCE.rtol, help=f"default {DEFAULT_TOLERANCE.rtol:g}")
    p.add_argument("--tolerance", action="append", default=[], metavar="OUTPUT=ATOL,RTOL",
                   help="tolerance for one output, e.g. codes=1e-6,0")
    p.add_argument("--no-per-layer", action="store_true", help="skip the per-node comparison")
    _device(p)
    _input_flags(p)
    _common(p)
    p.set_defaults(command=_run_parity)


def _add_train_parity(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train-parity",
        help="fine-tune AutoVC in torch and in the trainable TF export; compare losses, gradients, Adam steps",
        description=(
            "Train the same AutoVC (--checkpoint, or random weights) in PyTorch and in the trainable "
            "TensorFlow SavedModel on the same batch, with the authors' objective and PyTorch's Adam, "
            "and compare losses, every gradient, the weights after each step and the BatchNorm running "
            "statistics. Exit 1 when a tolerance is broken; --report writes report.json/html."
        ),
    )
    p.add_argument("--checkpoint", type=Path, help="AutoVC generator checkpoint (default: random weights, seed 0)")
    p.add_argument("--freq", type=int, default=32, help="code down-sampling factor of the checkpoint (default 32)")
    p.add_argument("--steps", type=int, default=10, help="Adam steps to compare (default 10)")
    p.add_argument("--report", type=Path, help="folder for report.json, report.html, summary.txt")
    p.add_argument("--data", type=Path, metavar="METADATA.npz",
                   help="training batch: every mel of an AutoVC metadata.npz (default: the embedded utterance)")
    p.add_argument("--frames", type=int, default=64, help="frames per utterance, a multiple of --freq (default 64)")
    _common(p)
    p.set_defaults(command=_run_train_parity)


def _run_export(args: argparse.Namespace) -> int:
    from pipeline.commands.export import ExportOptions, run_export

    options = ExportOptions(
        model=args.model,
        checkpoint=args.checkpoint,
        freq=args.freq,
        seed=args.seed,
        out=args.out,
        opset=args.opset,
        keep_batchnorm=not args.fold_batchnorm,
        device=args.device,
        force=args.force,
        trainable=args.trainable,
        inputs=_input_options(args),
        parity_chunk_frames=args.parity_chunk_frames,
        tflite=args.tflite,
        tflite_quantize=_tflite_variants(args),
    )
    return run_export(options)


def _run_parity(args: argparse.Namespace) -> int:
    from pipeline.commands.parity import ParityOptions, run_parity_command
    from pipeline.parity.metrics import Tolerance

    options = ParityOptions(
        onnx=args.onnx, saved_model=args.saved_model, report=args.report, checkpoint=args.checkpoint,
        freq=args.freq, device=args.device, sweep=args.sweep,
        named_inputs=dict(_key_value(item, "--input", Path) for item in args.input),
        inputs=_input_options(args), atol=args.atol, rtol=args.rtol,
        per_output={name: Tolerance(*value) for name, value in
                    (_key_value(item, "--tolerance", _atol_rtol) for item in args.tolerance)},
        per_layer=not args.no_per_layer, chunk_frames=args.parity_chunk_frames, force=args.force,
        tflite=args.tflite,
    )
    return run_parity_command(options)


def _key_value(item: str, flag: str, parse: Callable) -> tuple[str, Any]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"{flag} expects NAME=VALUE, got {item!r}")
    try:
        return name, parse(value)
    except ValueError as error:
        raise UsageError(f"{flag} {item!r}: {error}") from None


def _atol_rtol(text: str) -> tuple[float, float]:
    atol, sep, rtol = text.partition(",")
    if not sep:
        raise ValueError("expected ATOL,RTOL")
    return float(atol), float(rtol)


def _run_train_parity(args: argparse.Namespace) -> int:
    from pipeline.training import train_parity
    from pipeline.training.report import summary_table

    result = train_parity(args.checkpoint, args.steps, args.report, freq=args.freq, data=args.data,
                          frames=args.frames, force=args.force)
    print(summary_table(result), file=sys.stderr, end="")
    return 0 if result.passed else 1


def _run_convert(args: argparse.Namespace) -> int:
    from pipeline.commands.convert import run_convert

    return run_convert(args.model, args.out, force=args.force, tflite=args.tflite or bool(args.tflite_quantize),
                       tflite_quantize=_tflite_variants(args))
