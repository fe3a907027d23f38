"""Which handler serves each node of a model, checked before conversion.

onnx-tf resolves a node the way :func:`check_supported` does: it builds its handler table
with ``get_all_backend_handlers(opset imports)`` (our handlers included once
:func:`custom_ops.register` has run), looks the node up by ``(domain, op_type)``, and calls
``version_N`` where N is the op's since-version at the model's opset. A missing handler or
``version_N`` (or an onnx-tf handler whose package :mod:`custom_ops.compat` stands in for)
otherwise surfaces only when the graph is first traced, one op at a time;
:func:`check_supported` reports every such node of the model, subgraphs included, up front.
It then checks each node's options (attributes) against what its handler implements: a
handler of ours may define a classmethod ``check_options(node, since_version)`` that raises
:class:`UnsupportedOptionError` (the LSTM handler's node parser does the same). An unsupported
op or option is a bad input, not a bug.

``get_all_backend_handlers`` stores each handler's since-version on the handler *class*, and
onnx-tf reads it back when it traces a prepared model, which happens lazily at the first
``run()``. The functions here restore those class attributes afterwards, so that checking one
model cannot change how an already prepared model of another opset is traced.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import defs

import custom_ops
from custom_ops import compat


@dataclass(frozen=True)
class UnsupportedNode:
    """One node that onnx-tf cannot convert. ``since_version`` is None for an op the installed
    onnx does not define at that opset; ``implemented`` lists the handler's versions, if any."""

    op_type: str
    domain: str
    opset: int
    since_version: int | None
    node_name: str
    handler: str | None
    implemented: tuple[int, ...]
    stood_in_package: str | None = None  # what onnx-tf's handler needs and does not have here

    def __str__(self) -> str:
        op = self.op_type if self.domain in ("", "ai.onnx") else f"{self.domain}.{self.op_type}"
        if self.since_version is None:
            since = "no ONNX schema"
        else:
            since = f"since version {self.since_version}"
        message = (
            f"ONNX op {op} (opset {self.opset}, {since}) at node '{self.node_name}' "
            "has no TensorFlow handler"
        )
        if self.stood_in_package is not None:
            message += (f" ({self.handler} needs {self.stood_in_package}, which does not work with"
                        " TensorFlow 2.21 / Keras 3)")
        elif self.handler is not None:
            versions = ", ".join(map(str, self.implemented))
            message += f" ({self.handler} implements versions {versions})"
        return message


class UnsupportedOpError(Exception):
    """Some nodes have no TensorFlow handler. ``nodes`` lists them all; ``op_type``,
    ``version`` (the since-version) and ``node_name`` describe the first."""

    def __init__(self, nodes: list[UnsupportedNode]) -> None:
        self.nodes = nodes
        self.op_type = nodes[0].op_type
        self.version = nodes[0].since_version
        self.node_name = nodes[0].node_name
        if len(nodes) == 1:
            message = str(nodes[0])
        else:
            message = f"{len(nodes)} ONNX nodes have no TensorFlow handler:\n" + "\n".join(
                f"  {node}" for node in nodes
            )
        super().__init__(message)


