"""Per-layer localisation: where along the ONNX graph do onnxruntime and TensorFlow part ways?

Every float output of every top-level ONNX node is computed by both backends on the same inputs:

- onnxruntime: a copy of the model with every node output added as a graph output, run with
  graph optimisations off so that each value is the node's own result;
- TensorFlow: the ONNX graph translated node by node in-process by onnx-tf with the handlers
  registered now (:class:`pipeline.tf_convert.OnnxGraphModule`, the translation the SavedModel
  is written from), traced once as a ``tf.function``.

Each node output is compared with onnxruntime as reference under the layer tolerance; a node's
error is that of its worst output. Errors propagate, so the first node in topological order
(the ONNX node order) that exceeds tolerance is where the backends first diverge. Nodes are
mapped back to PyTorch modules through the legacy exporter's scope names
(:func:`torch_module_for_node`). Non-float and empty outputs are skipped.

Node outputs have no common batch axis (an ONNX LSTM's is axis 2), so they cannot be compared
as running totals over batch chunks like the model outputs: a parity run that splits its batch
localises on one chunk, the one holding the largest error, and says so in ``LayerReport.input``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from .backends import CPU_EP, default_tf_device, ort_provider_options
from .metrics import ArrayComparison, Tolerance, compare_arrays

DEFAULT_TOP_K = 10


@dataclass
class NodeComparison:
    """One ONNX node's worst output, onnxruntime (reference) against TensorFlow."""

    index: int
    onnx_node: str
    op_type: str
    torch_module: str | None
    output: str
    comparison: ArrayComparison

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    @property
    def max_abs(self) -> float | None:
        return self.comparison.max_abs

    def severity(self) -> float:
        """Worst error over allowed error; infinite when shapes differ or values are non-finite."""
        if not self.comparison.shape_equal or self.comparison.nonfinite_mismatch:
            return float("inf")
        return self.comparison.worst_tolerance_ratio or 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "onnx_node": self.onnx_node,
            "op_type": self.op_type,
            "torch_module": self.torch_module,
            "output": self.output,
            "max_abs": self.max_abs,
            "mean_abs": self.comparison.mean_abs,
            "tolerance_ratio": self.severity(),
            "passed": self.passed,
            "failures": list(self.comparison.failures),
        }


@dataclass
class LayerReport:
    """Every compared node in graph order, the first divergence and the worst ``top_k``."""

    tolerance: Tolerance
    nodes: list[NodeComparison]
    nodes_total: int
    top_k: int = DEFAULT_TOP_K
    input: dict[str, Any] = field(default_factory=dict)
    """Which inputs the nodes ran on: ``case``, ``chunk`` (1-based), ``chunks``, ``rows``
    [start, stop) of the case's batch, ``whole_case`` (False: one batch chunk only)."""

    @property
    def first_divergence(self) -> NodeComparison | None:
        return next((node for node in self.nodes if not node.passed), None)

    def worst(self) -> list[NodeComparison]:
        """The ``top_k`` nodes with the largest tolerance ratio (then max abs), worst first."""
        ranked = sorted(self.nodes, key=lambda n: (n.severity(), n.max_abs or 0.0), reverse=True)
        return ranked[: self.top_k]

    def to_json(self) -> dict[str, Any]:
        """Counts and every compared node; the first divergence and top-k are reported apart."""
        return {
            "reference": "ort",
            "candidate": "tf (onnx-tf in-process, handlers registered at run time)",
            "tolerance": self.tolerance.to_json(),
            "nodes_total": self.nodes_total,
            "nodes_compared": len(self.nodes),
            "nodes_skipped": self.nodes_total - len(self.nodes),
            "input": dict(self.input) or None,
            "nodes": [node.to_json() for node in self.nodes],
        }


def first_divergence_json(node: NodeComparison) -> dict[str, Any]:
    """The ``first_divergence`` object of report.json."""
    return {
        "onnx_node": node.onnx_node,
        "op_type": node.op_type,
        "torch_module": node.torch_module,
        "output": node.output,
        "max_abs": node.max_abs,
        "index": node.index,
    }


