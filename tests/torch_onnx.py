"""Export a torch module with the legacy (TorchScript) exporter, as `export` does, in memory."""

from __future__ import annotations

import io
import warnings

import onnx
import torch


def export(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    opset: int,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> onnx.ModelProto:
    """The ONNX model of ``module(*args)``; inputs are named ``x0, x1, ...``, the output ``y``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[f"x{i}" for i in range(len(args))],
            output_names=["y"],
            dynamic_axes=dynamic_axes,
        )
    return onnx.load_from_string(buffer.getvalue())
