"""Reading ONNX files from users: a clear error for anything that is not a valid model, and
external-data references that must stay inside the model's folder."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from pipeline.runtime.errors import UsageError


def real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The graph's inputs that are not initialisers (before IR version 4 every weight was also
    listed as an input)."""
    initialized = {init.name for init in graph.initializer}
    return [value for value in graph.input if value.name not in initialized]


def load_onnx(path: Path) -> onnx.ModelProto:
    """Parse, check and return the model at ``path`` (with its external data, if any)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"ONNX model {path} not found")
    if path.stat().st_size == 0:
        raise UsageError(f"ONNX model {path} is empty")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError and others
        raise UsageError(f"{path} is not a valid ONNX model ({type(error).__name__}: {error})") from None
    if not model.graph.node:
        raise UsageError(f"{path} is not a valid ONNX model (the graph has no nodes; truncated file?)")
    _load_external_data(model, path.parent.resolve())
    try:
        onnx.checker.check_model(model, full_check=False)
    except (onnx.checker.ValidationError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UsageError(f"{path} is not a valid ONNX model: {first_line}") from None
    return model


def _load_external_data(model: onnx.ModelProto, folder: Path) -> None:
    for tensor in _all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise UsageError(
                f"ONNX tensor '{tensor.name}' refers to external data '{location}' outside the "
                f"model's folder {folder}; refusing to read it"
            )
        if not target.is_file():
            raise UsageError(f"ONNX tensor '{tensor.name}': external data file {target} not found")
    onnx.load_external_data_for_model(model, str(folder))


def _all_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    return tensors