def torch_module_for_node(node_name: str, module_names: Collection[str] | None = None) -> str | None:
    """The PyTorch module an ONNX node came from, from the legacy exporter's scope name.

    ``/encoder/lstm/LSTM`` -> ``encoder.lstm``;
    ``/postnet/convolutions.2/convolutions.2.1/BatchNormalization`` -> ``postnet.convolutions.2.1``
    (a scope that extends the previous one, ``convolutions.2`` -> ``convolutions.2.1``, is the
    same path one level deeper). ``/Transpose`` -> ``""`` (the top module's own ``forward``).
    Names without a leading ``/`` carry no scope: None. When ``module_names`` (the names of
    ``named_modules()``) are given, the result is the deepest of them on that path.
    """
    if not node_name.startswith("/"):
        return None
    path: list[str] = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    name = ".".join(path)
    if module_names is None:
        return name
    while name and name not in module_names:
        name = name.rpartition(".")[0]
    return name


def localise(
    model: onnx.ModelProto,
    inputs: dict[str, np.ndarray],
    *,
    tolerance: Tolerance,
    ort_providers: list[str] | None = None,
    tf_device: str | None = None,
    allow_tf32: bool = False,
    module_names: Collection[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
    tf_module: Any = None,
) -> LayerReport:
    """Compare every node output of ``model`` between onnxruntime and TensorFlow (TensorFlow's
    TensorFloat-32 setting is the caller's: see :func:`pipeline.parity.backends.float32_precision`).
    ``tf_module``: ``model`` already imported as an ``OnnxGraphModule`` (see :func:`tf_node_outputs`)."""
    ort_values = ort_node_outputs(model, inputs, ort_providers, allow_tf32)
    tf_values = tf_node_outputs(model, inputs, tf_device, tf_module)
    nodes = []
    for index, node in enumerate(model.graph.node):
        compared = [
            (name, compare_arrays(ort_values[name], tf_values[name], tolerance))
            for name in node.output
            if name in ort_values and name in tf_values
        ]
        if not compared:
            continue
        output, comparison = max(compared, key=lambda item: _severity_key(item[1]))
        nodes.append(
            NodeComparison(
                index=index,
                onnx_node=node.name or f"{node.op_type}#{index}",
                op_type=node.op_type,
                torch_module=torch_module_for_node(node.name, module_names),
                output=output,
                comparison=comparison,
            )
        )
    return LayerReport(tolerance=tolerance, nodes=nodes, nodes_total=len(model.graph.node), top_k=top_k)


def ort_node_outputs(
    model: onnx.ModelProto, inputs: dict[str, np.ndarray], providers: list[str] | None, allow_tf32: bool = False
) -> dict[str, np.ndarray]:
    """Every non-empty float node output, computed by onnxruntime."""
    import onnxruntime as ort

    elem_types = _inferred_elem_types(model)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {output.name for output in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if not name or name in present or not _may_be_float(elem_types.get(name)):
                continue
            # Unknown types are left for onnxruntime to infer; non-floats are dropped after the run.
            exposed.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        exposed.SerializeToString(), options, providers=ort_provider_options(providers or [CPU_EP], allow_tf32)
    )
    names = [output.name for output in session.get_outputs()]
    values = dict(zip(names, session.run(names, inputs)))
    return {name: value for name, value in values.items() if _comparable(value)}


def tf_node_outputs(
    model: onnx.ModelProto, inputs: dict[str, np.ndarray], device: str | None, module: Any = None
) -> dict[str, np.ndarray]:
    """Every non-empty float node output, computed by the onnx-tf translation of ``model``:
    ``module`` (an ``OnnxGraphModule`` of ``model``) or a fresh import. The node outputs are
    traced for the graph's input signature (dynamic dims stay None), as the SavedModel is."""
    import tensorflow as tf

    from pipeline.tf_convert import OnnxGraphModule, tf_name

    with tf.device(device or default_tf_device()):
        traced = (module if module is not None else OnnxGraphModule(model)).node_outputs_function()
        values = traced(**{tf_name(name): tf.constant(value) for name, value in inputs.items()})
    arrays = {name: value.numpy() for name, value in values.items()}
    return {name: value for name, value in arrays.items() if _comparable(value)}


def _inferred_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    return {
        value.name: value.type.tensor_type.elem_type
        for value in [*graph.value_info, *graph.output, *graph.input]
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type
    }


_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
}


def _may_be_float(elem_type: int | None) -> bool:
    return elem_type is None or elem_type in _FLOAT_TYPES


def _comparable(value: np.ndarray) -> bool:
    return isinstance(value, np.ndarray) and value.size > 0 and np.issubdtype(value.dtype, np.floating)


def _severity_key(comparison: ArrayComparison) -> tuple[bool, float]:
    failed = not comparison.passed
    if not comparison.shape_equal or comparison.nonfinite_mismatch:
        return failed, float("inf")
    return failed, comparison.worst_tolerance_ratio or 0.0
