"""Per-layer localisation: where along the ONNX graph do onnxruntime and TensorFlow part ways?

Every float output of every top-level ONNX node is computed by both backends on the same inputs:

- onnxruntime: a copy of the model with every node output added as a graph output, run with
  graph optimisations off so that each value is the node's own result;
- TensorFlow: the ONNX graph translated node by node in-process by onnx-tf with the handlers
  registered now (:class:`pipeline.stages.tf_convert.OnnxGraphModule`, the translation the SavedModel
  is written from), traced once as a ``tf.function``.

Each node output is compared with onnxruntime as reference under the layer tolerance; a node's
error is that of its worst output. Errors propagate, so the first node in topological order
(the ONNX node order) that exceeds tolerance is where the backends first diverge. Nodes are
mapped back to PyTorch modules through the legacy exporter's scope names
(:func:`torch_module_for_node`). Non-float and empty outputs are skipped.

The node outputs above come from the ONNX model re-translated in-process, not from the
SavedModel under test, so a SavedModel that is stale or edited would pass them. Its weights are
therefore compared too (:func:`compare_weights`): every variable the SavedModel stores for an
ONNX initializer (read from its checkpoint, stored transposes undone) against that initializer,
by name, exactly. A weight that differs, has another shape, is missing or is extra is named with
the ONNX nodes that read it and their PyTorch module.

Node outputs have no common batch axis (an ONNX LSTM's is axis 2), so they cannot be compared
as running totals over batch chunks like the model outputs: a parity run that splits its batch
localises on one chunk, the one holding the largest error, and says so in ``LayerReport.input``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from pipeline.runtime.devices import CPU_EP

from .backends import default_tf_device, ort_provider_options
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
class WeightMismatch:
    """One ONNX initializer that the SavedModel does not hold as it is in the ONNX model.

    ``kind``: ``value`` (same shape, other numbers), ``shape``, ``missing`` (no variable of
    that name in the SavedModel) or ``extra`` (a SavedModel variable with no initializer).
    ``index`` is the first node reading it (None when no node does)."""

    initializer: str
    kind: str
    onnx_nodes: list[str]
    torch_module: str | None
    index: int | None
    onnx_shape: list[int] | None
    saved_model_shape: list[int] | None
    max_abs: float | None = None
    elements_differing: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "initializer": self.initializer,
            "kind": self.kind,
            "onnx_nodes": list(self.onnx_nodes),
            "torch_module": self.torch_module,
            "index": self.index,
            "onnx_shape": self.onnx_shape,
            "saved_model_shape": self.saved_model_shape,
            "max_abs": self.max_abs,
            "elements_differing": self.elements_differing,
        }

    def describe(self) -> str:
        """One phrase for the terminal and the HTML."""
        module = f"torch module {self.torch_module}, " if self.torch_module else ""
        where = f"{module}node {self.onnx_nodes[0]}" if self.onnx_nodes else module.rstrip(", ") or "no node"
        if self.kind == "value":
            detail = f"max abs {self.max_abs:.2e} in {self.elements_differing} elements"
        elif self.kind == "shape":
            detail = f"shape {self.saved_model_shape} in the SavedModel, {self.onnx_shape} in the ONNX model"
        else:
            detail = "not in the SavedModel" if self.kind == "missing" else "in the SavedModel only"
        return f"weight {self.initializer} ({where}): {detail}"


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
    weight_mismatches: list[WeightMismatch] = field(default_factory=list)
    weights_compared: int | None = None
    """Initializers compared with the SavedModel's variables; None: the SavedModel keeps no
    variables by ONNX name (not written by this tool), so its weights were not checked."""

    @property
    def first_divergence(self) -> NodeComparison | None:
        return next((node for node in self.nodes if not node.passed), None)

    @property
    def first_weight_mismatch(self) -> WeightMismatch | None:
        """The mismatching weight read earliest in the graph (extra variables last)."""
        return min(self.weight_mismatches, key=lambda w: (w.index is None, w.index or 0), default=None)

    def weights_line(self) -> str:
        """What the comparison of the SavedModel's weights found, in one line."""
        if self.weights_compared is None:
            return "SavedModel weights: not checked (it keeps no variables by ONNX initializer name)"
        if not self.weight_mismatches:
            return f"SavedModel weights: all {self.weights_compared} float initializers match the ONNX model exactly"
        shown = sorted(self.weight_mismatches, key=lambda w: (w.index is None, w.index or 0))[:3]
        more = len(self.weight_mismatches) - len(shown)
        return (
            f"SavedModel weights: {len(self.weight_mismatches)} differ from the ONNX model: "
            + "; ".join(w.describe() for w in shown) + (f"; and {more} more" if more else "")
        )

    def nodes_line(self, failing_pairs: Collection[str]) -> str | None:
        """Why every node output agrees although output pairs (names like ``ort-tf``) fail;
        None when a node diverges or no pair fails."""
        if self.first_divergence is not None or not failing_pairs:
            return None
        if "ort-tf" not in failing_pairs:
            return (f"the failing pairs ({', '.join(sorted(failing_pairs))}) involve PyTorch, which the per-layer "
                    "pass does not run: the ONNX model computes otherwise than the PyTorch module")
        why = ("the SavedModel's weights differ (above)" if self.weight_mismatches
               else "the difference lies in the SavedModel's own graph, which this check does not run")
        return ("the per-layer nodes are the ONNX model re-translated in-process, not the SavedModel "
                f"under test, so they agree although the outputs fail: {why}")

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
            "weights_compared": self.weights_compared,
            "weight_mismatches": [w.to_json() for w in self.weight_mismatches],
        }


