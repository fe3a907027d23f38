"""The op versions served by onnx-tf's previous-version handler really changed nothing but types:
their ONNX schemas have the previous version's attributes, inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, defs, helper
from onnx_tf_harness import run_onnx_tf, run_test_case

import custom_ops

custom_ops.register()

from custom_ops.handlers.type_only_versions import HANDLERS, TYPE_ONLY_VERSIONS  # noqa: E402
from custom_ops.support import UnsupportedOptionError  # noqa: E402

# attributes a version added that only apply to types TensorFlow does not have (float8)
ONLY_FOR_NEW_TYPES = {
    (op, version): {"saturate"} for op in ("Cast", "CastLike") for version in (19, 21, 23)
}


def _signature(schema: defs.OpSchema, ignore: set[str]) -> tuple:
    attributes = sorted(
        (name, a.type, a.required, a.default_value.SerializeToString())
        for name, a in schema.attributes.items()
        if name not in ignore
    )
    inputs = [(i.name, i.option, i.is_homogeneous) for i in schema.inputs]
    outputs = [(o.name, o.option, o.is_homogeneous) for o in schema.outputs]
    return attributes, inputs, outputs, schema.min_input, schema.max_input, schema.min_output


@pytest.mark.parametrize(
    ("op_type", "version"),
    [(op, v) for op, versions in TYPE_ONLY_VERSIONS.items() for v in versions],
    ids=str,
)
def test_schema_changed_only_types(op_type: str, version: int) -> None:
    handler = HANDLERS[op_type]
    previous = max(v for v in handler.get_versions() if v not in TYPE_ONLY_VERSIONS[op_type])
    new = defs.get_schema(op_type, version)
    old = defs.get_schema(op_type, previous)
    assert new.since_version == version and old.since_version == previous
    ignore = ONLY_FOR_NEW_TYPES.get((op_type, version), set())
    assert _signature(new, ignore) == _signature(old, set())


@pytest.mark.parametrize("op_type", TYPE_ONLY_VERSIONS)
def test_onnx_tf_dispatches_every_version(op_type: str) -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for version in TYPE_ONLY_VERSIONS[op_type]:
        dispatched = get_all_backend_handlers({"": version})[""][op_type]
        assert dispatched is HANDLERS[op_type]
        assert dispatched.SINCE_VERSION == version


@pytest.mark.parametrize(
    ("to", "match"),
    [
        (TensorProto.FLOAT8E4M3FN, "to 'FLOAT8E4M3FN' is not supported"),
        (TensorProto.INT4, "to 'INT4' is not supported"),
        (TensorProto.STRING, "input type 'float32' is not supported .supported: any but a float type when casting to STRING"),
    ],
)
def test_cast_to_a_type_tensorflow_lacks_is_refused(to: int, match: str) -> None:
    """Refused when translating too (onnx-tf's prepare() runs no up-front check)."""
    node = helper.make_node("Cast", ["x"], ["y"], to=to)
    graph = helper.make_graph(
        [node],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", to, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(UnsupportedOptionError, match=match):
        run_onnx_tf(model, {"x": np.zeros(2, np.float32)})


def test_cast_between_tensorflow_types_still_runs() -> None:
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT32)
    graph = helper.make_graph(
        [node],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    run_test_case(
        model, {"x": np.array([1.7, -2.2, 3.0], np.float32)}, {"y": np.array([1, -2, 3], np.int32)}
    )


def test_our_own_handlers_are_not_replaced() -> None:
    """Every op with a handler of our own is dispatched to it at every opset: a type-only class
    made for such an op would replace it silently (Reshape-19 once did, and with it every
    version lost the Reshape that compiles under XLA)."""
    from onnx_tf.common.handler_helper import get_all_backend_handlers
    from onnx_tf.handlers.backend_handler import BackendHandler

    ours = {
        handler.ONNX_OP: handler
        for handler in BackendHandler.__subclasses__()
        if handler.__module__.startswith("custom_ops.handlers.") and handler.DOMAIN == ""
    }
    assert "Reshape" in ours and "Slice" in ours
    for opset in (13, 17, 19, 21, 23):
        dispatched = get_all_backend_handlers({"": opset})[""]
        assert {op: dispatched[op] for op in ours} == ours, opset