class UnsupportedOptionError(Exception):
    """A node sets an option (attribute) to a value its handler does not implement: bad input.
    Raised by the up-front check and by a handler that refuses the node while translating it.
    Made by :meth:`of` (or :meth:`from_onnx_tf`); ``op_type``, ``node_name``, ``option``,
    ``value`` and ``supported`` describe it. ``__init__`` is Exception's own, so that AutoGraph,
    which re-raises an error from converted code as ``type(error)(message)`` only for such
    classes, keeps the type (the attributes are then None)."""

    op_type: str | None = None
    node_name: str | None = None
    option: str | None = None
    value: Any = None
    supported: str | None = None

    @classmethod
    def of(cls, op_type: str, node_name: str, option: str, value: Any, supported: str) -> UnsupportedOptionError:
        """One line: ``ONNX op OP at node 'NAME': OPTION VALUE is not supported (supported: ...)``."""
        message = f"ONNX op {op_type} at node '{node_name}': {option} {value!r} is not supported (supported: {supported})"
        return cls._with(message, op_type, node_name, option, value, supported)

    @classmethod
    def from_onnx_tf(cls, op_type: str, node_name: str, refusal: str) -> UnsupportedOptionError:
        """onnx-tf's own handlers refuse an option while translating with a RuntimeError
        ``"<op> with <option> is not supported in Tensorflow."``: the same error, in its words."""
        words = refusal.rstrip(".")
        message = f"ONNX op {op_type} at node '{node_name}': {words} (onnx-tf's handler)"
        return cls._with(message, op_type, node_name, words, None, "what onnx-tf 1.10's handler implements")

    @classmethod
    def _with(cls, message: str, op_type: str, node_name: str, option: str, value: Any, supported: str) -> UnsupportedOptionError:
        error = cls(message)
        error.op_type, error.node_name, error.option, error.value, error.supported = (
            op_type, node_name, option, value, supported)
        return error


def checked_option(node: Any, option: str, default: Any, supported: Iterable[Any]) -> Any:
    """The value of attribute ``option`` of ``node`` (an onnx-tf ``OnnxNode``; ``default`` when
    absent), or :class:`UnsupportedOptionError` when it is not one of ``supported``."""
    value = node.attrs.get(option, default)
    if isinstance(value, bytes):
        value = value.decode()
    if value not in supported:
        raise UnsupportedOptionError.of(node.op_type, node.name, option, value, ", ".join(map(str, supported)))
    return value


def _recurrent_options(node: Any, since_version: int) -> None:
    """The LSTM, GRU and RNN handlers validate every option when they parse the node."""
    import importlib

    importlib.import_module(f"custom_ops.handlers.{node.op_type.lower()}")._Config.from_node(node)


# Option checks of handlers that keep theirs in their node parser, by qualified handler name.
_PARSER_OPTION_CHECKS = {
    f"custom_ops.handlers.{op.lower()}.{op}": _recurrent_options for op in ("LSTM", "GRU", "RNN")
}


def check_options(handler: type, node: onnx.NodeProto, since_version: int) -> None:
    """Raise :class:`UnsupportedOptionError` when ``handler`` does not implement an option
    ``node`` sets (a no-op for handlers without a check)."""
    check = getattr(handler, "check_options", None) or _PARSER_OPTION_CHECKS.get(_qualified_name(handler))
    if check is None:
        return
    from onnx_tf.pb_wrapper import OnnxNode

    check(OnnxNode(node), since_version)


def check_supported(model: onnx.ModelProto) -> None:
    """Raise :class:`UnsupportedOpError` naming every node onnx-tf would fail to dispatch, then
    :class:`UnsupportedOptionError` for the first node with an option its handler lacks."""
    opsets = _opsets(model)
    unsupported = []
    with _handler_table(opsets) as handlers:
        for node in _nodes(model.graph):
            handler, since_version, supported = _resolve(node.domain, node.op_type, handlers, opsets)
            if supported:
                if not unsupported:
                    check_options(handler, node, since_version)
                continue
            unsupported.append(
                UnsupportedNode(
                    op_type=node.op_type,
                    domain=node.domain,
                    opset=opsets.get(node.domain, 1),
                    since_version=since_version,
                    node_name=node.name or f"<unnamed, output '{node.output[0]}'>",
                    handler=None if handler is None else _qualified_name(handler),
                    implemented=() if handler is None else tuple(sorted(handler.get_versions())),
                    stood_in_package=_stood_in_package(node.domain, node.op_type, handler),
                )
            )
    if unsupported:
        raise UnsupportedOpError(unsupported)