def first_divergence_json(report: LayerReport, outputs_passed: bool) -> dict[str, Any] | None:
    """The ``first_divergence`` object of report.json: the first diverging node output
    (``kind`` ``node``), else, when the outputs fail, the earliest weight the SavedModel holds
    otherwise than the ONNX model (``kind`` ``weight``), else None."""
    node = report.first_divergence
    if node is not None:
        return {
            "kind": "node",
            "onnx_node": node.onnx_node,
            "op_type": node.op_type,
            "torch_module": node.torch_module,
            "output": node.output,
            "max_abs": node.max_abs,
            "index": node.index,
        }
    weight = report.first_weight_mismatch
    if weight is None or outputs_passed:
        return None
    return {
        "kind": "weight",
        "onnx_node": weight.onnx_nodes[0] if weight.onnx_nodes else None,
        "op_type": None,
        "torch_module": weight.torch_module,
        "output": None,
        "max_abs": weight.max_abs,
        "index": weight.index,
        "initializer": weight.initializer,
        "weight_kind": weight.kind,
    }


def saved_model_weights(saved_model_dir: Path) -> dict[str, np.ndarray] | None:
    """The variables a SavedModel written by :func:`pipeline.stages.tf_convert.write_saved_model`
    keeps for ONNX initializers, by ONNX name, as stored (read from its checkpoint without
    loading the graph); None when it has no such variables."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    prefix = Path(saved_model_dir) / "variables" / "variables"
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except (tf.errors.OpError, ValueError):
        return None
    holder = next((c.node_id for c in graph.nodes[0].children if c.local_name == "_initializers"), None)
    if holder is None:
        return None
    weights = {}
    for child in graph.nodes[holder].children:
        keys = [a.checkpoint_key for a in graph.nodes[child.node_id].attributes if a.name == "VARIABLE_VALUE"]
        if keys:
            weights[child.local_name] = np.asarray(reader.get_tensor(keys[0]))
    return weights


def compare_weights(
    model: onnx.ModelProto, stored: Mapping[str, np.ndarray], module_names: Collection[str] | None = None
) -> list[WeightMismatch]:
    """Every float initializer of ``model`` against the SavedModel variable of the same name
    (``stored``, see :func:`saved_model_weights`), exactly: the SavedModel was converted from
    these numbers, so any difference means it came from another model. A variable stored
    transposed (:func:`pipeline.stages.tf_convert.stored_layouts`) is compared in that layout."""
    from pipeline.stages.tf_convert import stored_layouts

    readers: dict[str, list[tuple[int, str]]] = {}
    for index, node in enumerate(model.graph.node):
        for name in node.input:
            readers.setdefault(name, []).append((index, node.name or f"{node.op_type}#{index}"))
    layouts = stored_layouts(model.graph)

    def mismatch(name: str, kind: str, onnx_shape: Any, saved_shape: Any, **numbers: Any) -> WeightMismatch:
        read_by = readers.get(name, [])
        scoped = next((n for _, n in read_by if n.startswith("/")), None)
        return WeightMismatch(
            initializer=name, kind=kind, onnx_nodes=[n for _, n in read_by],
            torch_module=torch_module_for_node(scoped, module_names) if scoped else None,
            index=read_by[0][0] if read_by else None,
            onnx_shape=None if onnx_shape is None else list(onnx_shape),
            saved_model_shape=None if saved_shape is None else list(saved_shape), **numbers,
        )

    found = []
    float_names = set()
    for init in model.graph.initializer:
        if init.data_type not in _FLOAT_TYPES:
            continue
        float_names.add(init.name)
        if init.name not in stored:
            found.append(mismatch(init.name, "missing", init.dims, None))
            continue
        value = numpy_helper.to_array(init)
        saved = stored[init.name]
        layout = layouts.get(init.name)
        if layout is not None and saved.shape == tuple(value.shape[i] for i in layout):
            saved = saved.transpose(np.argsort(layout))
        if saved.shape != value.shape:
            found.append(mismatch(init.name, "shape", value.shape, stored[init.name].shape))
            continue
        differ = value != saved
        if differ.any():
            delta = np.abs(value.astype(np.float64) - saved.astype(np.float64))
            found.append(mismatch(init.name, "value", value.shape, saved.shape,
                                  max_abs=float(np.max(delta)), elements_differing=int(differ.sum())))
    for name in sorted(set(stored) - float_names):
        found.append(mismatch(name, "extra", None, stored[name].shape))
    return found


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
    saved_model_dir: Path | None = None,
    require_gpu: bool = False,
) -> LayerReport:
    """Compare every node output of ``model`` between onnxruntime and TensorFlow (TensorFlow's
    TensorFloat-32 setting is the caller's: see :func:`pipeline.parity.backends.float32_precision`),
    and the weights of the SavedModel under test (``saved_model_dir``) with the initializers.
    ``tf_module``: ``model`` already imported as an ``OnnxGraphModule`` (see :func:`tf_node_outputs`).
    ``require_gpu`` (``--device cuda``): raise when either backend did not run on the GPU."""
    stored = saved_model_weights(saved_model_dir) if saved_model_dir is not None else None
    weight_mismatches = compare_weights(model, stored, module_names) if stored is not None else []
    ort_values = ort_node_outputs(model, inputs, ort_providers, allow_tf32, require_gpu)
    tf_values = tf_node_outputs(model, inputs, tf_device, tf_module, require_gpu)
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
    return LayerReport(
        tolerance=tolerance, nodes=nodes, nodes_total=len(model.graph.node), top_k=top_k,
        weight_mismatches=weight_mismatches,
        weights_compared=None if stored is None else sum(i.data_type in _FLOAT_TYPES for i in model.graph.initializer),
    )


def ort_node_outputs(
    model: onnx.ModelProto,
    inputs: dict[str, np.ndarray],
    providers: list[str] | None,
    allow_tf32: bool = False,
    require_gpu: bool = False,
) -> dict[str, np.ndarray]:
    """Every non-empty float node output, computed by onnxruntime. The session gets the large
    weights as in-memory initializers, so the 100 MB-class model is not serialised again."""
    import onnxruntime as ort

    exposed, weights = _weights_apart(model)
    elem_types = _inferred_elem_types(exposed)
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
    # onnxruntime reads these arrays in place, for as long as the session runs: keep them referenced.
    weight_values = [ort.OrtValue.ortvalue_from_numpy(numpy_helper.to_array(t)) for t in weights.values()]
    options.add_external_initializers(list(weights), weight_values)
    session = ort.InferenceSession(
        exposed.SerializeToString(), options, providers=ort_provider_options(providers or [CPU_EP], allow_tf32)
    )
    if require_gpu:
        _require_gpu("onnxruntime (per-layer)", {"providers_used": session.get_providers()})
    names = [output.name for output in session.get_outputs()]
    values = dict(zip(names, session.run(names, inputs)))
    del session, weight_values
    return {name: value for name, value in values.items() if _comparable(value)}


def tf_node_outputs(
    model: onnx.ModelProto,
    inputs: dict[str, np.ndarray],
    device: str | None,
    module: Any = None,
    require_gpu: bool = False,
) -> dict[str, np.ndarray]:
    """Every non-empty float node output, computed by the onnx-tf translation of ``model``:
    ``module`` (an ``OnnxGraphModule`` of ``model``) or a fresh import. The node outputs are
    traced for the graph's input signature (dynamic dims stay None), as the SavedModel is."""
    import tensorflow as tf

    from pipeline.stages.tf_convert import OnnxGraphModule, tf_name

    device = device or default_tf_device()
    with tf.device(device):
        traced = (module if module is not None else OnnxGraphModule(model)).node_outputs_function()
        values = traced(**{tf_name(name): tf.constant(value) for name, value in inputs.items()})
    if require_gpu and values:
        _require_gpu("tensorflow (per-layer)", {"device_used": next(iter(values.values())).device})
    arrays = {name: value.numpy() for name, value in values.items() if isinstance(value, tf.Tensor)}
    return {name: value for name, value in arrays.items() if _comparable(value)}


def _require_gpu(backend: str, description: dict[str, Any]) -> None:
    from pipeline.runtime.devices import placement_problem
    from pipeline.runtime.errors import PipelineError

    problem = placement_problem(backend, description)
    if problem is not None:
        raise PipelineError(f"--device cuda: {problem}")


def _inferred_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value that ONNX type inference can tell; give it the model of
    :func:`_weights_apart`, since inference copies whatever weights the model holds."""
    graph = onnx.shape_inference.infer_shapes(model).graph
    return {
        value.name: value.type.tensor_type.elem_type
        for value in [*graph.value_info, *graph.output, *graph.input]
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type
    }


def _weights_apart(model: onnx.ModelProto, max_elements: int = 1024) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto]]:
    """A copy of ``model`` whose initializers of more than ``max_elements`` values keep their name,
    type and shape but no data (marked external, location ``in-memory``), and those initializers
    by name. Type and shape inference and an onnxruntime session (given the weights with
    ``SessionOptions.add_external_initializers``) then work without copying the weights (over
    100 MB for AutoVC) to C++ and back. Small initializers keep their data: inference reads the
    values of shape and axes constants; string tensors stay too (no in-memory onnxruntime value)."""
    light = onnx.ModelProto()
    light.CopyFrom(model)  # a copy in memory; the serialisations that inference does are what cost
    del light.graph.initializer[:]
    weights = {}
    for tensor in model.graph.initializer:
        if int(np.prod(tensor.dims, dtype=np.int64)) <= max_elements or tensor.data_type == onnx.TensorProto.STRING:
            light.graph.initializer.append(tensor)
            continue
        weights[tensor.name] = tensor
        placeholder = light.graph.initializer.add(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
        placeholder.data_location = onnx.TensorProto.EXTERNAL
        placeholder.external_data.add(key="location", value="in-memory")
    return light, weights


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
