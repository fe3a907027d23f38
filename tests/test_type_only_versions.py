"""The op versions served by onnx-tf's previous-version handler really changed nothing but types:
their ONNX schemas have the previous version's attributes, inputs and outputs."""

from __future__ import annotations

import pytest
from onnx import defs

import custom_ops

custom_ops.register()

from custom_ops.handlers.type_only_versions import HANDLERS, TYPE_ONLY_VERSIONS  # noqa: E402

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
