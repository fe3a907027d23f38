"""ONNX -> TensorFlow: import an ONNX graph with onnx-tf's handlers (ours registered) as a
``tf.Module``, and write it as a SavedModel with a ``serving_default`` signature.

The module is built here rather than with ``onnx_tf.backend.prepare`` for two reasons:
``prepare`` turns every initializer into a Python list before making a constant (seconds
for AutoVC's 28 M weights), and its ``export_graph`` signature keeps only the shapes it
could infer. The node-by-node translation is onnx-tf's own (``_onnx_node_to_tensorflow_op``),
so every op is served by exactly the handler ``prepare`` would use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tensorflow as tf
from onnx import numpy_helper

import custom_ops
from custom_ops.lowering import Target, target
from custom_ops.support import check_supported

SIGNATURE_KEY = "serving_default"


def tf_name(onnx_name: str) -> str:
    """A SavedModel signature needs identifier-like names; ONNX allows ``input.1`` or ``a:0``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", onnx_name)
    return name if name[:1].isalpha() else f"t_{name}"


@dataclass(frozen=True)
class GraphInput:
    """One graph input: its ONNX name, TF signature name, dtype and shape (None = dynamic)."""

    onnx_name: str
    tf_name: str
    dtype: tf.DType
    shape: tuple[int | None, ...]

    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec(self.shape, self.dtype, name=self.tf_name)


