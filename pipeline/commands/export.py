"""``python -m pipeline export``: checkpoint -> torch module -> ONNX -> TF SavedModel -> parity,
for any model of :data:`pipeline.models.MODELS` (``--model``, AutoVC by default).

Each stage reads as one step below; everything is written into a temp folder that becomes
``--out`` only when every stage has finished.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.commands.flags import common, device, model_flag_values, model_flags, parity_chunks, tflite_flags, tflite_variants
from pipeline.models import DEFAULT_MODEL, MODELS, ModelSpec, declared_flags, model_spec
from pipeline.models.flags import refused, values
from pipeline.parity import Tolerance, run_parity, summary_table, write_report_files
from pipeline.parity.backends import (
    TORCH_CPU_THREADS,
    litert_interpreter,
    torch_threads,
)
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES
from pipeline.runtime import provenance
from pipeline.runtime.artifacts import AtomicOutputDir
from pipeline.runtime.errors import PipelineError, UsageError
from pipeline.runtime.progress import Progress
from pipeline.stages.tflite import litert_backend

DEFAULT_ARTIFACTS = Path("artifacts")
# export promises max abs <= 1e-5 between every pair of frameworks on every output.
EXPORT_TOLERANCE = Tolerance(atol=1e-5, rtol=0.0)


@dataclass
class ExportOptions:
    model: str = DEFAULT_MODEL  # a name in pipeline.models.MODELS
    checkpoint: Path | None = None
    seed: int = 0
    out: Path | None = None
    opset: int = 17
    keep_batchnorm: bool = True
    device: str = "auto"
    force: bool = False
    model_flags: dict = field(default_factory=dict)  # the models' own flags (--freq, ...) by key, read by the spec
    inputs: dict = field(default_factory=dict)  # the input flags by key, read by the model spec's inputs()
    parity_chunk_frames: int = DEFAULT_CHUNK_FRAMES  # frames budget per parity batch chunk (0: never split)
    tflite: bool = False  # also write model.tflite (pipeline.stages.tflite) and add LiteRT to the parity check
    tflite_quantize: tuple[str, ...] = ()  # also write model.<variant>.tflite for each (implies tflite)


def default_output_dir(options: ExportOptions) -> Path:
    return DEFAULT_ARTIFACTS / model_spec(options.model).default_output_name(options)


def run_export(options: ExportOptions) -> int:
    """Run every stage; 0 when all three frameworks agree, 1 when the parity check fails."""
    from pipeline.runtime.devices import resolve_devices
    from pipeline.stages.onnx_export import check_onnxruntime, export_onnx

    spec = model_spec(options.model)
    _refuse_unused_flags(spec, options)
    options = replace(options, model_flags=values(spec.flags, options.model_flags), inputs=values(spec.input_flags, options.inputs))
    progress = Progress()
    out = options.out or default_output_dir(options)
    with progress.stage("load model"):
        loaded = spec.load(options)
        module, info = loaded.module, loaded.info
    progress.info(f"  weights: {info['label']}")
    inputs = spec.inputs(loaded, options.inputs)
    input_files = provenance.build_input_files(checkpoint=options.checkpoint, **options.inputs)

    if options.tflite or options.tflite_quantize:
        litert_interpreter()  # its parity check runs model.tflite: fail now if LiteRT is missing
    output = AtomicOutputDir(out, force=options.force, reads=[path for _, path in input_files])
    with output as temp, torch_threads(TORCH_CPU_THREADS):
        # Devices and TensorFlow come after every input and the output folder are checked, so
        # that a bad input fails in seconds.
        with progress.stage("devices"):
            plan = resolve_devices(options.device)
        progress.info(plan.describe())
        from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model

        onnx_path = temp / "model.onnx"
        with progress.stage("torch -> onnx"):
            exported = export_onnx(
                module, onnx_path, spec=spec, opset=options.opset, keep_batchnorm=options.keep_batchnorm,
                metadata=spec.metadata(info),
            )
        progress.info(f"  {exported.size_bytes / 1e6:.1f} MB, {sum(exported.op_counts.values())} nodes")
        module.to(plan.torch_device)
        with progress.stage("onnxruntime check"):
            errors = check_onnxruntime(onnx_path, module, inputs.arrays, providers=plan.ort_providers)
        _require_close(errors, progress)

        with progress.stage("onnx -> tf"):
            tf_module = OnnxGraphModule(exported.model)
        with progress.stage("write savedmodel"):
            write_saved_model(tf_module, temp / "saved_model", xla_buckets=spec.xla_buckets(options))
        for flag in spec.flags:
            if flag.stage is not None and options.model_flags[flag.key]:
                with progress.stage(flag.stage.name):
                    flag.stage.write(loaded, temp / flag.stage.writes)
        tflite_models = _write_tflite(tf_module, temp, options, progress)

        with progress.stage("parity"):
            result = run_parity(
                onnx_path, temp / "saved_model", inputs.arrays,
                torch_module=module, ort_providers=plan.ort_providers, tf_device=plan.tf_device,
                default_tolerance=EXPORT_TOLERANCE, weights_origin=info["label"], devices=plan.to_json(),
                input_description=inputs.describe(), progress=progress,
                chunk_frames=options.parity_chunk_frames, input_files=input_files, paths_relative_to=temp,
                onnx_model=exported.model, tf_module=tf_module, extra_backends=[litert_backend(m) for m in tflite_models[:1]],
            )
            if tflite_models:
                result.tflite = _tflite_report(tflite_models, result, inputs.arrays, temp)
            write_report_files(result, temp / "report")
        output.manifest.update({
            "kind": "export",
            "model": spec.name,
            "weights": info["origin"],
            "weights_label": info["label"],
            "hyperparameters": info["hyperparameters"],
            "inputs": inputs.describe(),
            "devices": plan.to_json(),
            "parity": "pass" if result.passed else "fail",
            **({"tflite": result.tflite} if result.tflite else {}),
            "timings_s": progress.timings,
            "provenance": provenance.collect(input_files),
        })
    progress.info(summary_table(result))
    progress.info(f"artefacts: {out} (report: {out / 'report' / 'report.html'})")
    print(result.summary_line(), file=sys.stderr)
    return 0 if result.passed else 1


def _refuse_unused_flags(spec: ModelSpec, options: ExportOptions) -> None:
    """A model's flag given for a model that does not read it is a usage error."""
    unused = refused(spec.flags, declared_flags("flags"), options.model_flags)
    unused += refused(spec.input_flags, declared_flags("input_flags"), options.inputs)
    if unused:
        raise UsageError(f"{', '.join(unused)}: not an option of --model {spec.name}")


