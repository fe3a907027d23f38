"""ONNX -> TensorFlow: import an ONNX graph with onnx-tf's handlers (ours registered) as a
``tf.Module``, and write it as a SavedModel with two signatures of the same inputs and outputs
(sequences and optionals carried as :mod:`pipeline.stages.signature_values` describes):
``serving_default`` (graph mode: any shape, no compilation) and ``serving_xla`` (the graph traced
for XLA and compiled with ``jit_compile=True``: faster once compiled, one compilation per
input shape, or per bucket of shapes; see :meth:`OnnxGraphModule.xla_serving_function`).

The module is built here rather than with ``onnx_tf.backend.prepare`` for two reasons:
``prepare`` turns every initializer into a Python list before making a constant (seconds
for AutoVC's 28 M weights), and its ``export_graph`` signature keeps only the shapes it
could infer. The node-by-node translation is onnx-tf's own (``_onnx_node_to_tensorflow_op``),
so every op is served by exactly the handler ``prepare`` would use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tensorflow as tf
from onnx import numpy_helper

import custom_ops
from custom_ops.lowering import Target, lowering, target
from custom_ops.support import check_supported
from pipeline.stages.onnx_io import real_inputs
from pipeline.stages.signature_values import (
    LENGTHS,
    Carried,
    check_names,
    decode_outputs,
    output_tensors,
    sequence_value,
    signature_feeds,
    tf_name,
)
from pipeline.stages.signatures import SIGNATURE_KEY, XLA_SIGNATURE_KEY


@dataclass(frozen=True)
class GraphInput:
    """One graph input: its ONNX name, TF signature name, dtype and shape (None = dynamic; the
    whole shape None when the rank is unknown); ``dims`` names the symbolic axes (ONNX
    ``dim_param``, e.g. ``"time"``; None elsewhere). A ``sequence`` input's dtype and shape are
    those of its elements concatenated along axis 0 (see :mod:`pipeline.stages.signature_values`)."""

    onnx_name: str
    tf_name: str
    dtype: tf.DType
    shape: tuple[int | None, ...] | None
    dims: tuple[str | None, ...] = ()
    sequence: bool = False

    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec(self.shape, self.dtype, name=self.tf_name)

    def specs(self) -> dict[str, tf.TensorSpec]:
        """Every signature input of this graph input (a sequence's element lengths too)."""
        specs = {self.tf_name: self.spec()}
        if self.sequence:
            specs[self.tf_name + LENGTHS] = tf.TensorSpec([None], tf.int64, name=self.tf_name + LENGTHS)
        return specs

    def value(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor | tf.RaggedTensor:
        """The graph input as onnx-tf's handlers take it, from the signature's inputs."""
        if self.sequence:
            return sequence_value(inputs[self.tf_name], inputs[self.tf_name + LENGTHS])
        return inputs[self.tf_name]


class OnnxGraphModule(tf.Module):
    """An ONNX graph translated node by node by onnx-tf handlers.

    ``tensors(**inputs)`` gives every value in the graph (initializers, inputs and every node
    output); :meth:`node_outputs_function` traces the node outputs once, for the per-layer parity
    check and for :meth:`serving_function`, the graph outputs keyed by TF name.
    """

    def __init__(self, model: onnx.ModelProto, *, trainable: bool = False) -> None:
        """Float initializers become ``tf.Variable``s named after them, so that a SavedModel keeps
        them in its ``variables/`` checkpoint rather than as constants in its graph (for AutoVC's
        114 MB: 2 s less to write, 1 s faster to load; see :func:`stored_layouts` for the
        weight transposes a constant would have had folded away); ``trainable`` marks them
        trainable (gradients can be taken and an optimizer can update them). Other initializers
        (shapes, axes, indices) stay constants, which handlers may read at trace time."""
        super().__init__(name="onnx_graph")
        custom_ops.register()
        check_supported(model)
        from onnx_tf.backend import TensorflowBackend
        from onnx_tf.backend_tf_module import TFModuleHelper

        self._graph = model.graph
        self._opset = list(model.opset_import)
        self._handlers = TensorflowBackend._get_handlers(self._opset)
        self._stored_as = stored_layouts(self._graph)
        self._initializers = {
            init.name: _initializer_tensor(init, trainable, self._stored_as.get(init.name))
            for init in self._graph.initializer
        }
        self._handler_variables = TFModuleHelper._create_handlers_variables_for_graph(
            self._handlers, self._graph, self._initializers
        )
        self.inputs = graph_inputs(model)
        self.output_names = [o.name for o in self._graph.output]
        self._outputs = [Carried.of(o) for o in self._graph.output]
        check_names([Carried.of(v) for v in real_inputs(self._graph)], self._outputs)
        self._node_outputs: dict[Target, tf.types.experimental.ConcreteFunction] = {}

    @tf.autograph.experimental.do_not_convert
    def tensors(self, **inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every value of the graph; see :func:`translate_node` for how nodes are traced."""
        values: dict[str, tf.Tensor] = {}
        for graph_input in self.inputs:
            values[graph_input.onnx_name] = graph_input.value(inputs)
        # Variables are read here, so that every handler sees plain tensors in ONNX layout.
        values.update({name: self._onnx_layout(name) for name in self._initializers})
        values.update(self._handler_variables)
        return translate_graph(self._graph, self._opset, values)

    def _onnx_layout(self, name: str) -> tf.Tensor:
        """An initializer as ONNX lays it out, whichever way it is stored."""
        value = tf.convert_to_tensor(self._initializers[name])
        stored_as = self._stored_as.get(name)
        return value if stored_as is None else tf.transpose(value, np.argsort(stored_as))

    def node_outputs_function(self) -> tf.types.experimental.ConcreteFunction:
        """Every node output that is a tensor and every graph output (a sequence as onnx-tf holds
        it, an empty optional as None), keyed by ONNX name, traced once per lowering target
        (:func:`custom_ops.lowering.target`) for the dynamic input signature; later calls return
        the same function. The serving function and the per-layer parity check share this one
        trace (2-4 s for AutoVC)."""
        lowering_target = target()
        if lowering_target not in self._node_outputs:
            wanted = [name for node in self._graph.node for name in node.output if name]

            def node_outputs(**inputs: tf.Tensor) -> dict[str, Any]:
                values = self.tensors(**inputs)
                found = {name: values[name] for name in wanted if isinstance(values.get(name), tf.Tensor)}
                return {**found, **{name: values[name] for name in self.output_names}}

            function: Callable = tf.function(node_outputs, autograph=False)
            self._node_outputs[lowering_target] = function.get_concrete_function(**self.input_signature())
        return self._node_outputs[lowering_target]

    def signature_outputs(self, values: Mapping[str, Any]) -> dict[str, tf.Tensor]:
        """The graph outputs among ``values`` (ONNX name -> onnx-tf's value) as the signature's
        tensors, keyed by signature name."""
        return {key: tensor for value in self._outputs for key, tensor in output_tensors(value, values[value.name]).items()}

    def serving_function(self) -> tf.types.experimental.ConcreteFunction:
        """The graph outputs, keyed by their signature names: a call of :meth:`node_outputs_function`
        (TF's optimiser inlines it and prunes what the outputs do not need)."""
        node_outputs = self.node_outputs_function()

        def outputs(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.signature_outputs(node_outputs(**inputs))

        function: Callable = tf.function(outputs, autograph=False)
        return function.get_concrete_function(**self.input_signature())

    def xla_serving_function(self, buckets: Mapping[str, int] | None = None) -> tf.types.experimental.ConcreteFunction:
        """:meth:`serving_function`'s inputs and outputs, computed by the graph traced for XLA
        (``lowering("xla")``) in a ``tf.function(jit_compile=True)``.

        XLA compiles once per distinct input shape. ``buckets`` maps a symbolic axis name of the
        ONNX graph (e.g. ``{"time": 32}``) to a multiple: every input axis of that name is
        zero-padded at its end to the next multiple before the compiled call, and every output
        axis of that name is cropped back to the input's length after it, so lengths in one
        bucket share one compilation. Only exact for a model that itself zero-pads that axis to
        that multiple first (AutoVC pads ``time`` to a multiple of ``freq``): the caller vouches.
        """
        buckets = dict(buckets or {})
        with lowering("xla"):
            node_outputs = self.node_outputs_function()
        output_dims = {o.name: _dim_names(o) for o in self._graph.output}

        def compiled_outputs(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.signature_outputs(node_outputs(**inputs))

        compiled = tf.function(compiled_outputs, jit_compile=True, autograph=False)

        def outputs(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            lengths: dict[str, tf.Tensor] = {}
            padded = dict(inputs)
            for graph_input in self.inputs:
                value = inputs[graph_input.tf_name]
                for axis, dim in enumerate(graph_input.dims):
                    if dim in buckets:
                        lengths[dim] = tf.shape(value)[axis]
                        pad = [[0, 0]] * len(graph_input.dims)
                        pad[axis] = [0, (-lengths[dim]) % buckets[dim]]
                        value = tf.pad(value, pad)
                padded[graph_input.tf_name] = value
            results = compiled(**padded)
            for name in self.output_names:
                value = results[tf_name(name)]
                for axis, dim in enumerate(output_dims[name]):
                    if dim in lengths:
                        value = value[(slice(None),) * axis + (slice(None, lengths[dim]),)]
                results[tf_name(name)] = value
            return {key: tf.identity(value, name=key) for key, value in results.items()}

        function: Callable = tf.function(outputs, autograph=False)
        return function.get_concrete_function(**self.input_signature())

    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """The signature's inputs as keyword TensorSpecs (dynamic dims are None)."""
        return {key: spec for i in self.inputs for key, spec in i.specs().items()}


def _dim_names(value: onnx.ValueInfoProto) -> tuple[str | None, ...]:
    """The symbolic axis names (``dim_param``) of a graph input or output, None where unnamed."""
    return tuple(d.dim_param or None for d in value.type.tensor_type.shape.dim)


def _node_ops(node: Any, values: dict, handlers: dict, opset: list) -> list[tf.Tensor]:
    """One node through its onnx-tf handler (the table ``prepare()`` would use)."""
    from onnx_tf.backend import TensorflowBackend

    return TensorflowBackend._onnx_node_to_tensorflow_op(node, values, handlers, opset=opset, strict=True)


_node_ops_autograph = tf.autograph.to_graph(_node_ops)


# onnx-tf handlers whose Python code cannot run as plain graph code on a graph with dynamic
# dims (it branches on a tensor, e.g. ``len()`` of a dynamic shape tensor, and raises TypeError):
# only these are translated again through AutoGraph. Found by translating AutoVC's graph (no
# such op) and every official onnx node test model (onnx 1.18) with this module: these three
# convert through AutoGraph; Hardmax and Loop raise TypeError too but fail through AutoGraph as well.
AUTOGRAPH_OPS: frozenset[str] = frozenset({"NonMaxSuppression", "ReduceSum", "Trilu"})


def translate_graph(
    graph: onnx.GraphProto,
    opset: list,
    values: dict,
    after_node: Callable[[onnx.NodeProto, list, dict], None] | None = None,
) -> dict:
    """Translate the nodes of ``graph`` in order into ``values`` (ONNX name -> tensor, holding
    the graph inputs and initialisers on entry) and return it; ``after_node(node, results,
    values)``, when given, runs after each node (to rebind values)."""
    from onnx_tf.backend import TensorflowBackend
    from onnx_tf.pb_wrapper import OnnxNode

    # onnx-tf keeps each op's version on the handler class, set by the last _get_handlers()
    # call in the process: refresh it for this graph's opset before translating.
    handlers = TensorflowBackend._get_handlers(opset)
    for node_proto in graph.node:
        node = OnnxNode(node_proto)
        results = translate_node(node, values, handlers, opset)
        values.update(zip(node.outputs, results))
        if after_node is not None:
            after_node(node_proto, results, values)
    return values


def translate_node(node: Any, values: dict, handlers: dict, opset: list) -> list[tf.Tensor]:
    """One node (an onnx-tf ``OnnxNode``) as plain graph code, or through AutoGraph for a
    handler that needs it; ``values`` maps the names of the tensors computed so far.

    Converting every handler's source with AutoGraph takes most of the trace time (12 of 17 s
    for AutoVC), and only the handlers of :data:`AUTOGRAPH_OPS` need it: they fail as plain
    graph code with a TypeError and are translated again through AutoGraph (ops left by the
    failed attempt are unused and pruned). A TypeError of any other handler is a bug and
    propagates.
    """
    try:
        return _node_ops(node, values, handlers, opset)
    except TypeError:
        if node.op_type not in AUTOGRAPH_OPS:
            raise
        return _node_ops_autograph(node, values, handlers, opset)
    except RuntimeError as error:  # onnx-tf's handlers refuse an option they lack this way
        refusal = str(error)
        if not _ONNX_TF_REFUSAL.fullmatch(refusal):
            raise
        from custom_ops.support import UnsupportedOptionError

        raise UnsupportedOptionError.from_onnx_tf(node.op_type, node.name, refusal) from None


# onnx-tf's OP_UNSUPPORTED_EXCEPT message: "<what> is not supported in <framework>."
_ONNX_TF_REFUSAL = re.compile(r"[^\n]+ is not supported in [^\n]+\.")


# Handler inputs that the handler transposes on every call, and the permutation it applies:
# onnx-tf's Conv and ConvTranspose turn their weight [M, C, K...] into TF's [K..., C, M]; our
# LSTM, GRU and RNN multiply by R transposed ([D, G*H, H] -> [D, H, G*H]).
_HANDLER_TRANSPOSES: dict[tuple[str, int], Callable[[int], tuple[int, ...]]] = {
    ("Conv", 1): lambda rank: (*range(2, rank), 1, 0),
    ("ConvTranspose", 1): lambda rank: (*range(2, rank), 1, 0),
    ("LSTM", 2): lambda rank: (0, 2, 1),
    ("GRU", 2): lambda rank: (0, 2, 1),
    ("RNN", 2): lambda rank: (0, 2, 1),
}


def stored_layouts(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
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
    """The graph's real inputs (not initializers); unknown or symbolic dims become None. An
    optional input is its element (see :mod:`pipeline.stages.signature_values`)."""
    found = []
    for value in real_inputs(model.graph):
        carried = Carried.of(value)
        shape = carried.element_shape()
        if carried.sequence:
            shape = (None, *shape[1:]) if shape else None
            found.append(GraphInput(value.name, carried.key, carried.dtype(), shape, sequence=True))
        else:
            found.append(GraphInput(value.name, carried.key, carried.dtype(), shape, _dim_names(value)))
    return found


def write_saved_model(
    module: OnnxGraphModule, directory: Path, *, xla_buckets: Mapping[str, int] | None = None
) -> tf.types.experimental.ConcreteFunction:
    """Trace both serving functions and write the SavedModel into ``directory`` (must not
    exist); ``xla_buckets``: see :meth:`OnnxGraphModule.xla_serving_function`. Returns the
    ``serving_default`` function."""
    serving = module.serving_function()
    signatures = {SIGNATURE_KEY: serving, XLA_SIGNATURE_KEY: module.xla_serving_function(xla_buckets)}
    tf.saved_model.save(module, str(directory), signatures=signatures)
    return serving


def run_saved_model(directory: Path, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Load a SavedModel written by :func:`write_saved_model` and run it on ONNX-named inputs
    (a list of arrays for a sequence); the outputs are keyed by signature name, each an array, a
    list of arrays (a sequence) or None (an empty optional), as onnxruntime returns them."""
    loaded = tf.saved_model.load(str(directory))
    serving = loaded.signatures[SIGNATURE_KEY]
    return decode_outputs(serving(**signature_feeds(inputs, serving.structured_input_signature[1])))