class OnnxGraphModule(tf.Module):
    """An ONNX graph translated node by node by onnx-tf handlers.

    ``tensors(**inputs)`` gives every value in the graph (initializers, inputs and every node
    output); :meth:`node_outputs_function` traces the node outputs once, for the per-layer parity
    check and for :meth:`serving_function`, the graph outputs keyed by TF name.
    """

    def __init__(self, model: onnx.ModelProto, *, trainable: bool = False) -> None:
        """Float initializers become ``tf.Variable``s named after them, so that a SavedModel keeps
        them in its ``variables/`` checkpoint rather than as constants in its graph (for AutoVC's
        114 MB: 2 s less to write, 1 s faster to load; see :func:`_stored_layouts` for the
        weight transposes a constant would have had folded away); ``trainable`` marks them
        trainable (gradients can be taken and an optimizer can update them). Other initializers
        (shapes, axes, indices) stay constants, which handlers may read at trace time."""
        super().__init__(name="onnx_graph")
        custom_ops.register()
        check_supported(model)
        from onnx_tf.backend import TensorflowBackend
        from onnx_tf.backend_tf_module import TFModuleHelper

        self._backend = TensorflowBackend
        self._graph = model.graph
        self._opset = list(model.opset_import)
        self._handlers = TensorflowBackend._get_handlers(self._opset)
        self._stored_as = _stored_layouts(self._graph)
        self._initializers = {
            init.name: _initializer_tensor(init, trainable, self._stored_as.get(init.name))
            for init in self._graph.initializer
        }
        self._handler_variables = TFModuleHelper._create_handlers_variables_for_graph(
            self._handlers, self._graph, self._initializers
        )
        self.inputs = graph_inputs(model)
        self.output_names = [o.name for o in self._graph.output]
        self._node_outputs: dict[Target, tf.types.experimental.ConcreteFunction] = {}

    @tf.autograph.experimental.do_not_convert
    def tensors(self, **inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every value of the graph; see :func:`translate_node` for how nodes are traced."""
        from onnx_tf.pb_wrapper import OnnxNode

        # onnx-tf keeps each op's version on the handler class, set by the last _get_handlers()
        # call in the process: refresh it for this graph's opset before translating.
        handlers = self._backend._get_handlers(self._opset)
        values: dict[str, tf.Tensor] = {}
        for graph_input in self.inputs:
            values[graph_input.onnx_name] = inputs[graph_input.tf_name]
        # Variables are read here, so that every handler sees plain tensors in ONNX layout.
        values.update({name: self._onnx_layout(name) for name in self._initializers})
        values.update(self._handler_variables)
        for node_proto in self._graph.node:
            node = OnnxNode(node_proto)
            results = translate_node(node, values, handlers, self._opset)
            values.update(zip(node.outputs, results))
        return values

    def _onnx_layout(self, name: str) -> tf.Tensor:
        """An initializer as ONNX lays it out, whichever way it is stored."""
        value = tf.convert_to_tensor(self._initializers[name])
        stored_as = self._stored_as.get(name)
        return value if stored_as is None else tf.transpose(value, np.argsort(stored_as))

    def node_outputs_function(self) -> tf.types.experimental.ConcreteFunction:
        """Every node output (and graph output) that is a tensor, keyed by ONNX name, traced once
        per lowering target (:func:`custom_ops.lowering.target`) for the dynamic input signature;
        later calls return the same function. The serving function and the per-layer parity
        check share this one trace (2-4 s for AutoVC)."""
        lowering_target = target()
        if lowering_target not in self._node_outputs:
            wanted = [name for node in self._graph.node for name in node.output if name]
            wanted += [name for name in self.output_names if name not in wanted]

            def node_outputs(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
                values = self.tensors(**inputs)
                return {name: values[name] for name in wanted if isinstance(values.get(name), tf.Tensor)}

            function: Callable = tf.function(node_outputs, autograph=False)
            self._node_outputs[lowering_target] = function.get_concrete_function(**self.input_signature())
        return self._node_outputs[lowering_target]

    def serving_function(self) -> tf.types.experimental.ConcreteFunction:
        """The graph outputs, keyed by their TF names: a call of :meth:`node_outputs_function`
        (TF's optimiser inlines it and prunes what the outputs do not need)."""
        node_outputs = self.node_outputs_function()

        def outputs(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            values = node_outputs(**inputs)
            return {tf_name(name): tf.identity(values[name], name=tf_name(name)) for name in self.output_names}

        function: Callable = tf.function(outputs, autograph=False)
        return function.get_concrete_function(**self.input_signature())

    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """The graph inputs as keyword TensorSpecs (dynamic dims are None)."""
        return {i.tf_name: i.spec() for i in self.inputs}


def _node_ops(node: Any, values: dict, handlers: dict, opset: list) -> list[tf.Tensor]:
    """One node through its onnx-tf handler (the table ``prepare()`` would use)."""
    from onnx_tf.backend import TensorflowBackend

    return TensorflowBackend._onnx_node_to_tensorflow_op(node, values, handlers, opset=opset, strict=True)


_node_ops_autograph = tf.autograph.to_graph(_node_ops)


def translate_node(node: Any, values: dict, handlers: dict, opset: list) -> list[tf.Tensor]:
    """One node (an onnx-tf ``OnnxNode``) as plain graph code, or through AutoGraph for a
    handler that needs it; ``values`` maps the names of the tensors computed so far.

    Converting every handler's source with AutoGraph takes most of the trace time (12 of 17 s
    for AutoVC), and only a few handlers need it: those fail as plain graph code with a
    TypeError (e.g. a ``len()`` of a dynamic shape tensor) and are translated again through
    AutoGraph. Ops left by the failed attempt are unused and pruned. (onnx-tf's Shape-15 was
    one; ours, ``custom_ops.handlers.shape``, needs no AutoGraph.)
    """
    try:
        return _node_ops(node, values, handlers, opset)
    except TypeError:
        return _node_ops_autograph(node, values, handlers, opset)


# Handler inputs that the handler transposes on every call, and the permutation it applies:
# onnx-tf's Conv and ConvTranspose turn their weight [M, C, K...] into TF's [K..., C, M]; our LSTM
# multiplies by R transposed ([D, 4H, H] -> [D, H, 4H]).
_HANDLER_TRANSPOSES: dict[tuple[str, int], Callable[[int], tuple[int, ...]]] = {
    ("Conv", 1): lambda rank: (*range(2, rank), 1, 0),
    ("ConvTranspose", 1): lambda rank: (*range(2, rank), 1, 0),
    ("LSTM", 2): lambda rank: (0, 2, 1),
}


def _stored_layouts(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    """Initializers to store transposed: those whose every use is a handler input that the handler
    transposes, all with the same permutation. Stored that way, the module hands the handler
    ``transpose(variable, inverse)``, the handler's own transpose follows, and TF's graph
    optimiser removes the pair: no weight is transposed when the model runs (AutoVC: 40 ms of
    transposes per call with the weights stored as ONNX has them, since a variable, unlike a
    constant, is not folded)."""
    ranks = {init.name: len(init.dims) for init in graph.initializer}
    uses: dict[str, set[tuple[int, ...] | None]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in ranks:
                permutation = _HANDLER_TRANSPOSES.get((node.op_type, index))
                uses.setdefault(name, set()).add(permutation(ranks[name]) if permutation else None)
    return {
        name: next(iter(found))
        for name, found in uses.items()
        if len(found) == 1 and None not in found and len(next(iter(found))) == ranks[name]
    }


def _initializer_tensor(
    init: onnx.TensorProto, trainable: bool, stored_as: tuple[int, ...] | None
) -> tf.Tensor | tf.Variable:
    """A float initializer as a variable (its axes in ``stored_as`` order when given), any other
    as a constant."""
    value = numpy_helper.to_array(init)
    if not np.issubdtype(value.dtype, np.floating):
        return tf.constant(value)
    if stored_as is not None:
        value = np.ascontiguousarray(value.transpose(stored_as))
    return tf.Variable(value, name=tf_name(init.name), trainable=trainable)


def graph_inputs(model: onnx.ModelProto) -> list[GraphInput]:
    """The graph's real inputs (not initializers); unknown or symbolic dims become None."""
    from onnx_tf.common.data_type import onnx2tf

    initialized = {init.name for init in model.graph.initializer}
    found = []
    for value in model.graph.input:
        if value.name in initialized:
            continue
        tensor_type = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                      for d in tensor_type.shape.dim)
        found.append(GraphInput(value.name, tf_name(value.name), onnx2tf(tensor_type.elem_type), shape))
    return found


def write_saved_model(module: OnnxGraphModule, directory: Path) -> tf.types.experimental.ConcreteFunction:
    """Trace the serving function and write the SavedModel into ``directory`` (must not exist)."""
    serving = module.serving_function()
    tf.saved_model.save(module, str(directory), signatures={SIGNATURE_KEY: serving})
    return serving


def run_saved_model(directory: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Load a SavedModel written by :func:`write_saved_model` and run it on ONNX-named inputs."""
    loaded = tf.saved_model.load(str(directory))
    serving = loaded.signatures[SIGNATURE_KEY]
    outputs = serving(**{tf_name(name): tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}
