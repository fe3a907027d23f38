"""``python -m pipeline convert``: any ONNX model our handlers cover -> TF SavedModel."""

from __future__ import annotations

from pathlib import Path

from pipeline.artifacts import AtomicOutputDir
from pipeline.onnx_io import load_onnx
from pipeline.progress import Progress


def run_convert(model_path: Path, out: Path, *, force: bool = False) -> int:
    progress = Progress()
    with progress.stage("load onnx"):
        model = load_onnx(model_path)
    with AtomicOutputDir(out, force=force) as temp:
        from pipeline.tf_convert import OnnxGraphModule, write_saved_model

        with progress.stage("onnx -> tf"):
            module = OnnxGraphModule(model)
        with progress.stage("write savedmodel"):
            write_saved_model(module, temp)
        progress.info(f"SavedModel written to {out}")
    return 0
