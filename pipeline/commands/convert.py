"""``python -m pipeline convert``: any ONNX model our handlers cover -> TF SavedModel."""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx

from pipeline.commands.flags import common, tflite_flags, tflite_variants
from pipeline.runtime.artifacts import AtomicOutputDir
from pipeline.runtime.errors import UsageError
from pipeline.runtime.progress import Progress
from pipeline.stages.onnx_io import load_onnx


def run_convert(model_path: Path, out: Path, *, force: bool = False, tflite: bool = False,
                tflite_quantize: tuple[str, ...] = ()) -> int:
    """``out``: the SavedModel (saved_model.pb, variables/), and with ``tflite`` model.tflite and
    one model.<variant>.tflite per ``tflite_quantize`` variant beside it, builtin ops only."""
    progress = Progress()
    with progress.stage("load onnx"):
        model = load_onnx(model_path)
    with progress.stage("check ops"):
        _require_supported(model, model_path)
    from custom_ops.support import UnsupportedOptionError

    output = AtomicOutputDir(out, force=force, reads=[model_path])
    with output as temp:
        from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model

        with progress.stage("onnx -> tf"):
            module = OnnxGraphModule(model)
        try:
            with progress.stage("write savedmodel"):
                write_saved_model(module, temp)
        except UnsupportedOptionError as error:  # refused by a handler while tracing
            raise UsageError(f"cannot convert {model_path}: {error}") from None
        if tflite or tflite_quantize:
            from pipeline.stages.tflite import report_section, write_tflite

            with progress.stage("write tflite"):
                models = write_tflite(module, temp, (None, *tflite_quantize))
            for written in models:
                progress.info(f"  {written.path.name}: {written.size_bytes / 1e6:.1f} MB, builtin ops: {', '.join(written.ops)}")
            output.manifest.update({"tflite": report_section(models, {}, None, relative_to=temp),
                                    "timings_s": progress.timings})
        progress.info(f"SavedModel written to {out}")
    return 0


def _require_supported(model: onnx.ModelProto, path: Path) -> None:
    """One line naming the first node onnx-tf cannot convert (and how many more there are)."""
    from custom_ops.support import UnsupportedOpError, UnsupportedOptionError, check_supported

    try:
        check_supported(model)
    except UnsupportedOptionError as error:
        raise UsageError(f"cannot convert {path}: {error}") from None
    except UnsupportedOpError as error:
        more = len(error.nodes) - 1
        rest = f", and {more} more {'node' if more == 1 else 'nodes'}" if more else ""
        raise UsageError(f"cannot convert {path}: {error.nodes[0]}{rest}") from None


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "convert",
        help="any ONNX model our handlers cover -> TF SavedModel",
        description="Import an ONNX model with onnx-tf and our handlers and write a TF SavedModel "
        "with a serving_default signature (ONNX input/output names, dynamic dims kept as None).",
    )
    p.add_argument("model", type=Path, help="the ONNX model file")
    p.add_argument("--out", type=Path, required=True, help="output folder for the SavedModel")
    tflite_flags(p)
    common(p)
    p.set_defaults(command=run_args)


def run_args(args: argparse.Namespace) -> int:
    return run_convert(args.model, args.out, force=args.force, tflite=args.tflite or bool(args.tflite_quantize),
                       tflite_quantize=tflite_variants(args))
