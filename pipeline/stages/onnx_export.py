"""Export stage: a PyTorch model (AutoVC by default; any :class:`~pipeline.models.ModelSpec`)
-> ONNX with the legacy TorchScript exporter.

The legacy exporter is used on purpose: the dynamo exporter specialises the LSTM sequence length
to the example input, so its model fails at any other T. Batch and time axes are dynamic.
BatchNorm nodes are kept by default (the exporter otherwise folds them into the convolutions),
so the converter downstream has to handle them. The same weights give a byte-identical file.
"""

from __future__ import annotations

import collections
import io
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from pipeline.models import ModelSpec
from pipeline.models.autovc.spec import SPEC as AUTOVC
from pipeline.runtime.devices import CPU_EP
from pipeline.runtime.errors import PipelineError, UsageError

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
    model: onnx.ModelProto = field(repr=False)  # what was written to ``path``, checked: no need to read it back


def export_onnx(
    module: torch.nn.Module,
    path: str | Path,
    *,
    spec: ModelSpec = AUTOVC,
    opset: int = 17,
    keep_batchnorm: bool = True,
    example_T: int = 64,
    metadata: Mapping[str, str] | None = None,
) -> ExportResult:
    """Export ``module`` (the model ``spec`` describes, put in eval mode) to ``path``, checked
    and shape-inferred, with the spec's input and output names and dynamic axes.

    ``metadata`` (e.g. from :meth:`ModelSpec.metadata`) goes into the model's metadata_props along
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
    example = spec.example_inputs(module, EXAMPLE_BATCH, example_T)
    with warnings.catch_warnings(), torch.no_grad():
        _ignore_expected_export_warnings()
        # PRESERVE exports an eval-mode module's BatchNorm as BatchNormalization nodes;
        # EVAL lets the exporter fold them into the preceding Conv.
        training = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
        exported = export_to_bytes(
            module, example, opset=opset, input_names=spec.input_names, output_names=spec.output_names,
            dynamic_axes=spec.dynamic_axes, training=training,
        )
    model = onnx.load_from_string(exported)
    # Strict inference and then the checker cover what check_model(full_check=True) does, with
    # one pass of shape inference instead of two (each copies the ~114 MB model).
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model)
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
        model=model,
    )


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each op type the main graph has, sorted by op type."""
    return dict(sorted(collections.Counter(node.op_type for node in model.graph.node).items()))


def check_onnxruntime(
    onnx_path: str | Path,
    module: torch.nn.Module,
    inputs: Mapping[str, np.ndarray],
    providers: Sequence[str] = (CPU_EP,),
    threads: int = 0,
) -> dict[str, float]:
    """Max abs difference, per output name, between onnxruntime running ``onnx_path`` and
    ``module`` (in eval mode) on the same ``inputs`` (keyed by ONNX input name; the module takes
    them in the graph's input order and returns its outputs in the graph's output order).
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
    input_names = [value.name for value in session.get_inputs()]
    output_names = [value.name for value in session.get_outputs()]
    feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in input_names}
    ort_outputs = session.run(output_names, feed)
    module.eval()
    with torch.no_grad():
        torch_outputs = module(*(torch.from_numpy(feed[name]) for name in input_names))
    if isinstance(torch_outputs, torch.Tensor):
        torch_outputs = (torch_outputs,)
    errors = {}
    for name, ort_value, torch_value in zip(output_names, ort_outputs, torch_outputs):
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
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    training: torch.onnx.TrainingMode = torch.onnx.TrainingMode.PRESERVE,
    do_constant_folding: bool = True,
) -> bytes:
    """``module`` traced on ``example`` by the legacy TorchScript exporter, as ONNX bytes.

    :func:`export_onnx` passes a model spec's names; the trainable export
    (:mod:`pipeline.training.trainable`) passes its own, ``TrainingMode.TRAINING`` and
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
