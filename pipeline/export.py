"""``python -m pipeline export``: checkpoint -> torch module -> ONNX -> TF SavedModel -> parity.

Each stage reads as one step below; everything is written into a temp folder that becomes
``--out`` only when every stage has finished.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import provenance
from pipeline.artifacts import AtomicOutputDir
from pipeline.errors import PipelineError
from pipeline.inputs import build_inputs
from pipeline.onnx_io import load_onnx
from pipeline.parity import Tolerance, run_parity, summary_table, write_report_files
from pipeline.parity.backends import (
    TORCH_CPU_THREADS,
    litert_interpreter,
    torch_threads,
)
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES
from pipeline.progress import Progress
from pipeline.tflite import litert_backend

DEFAULT_ARTIFACTS = Path("artifacts")
# export promises max abs <= 1e-5 between every pair of frameworks on every output.
EXPORT_TOLERANCE = Tolerance(atol=1e-5, rtol=0.0)


@dataclass
class ExportOptions:
    checkpoint: Path | None = None
    freq: int = 32
    seed: int = 0
    out: Path | None = None
    opset: int = 17
    keep_batchnorm: bool = True
    device: str = "auto"
    force: bool = False
    trainable: bool = False  # also write trainable/ (pipeline.training.write_trainable)
    inputs: dict = field(default_factory=dict)  # keyword arguments of pipeline.inputs.build_inputs
    parity_chunk_frames: int = DEFAULT_CHUNK_FRAMES  # frames budget per parity batch chunk (0: never split)
    tflite: bool = False  # also write model.tflite (pipeline.tflite) and add LiteRT to the parity check
    tflite_quantize: tuple[str, ...] = ()  # also write model.<variant>.tflite for each (implies tflite)


def default_output_dir(options: ExportOptions) -> Path:
    name = options.checkpoint.stem if options.checkpoint else f"autovc-random-seed{options.seed}"
    return DEFAULT_ARTIFACTS / name


def run_export(options: ExportOptions) -> int:
    """Run every stage; 0 when all three frameworks agree, 1 when the parity check fails."""
    from pipeline.autovc import AutoVC, load_generator, random_generator
    from pipeline.devices import resolve_devices
    from pipeline.onnx_export import DYNAMIC_AXES, check_onnxruntime, export_metadata, export_onnx

    progress = Progress()
    out = options.out or default_output_dir(options)
    with progress.stage("load model"):
        if options.checkpoint is not None:
            generator, info = load_generator(options.checkpoint, freq=options.freq)
        else:
            generator, info = random_generator(options.seed, freq=options.freq)
        module = AutoVC(generator).eval()
    progress.info(f"  weights: {info['label']}")
    inputs = build_inputs(dim_emb=generator.dim_emb, **options.inputs)
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
        from pipeline.tf_convert import OnnxGraphModule, write_saved_model

        onnx_path = temp / "model.onnx"
        with progress.stage("torch -> onnx"):
            exported = export_onnx(
                module, onnx_path, opset=options.opset, keep_batchnorm=options.keep_batchnorm,
                metadata=export_metadata(info),
            )
        progress.info(f"  {exported.size_bytes / 1e6:.1f} MB, {sum(exported.op_counts.values())} nodes")
        module.to(plan.torch_device)
        with progress.stage("onnxruntime check"):
            errors = check_onnxruntime(onnx_path, module, inputs.arrays, providers=plan.ort_providers)
        _require_close(errors, progress)

        with progress.stage("onnx -> tf"):
            tf_module = OnnxGraphModule(load_onnx(onnx_path))
        with progress.stage("write savedmodel"):
            # AutoVC zero-pads time to a multiple of freq itself: serving_xla compiles per bucket.
            write_saved_model(tf_module, temp / "saved_model", xla_buckets={DYNAMIC_AXES["mel"][1]: options.freq})
        if options.trainable:
            _write_trainable(generator, temp / "trainable", progress)
        tflite_models = _write_tflite(tf_module, temp, options, progress)

        with progress.stage("parity"):
            result = run_parity(
                onnx_path, temp / "saved_model", inputs.arrays,
                torch_module=module, ort_providers=plan.ort_providers, tf_device=plan.tf_device,
                default_tolerance=EXPORT_TOLERANCE, weights_origin=info["label"], devices=plan.to_json(),
                input_description=inputs.describe(), progress=progress,
                chunk_frames=options.parity_chunk_frames, input_files=input_files, paths_relative_to=temp,
                tf_module=tf_module, extra_backends=[litert_backend(m) for m in tflite_models[:1]],
            )
            if tflite_models:
                result.tflite = _tflite_report(tflite_models, result, inputs.arrays, temp)
            write_report_files(result, temp / "report")
        output.manifest.update({
            "kind": "export",
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


def _write_trainable(generator: Any, directory: Path, progress: Progress) -> None:
    """The trainable SavedModel (variables named after the PyTorch parameters and buffers)
    into ``directory``. Its export traces CPU tensors: a generator on the GPU is copied to the
    CPU, the one the parity stage runs stays where it is."""
    import copy

    from pipeline.training import write_trainable

    with progress.stage("write trainable"):
        on_cpu = all(p.device.type == "cpu" for p in [*generator.parameters(), *generator.buffers()])
        write_trainable(generator if on_cpu else copy.deepcopy(generator).cpu(), directory)


def _write_tflite(tf_module: Any, directory: Path, options: ExportOptions, progress: Progress) -> list:
    """``model.tflite`` (and one file per ``--tflite-quantize`` variant) when asked, else nothing."""
    from pipeline.tflite import write_tflite

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
    from pipeline.tflite import report_section, variant_errors

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
