"""``python -m pipeline convert``: any ONNX model our handlers cover -> TF SavedModel."""

from __future__ import annotations

from pathlib import Path

import onnx

from pipeline.artifacts import AtomicOutputDir
from pipeline.errors import UsageError
from pipeline.onnx_io import load_onnx
from pipeline.progress import Progress


def run_convert(model_path: Path, out: Path, *, force: bool = False) -> int:
    progress = Progress()
    with progress.stage("load onnx"):
        model = load_onnx(model_path)
    with progress.stage("check ops"):
        _require_supported(model, model_path)
    from custom_ops.support import UnsupportedOptionError

    with AtomicOutputDir(out, force=force, reads=[model_path]) as temp:
        from pipeline.tf_convert import OnnxGraphModule, write_saved_model

        with progress.stage("onnx -> tf"):
            module = OnnxGraphModule(model)
        try:
            with progress.stage("write savedmodel"):
                write_saved_model(module, temp)
        except UnsupportedOptionError as error:  # refused by a handler while tracing
            raise UsageError(f"cannot convert {model_path}: {error}") from None
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
