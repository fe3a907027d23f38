"""Export stage: AutoVC (PyTorch) -> ONNX with the legacy TorchScript exporter.

The legacy exporter is used on purpose: the dynamo exporter specialises the LSTM sequence length
to the example input, so its model fails at any other T. Batch and time axes are dynamic.
BatchNorm nodes are kept by default (the exporter otherwise folds them into the convolutions),
so the converter downstream has to handle them. The same weights give a byte-identical file.

An ONNX graph cannot have an input and an output of the same name, so the mel input is ``mel``
and the decoder's mel output is ``mel_decoder``.
"""

from __future__ import annotations

import collections
import io
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from .autovc.checkpoint import ModelInfo
from .autovc.model import N_MELS, AutoVC
from .errors import PipelineError, UsageError

INPUT_NAMES = ("mel", "emb_src", "emb_trg")
OUTPUT_NAMES = ("mel_decoder", "mel_postnet", "codes")
DYNAMIC_AXES = {
    "mel": {0: "batch", 1: "time"},
    "emb_src": {0: "batch"},
    "emb_trg": {0: "batch"},
    "mel_decoder": {0: "batch", 1: "time"},
    "mel_postnet": {0: "batch", 1: "time"},
    "codes": {0: "batch", 1: "segments"},
}
# Opsets tested with this model; above 20 the legacy exporter only warns that it is unsupported.
MIN_OPSET = 13
MAX_OPSET = 20
EXAMPLE_BATCH = 2


@dataclass(frozen=True)
class ExportResult:
    path: Path
    op_counts: dict[str, int]
    size_bytes: int
    seconds: float


def export_onnx(
    module: AutoVC,
    path: str | Path,
    *,
    opset: int = 17,
    keep_batchnorm: bool = True,
    example_T: int = 64,
    metadata: Mapping[str, str] | None = None,
) -> ExportResult:
    """Export ``module`` (put in eval mode) to ``path``, checked and shape-inferred.

    ``metadata`` (e.g. from :func:`export_metadata`) goes into the model's metadata_props along
    with the torch and onnx versions, the opset and whether BatchNorm was kept; these export
    facts win over ``metadata`` keys of the same name. ``example_T`` is the number of frames of
    the example input that is traced; the graph is valid for every T >= 1.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    if example_T < 1:
        raise UsageError(f"example_T must be at least 1, got {example_T}")
    path = Path(path)
    start = time.perf_counter()
    module.eval()
    generator = module.generator
    example = (
        torch.zeros(EXAMPLE_BATCH, example_T, N_MELS),
        torch.zeros(EXAMPLE_BATCH, generator.dim_emb),
        torch.zeros(EXAMPLE_BATCH, generator.dim_emb),
    )
    with warnings.catch_warnings(), torch.no_grad():
        _ignore_expected_export_warnings()
        # PRESERVE exports an eval-mode module's BatchNorm as BatchNormalization nodes;
        # EVAL lets the exporter fold them into the preceding Conv.
        training = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
        exported = export_to_bytes(module, example, opset=opset, training=training)
    model = onnx.load_from_string(exported)
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    facts = {
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": str(opset),
        "batchnorm": "kept" if keep_batchnorm else "folded",
    }
    del model.metadata_props[:]
    for key, value in sorted({**(metadata or {}), **facts}.items()):
        model.metadata_props.add(key=key, value=value)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    onnx.save(model, partial)
    os.replace(partial, path)
    return ExportResult(
        path=path,
        op_counts=op_counts(model),
        size_bytes=path.stat().st_size,
        seconds=round(time.perf_counter() - start, 3),
    )


def export_metadata(info: ModelInfo) -> dict[str, str]:
    """metadata_props entries that record the Generator's hyperparameters and weights origin."""
    return {
        "autovc.hyperparameters": json.dumps(info["hyperparameters"], sort_keys=True),
        "autovc.weights_origin": json.dumps(info["origin"], sort_keys=True),
        "autovc.weights_label": info["label"],
    }


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each op type the main graph has, sorted by op type."""
    return dict(sorted(collections.Counter(node.op_type for node in model.graph.node).items()))


def check_onnxruntime(
    onnx_path: str | Path,
    module: AutoVC,
    inputs: Mapping[str, np.ndarray],
    providers: Sequence[str] = ("CPUExecutionProvider",),
    threads: int = 0,
) -> dict[str, float]:
    """Max abs difference, per output name, between onnxruntime running ``onnx_path`` and
    ``module`` (in eval mode) on the same ``inputs`` (keyed by :data:`INPUT_NAMES`).
    ``threads`` sets onnxruntime's intra-op threads (0: its default)."""
    try:
        import onnxruntime
    except ImportError:
        raise PipelineError(
            "onnxruntime is not installed: install the project with pip install '.[cpu]' "
            "(or '.[gpu]')"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=list(providers))
    feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in INPUT_NAMES}
    ort_outputs = session.run(list(OUTPUT_NAMES), feed)
    module.eval()
    with torch.no_grad():
        torch_outputs = module(*(torch.from_numpy(feed[name]) for name in INPUT_NAMES))
    errors = {}
    for name, ort_value, torch_value in zip(OUTPUT_NAMES, ort_outputs, torch_outputs):
        expected = torch_value.numpy()
        if ort_value.shape != expected.shape:
            raise PipelineError(
                f"onnxruntime gives {name} of shape {ort_value.shape}, torch {expected.shape}"
            )
        errors[name] = float(np.max(np.abs(ort_value - expected), initial=0.0))
    return errors


def _ignore_expected_export_warnings() -> None:
    """Silence what the legacy exporter always says about this model, and nothing else."""
    # Its own deprecation: using it is deliberate (see the module docstring).
    warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX")
    warnings.filterwarnings("ignore", message="The feature will be removed", module=r"torch\.onnx")
    # Addressed to modules in training mode; ours is in eval mode and BatchNorm is preserved.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    # No initial LSTM states are exported, so every batch size works (tested).
    warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
    # nn.LSTM's own input-size checks, which read shapes in Python while being traced.
    warnings.filterwarnings(
        "ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.modules\.rnn"
    )


def export_to_bytes(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    *,
    opset: int,
    input_names: Sequence[str] = INPUT_NAMES,
    output_names: Sequence[str] = OUTPUT_NAMES,
    dynamic_axes: Mapping[str, Mapping[int, str]] = DYNAMIC_AXES,
    training: torch.onnx.TrainingMode = torch.onnx.TrainingMode.PRESERVE,
    do_constant_folding: bool = True,
) -> bytes:
    """``module`` traced on ``example`` by the legacy TorchScript exporter, as ONNX bytes.

    The defaults are AutoVC's inference export; the trainable export
    (:mod:`pipeline.training.trainable`) passes its own names, ``TrainingMode.TRAINING`` and
    ``do_constant_folding=False``. The module's mode is the caller's to set, and so are the
    warning filters (the caller knows which of the exporter's warnings are expected).
    """
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        example,
        buffer,
        dynamo=False,
        opset_version=opset,
        input_names=list(input_names),
        output_names=list(output_names),
        dynamic_axes={name: dict(axes) for name, axes in dynamic_axes.items()},
        training=training,
        do_constant_folding=do_constant_folding,
    )
    return buffer.getvalue()