def _write_tflite(tf_module: Any, directory: Path, options: ExportOptions, progress: Progress) -> list:
    """``model.tflite`` (and one file per ``--tflite-quantize`` variant) when asked, else nothing."""
    from pipeline.stages.tflite import write_tflite

    if not (options.tflite or options.tflite_quantize):
        return []
    with progress.stage("write tflite"):
        models = write_tflite(tf_module, directory, (None, *options.tflite_quantize))
    for model in models:
        progress.info(f"  {model.path.name}: {model.size_bytes / 1e6:.1f} MB, builtin ops: {', '.join(model.ops)}")
    return models


def _tflite_report(models: list, result: Any, inputs: dict, directory: Path) -> dict:
    """The report's ``tflite`` section: every file, and each quantized variant's error against
    torch (onnxruntime without torch) on the parity chunk the report shows."""
    from pipeline.parity.chunks import take
    from pipeline.stages.tflite import report_section, variant_errors

    reference = "torch" if "torch" in result.shown_outputs else "ort"
    start, stop = result.shown_rows or (0, None)
    shown_inputs = take(inputs, slice(start, stop)) if result.shown_rows else inputs
    errors = variant_errors(models[1:], shown_inputs, result.shown_outputs[reference], result.model["outputs"])
    return report_section(models, errors, reference, relative_to=directory)


def _require_close(errors: dict[str, float], progress: Progress) -> None:
    """The ONNX stage's own gate: onnxruntime must reproduce torch before TF is tried."""
    progress.info("  max abs vs torch: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    broken = {k: v for k, v in errors.items() if not v <= EXPORT_TOLERANCE.atol}
    if broken:
        detail = ", ".join(f"{k} {v:.2e}" for k, v in broken.items())
        raise PipelineError(f"onnxruntime disagrees with torch beyond {EXPORT_TOLERANCE.atol:g} max abs: {detail}")


def add_parser(commands: argparse._SubParsersAction) -> None:
    extras = "".join(f" (and {flag.stage.writes}/ with {flag.option})"
                     for flag in declared_flags("flags").values() if flag.stage is not None)
    p = commands.add_parser(
        "export",
        help="PyTorch model (--model, AutoVC by default) -> model.onnx -> TF SavedModel, checked against torch",
        description=(
            "Build the model (--model, AutoVC by default; from --checkpoint, or seeded random weights when "
            "none is given), export it "
            "to ONNX, import it into TensorFlow with our handlers, write a SavedModel and check all "
            "three frameworks agree. Output folder: model.onnx, saved_model/, report/, manifest.json"
            f"{extras}."
        ),
    )
    p.add_argument("--model", choices=tuple(MODELS), default=DEFAULT_MODEL,
                   help="the model to build: " + "; ".join(f"{name}: {model_spec(name).summary}" for name in MODELS)
                   + f" (default {DEFAULT_MODEL})")
    p.add_argument("--checkpoint", type=Path,
                   help="; ".join(f"{name}: {model_spec(name).checkpoint_format}" for name in MODELS))
    p.add_argument("--seed", type=int, default=0, help="seed for random weights when no --checkpoint (default 0)")
    p.add_argument("--out", type=Path,
                   help="output folder (default artifacts/<checkpoint name or MODEL-random-seed0, e.g. autovc-random-seed0>)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--fold-batchnorm", action="store_true",
                   help="fold BatchNorm into the preceding Conv (default: keep BatchNormalization nodes)")
    model_flags(p)
    tflite_flags(p)
    device(p)
    parity_chunks(p)
    common(p)
    p.set_defaults(command=run_args)


def run_args(args: argparse.Namespace) -> int:
    options = ExportOptions(
        model=args.model,
        checkpoint=args.checkpoint,
        seed=args.seed,
        out=args.out,
        opset=args.opset,
        keep_batchnorm=not args.fold_batchnorm,
        device=args.device,
        force=args.force,
        model_flags=model_flag_values(args, "flags"),
        inputs=model_flag_values(args, "input_flags"),
        parity_chunk_frames=args.parity_chunk_frames,
        tflite=args.tflite,
        tflite_quantize=tflite_variants(args),
    )
    return run_export(options)