def coverage(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """One row per ``(domain, op_type)`` of the model, subgraphs included, sorted.

    Keys: ``op_type``, ``domain``, ``count`` (nodes), ``since_version`` (see :func:`_resolve`),
    ``handler`` (``module.Class`` or None), ``source`` (``"custom_ops"``,
    ``"onnx_tf"`` or None), ``supported`` (the handler implements ``since_version`` and has
    the package it needs).
    """
    opsets = _opsets(model)
    counts = Counter((node.domain, node.op_type) for node in _nodes(model.graph))
    rows = []
    with _handler_table(opsets) as handlers:
        for (domain, op_type), count in sorted(counts.items()):
            handler, since_version, supported = _resolve(domain, op_type, handlers, opsets)
            rows.append(
                {
                    "op_type": op_type,
                    "domain": domain,
                    "count": count,
                    "since_version": since_version,
                    "handler": None if handler is None else _qualified_name(handler),
                    "source": None if handler is None else _source(handler),
                    "supported": supported,
                }
            )
    return rows


def supported_ops() -> list[dict[str, Any]]:
    """Every registered handler: ``op_type``, ``domain``, ``versions`` (the since-versions it
    implements), ``handler`` and ``source``, sorted by domain and op type."""
    with _handler_table({defs.ONNX_DOMAIN: defs.onnx_opset_version()}) as table:
        return [
            {
                "op_type": op_type,
                "domain": domain,
                "versions": sorted(handler.get_versions()),
                "handler": _qualified_name(handler),
                "source": _source(handler),
            }
            for domain in sorted(table)
            for op_type, handler in sorted(table[domain].items())
        ]


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    """The opset per domain, as onnx-tf reads it (IR < 3 has no opset_import: opset 1)."""
    if model.ir_version < 3:
        return {defs.ONNX_DOMAIN: 1}
    return {opset.domain: opset.version for opset in model.opset_import}


@contextlib.contextmanager
def _handler_table(opsets: Mapping[str, int]) -> Iterator[dict[str, dict[str, type]]]:
    """The handler table ``prepare()`` builds for these opsets, valid inside the block; the
    handlers' ``VERSION``/``SINCE_VERSION`` class attributes are restored on exit."""
    custom_ops.register()
    from onnx_tf.common.handler_helper import get_all_backend_handlers
    from onnx_tf.handlers.backend_handler import BackendHandler

    saved = [(h, h.VERSION, h.SINCE_VERSION) for h in BackendHandler.__subclasses__()]
    try:
        yield get_all_backend_handlers(dict(opsets))
    finally:
        for handler, version, since_version in saved:
            handler.VERSION, handler.SINCE_VERSION = version, since_version


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of the subgraphs of its If/Loop/Scan nodes."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _nodes(subgraph)


def _resolve(
    domain: str, op_type: str, handlers: dict[str, dict[str, type]], opsets: dict[str, int]
) -> tuple[type | None, int | None, bool]:
    """``(handler, since_version, supported)`` as ``Handler.handle`` decides them (and a handler
    whose package is stood in for is not supported). With a handler, since_version is the one it
    dispatches on (onnx-tf uses 1 for ops without a schema); without one, the schema's, or None
    if onnx defines no such op at that opset."""
    handler = handlers.get(domain, {}).get(op_type)
    if handler is not None:
        usable = _stood_in_package(domain, op_type, handler) is None
        return handler, handler.SINCE_VERSION, usable and hasattr(handler, f"version_{handler.SINCE_VERSION}")
    try:
        schema = defs.get_schema(op_type, max_inclusive_version=opsets.get(domain, 1), domain=domain)
    except defs.SchemaError:
        return None, None, False
    return None, schema.since_version, False


def _stood_in_package(domain: str, op_type: str, handler: type | None) -> str | None:
    """The package onnx-tf's own handler needs where :mod:`custom_ops.compat` stands in for it
    (Hardmax, Bernoulli): such a handler fails on every node it translates."""
    if handler is None or _source(handler) != "onnx_tf" or domain not in ("", "ai.onnx"):
        return None
    return compat.stood_in_package(op_type)


def _qualified_name(handler: type) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


def _source(handler: type) -> str:
    return "custom_ops" if handler.__module__.startswith(f"{custom_ops.__name__}.") else "onnx_tf"
