"""``python -m pipeline export``: checkpoint -> torch module -> ONNX -> TF SavedModel -> parity.

Each stage reads as one step below; everything is written into a temp folder that becomes
``--out`` only when every stage has finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.artifacts import AtomicOutputDir
from pipeline.errors import PipelineError
from pipeline.inputs import InputBatch, build_inputs
from pipeline.progress import Progress

DEFAULT_ARTIFACTS = Path("artifacts")
ONNXRUNTIME_ATOL = 1e-5


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
    inputs: dict = field(default_factory=dict)  # keyword arguments of pipeline.inputs.build_inputs


def default_output_dir(options: ExportOptions) -> Path:
    name = options.checkpoint.stem if options.checkpoint else f"autovc-random-seed{options.seed}"
    return DEFAULT_ARTIFACTS / name


def run_export(options: ExportOptions) -> int:
    from pipeline.autovc import AutoVC, load_generator, random_generator
    from pipeline.onnx_export import check_onnxruntime, export_metadata, export_onnx

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

    output = AtomicOutputDir(out, force=options.force)
    with output as temp:
        onnx_path = temp / "model.onnx"
        with progress.stage("torch -> onnx"):
            exported = export_onnx(
                module, onnx_path, opset=options.opset, keep_batchnorm=options.keep_batchnorm,
                metadata=export_metadata(info),
            )
        progress.info(f"  {exported.size_bytes / 1e6:.1f} MB, {sum(exported.op_counts.values())} nodes")
        with progress.stage("onnxruntime check"):
            errors = check_onnxruntime(onnx_path, module, inputs.arrays)
        _require_close("onnxruntime", errors, progress)

        with progress.stage("onnx -> tf"):
            from pipeline.onnx_io import load_onnx
            from pipeline.tf_convert import OnnxGraphModule, write_saved_model

            tf_module = OnnxGraphModule(load_onnx(onnx_path))
        with progress.stage("write savedmodel"):
            write_saved_model(tf_module, temp / "saved_model")
        with progress.stage("tensorflow check"):
            errors = _saved_model_errors(temp / "saved_model", module, inputs)
        _require_close("tensorflow", errors, progress)

        output.manifest.update({
            "kind": "export",
            "weights": info["origin"],
            "weights_label": info["label"],
            "hyperparameters": info["hyperparameters"],
            "inputs": inputs.describe(),
            "timings_s": progress.timings,
        })
    progress.info(f"export finished: {out}")
    return 0


def _saved_model_errors(saved_model: Path, module, inputs: InputBatch) -> dict[str, float]:
    import torch

    from pipeline.onnx_export import INPUT_NAMES, OUTPUT_NAMES
    from pipeline.tf_convert import run_saved_model

    tf_outputs = run_saved_model(saved_model, inputs.arrays)
    with torch.no_grad():
        torch_outputs = module(*(torch.from_numpy(inputs.arrays[n]) for n in INPUT_NAMES))
    return {n: float(np.max(np.abs(tf_outputs[n] - t.numpy()))) for n, t in zip(OUTPUT_NAMES, torch_outputs)}


def _require_close(backend: str, errors: dict[str, float], progress: Progress) -> None:
    progress.info("  max abs vs torch: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    broken = {k: v for k, v in errors.items() if not v <= ONNXRUNTIME_ATOL}
    if broken:
        detail = ", ".join(f"{k} {v:.2e}" for k, v in broken.items())
        raise PipelineError(f"{backend} disagrees with torch beyond {ONNXRUNTIME_ATOL:g} max abs: {detail}")
