"""Newer ONNX versions of ops whose only change is new element types, served by onnx-tf's own
handler for the op's previous version.

Each entry is an op and the since-versions added here. Every one was checked against ONNX's
operator changelog to change nothing but the accepted types (bfloat16 in opset 22; float8 in
19; int4/uint4 in 21; float4e2m1 and more in 23; string for Equal-19; optional and sequence
types for the control-flow ops in 16; tensor and sequence inputs for OptionalGetElement-18,
returned as they are), so the previous version's translation is exact for every
type TensorFlow has. Versions that changed attributes or semantics are not here: they need their
own handler (e.g. LpPool-18 ``ceil_mode``, ScatterND-16 ``reduction``, RoiAlign-16
``coordinate_transformation_mode``, QuantizeLinear-21 block quantization). Nor are ops that have
a handler of our own (Reshape): a class made here would replace it at every version.

onnx-tf picks the last direct subclass of ``BackendHandler`` registered for an op name; each
class made here derives from onnx-tf's handler *and* directly from ``BackendHandler``, and adds
``version_N`` methods that run the newest version onnx-tf implements. The class keeps the
module and name of onnx-tf's handler, whose translation it is, so that reports name that one.
"""

from __future__ import annotations

import tensorflow as tf
from onnx import TensorProto
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from custom_ops.support import UnsupportedOptionError

TYPE_ONLY_VERSIONS: dict[str, tuple[int, ...]] = {
    # opset 22: bfloat16
    **{
        op: (22,)
        for op in (
            "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Bernoulli", "Conv",
            "ConvTranspose", "Cos", "Cosh", "Det", "Dropout", "Elu", "EyeLike",
            "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "HardSigmoid", "HardSwish",
            "LpNormalization", "MaxUnpool", "Multinomial", "RandomNormal", "RandomNormalLike",
            "RandomUniform", "RandomUniformLike", "Round", "Selu", "Sin", "Sinh", "Softplus",
            "Softsign", "Tan", "ThresholdedRelu",
        )
    },
    # 19: float8 (Cast's saturate only concerns float8); 21: int4/uint4; 23: float4 and more
    "Cast": (19, 21, 23),
    "CastLike": (19, 21, 23),
    "Constant": (19, 21, 23),
    "ConstantOfShape": (20, 21, 23),
    "Flatten": (21, 23),
    "Identity": (19, 21, 23),
    "Size": (19, 21, 23),
    "Transpose": (21, 23),
    "Equal": (19,),
    "GreaterOrEqual": (16,),
    "LessOrEqual": (16,),
    "IsInf": (20,),
    "IsNaN": (20,),
    "If": (16, 19, 21, 23),
    "Loop": (16, 19, 21, 23),
    "Scan": (16, 19, 21, 23),
    "OptionalGetElement": (18,),
}  # fmt: skip


def _onnx_tf_handler(op_type: str) -> type:
    """onnx-tf's own handler class for ``op_type`` (default domain)."""
    for handler in BackendHandler.__subclasses__():
        stock = handler.__module__.startswith("onnx_tf.")
        if stock and handler.ONNX_OP == op_type and handler.DOMAIN == "":
            return handler
    raise LookupError(f"onnx-tf has no handler for {op_type}")


# element types of the new versions that TensorFlow has no dtype for (float8, float4, int4):
# a Cast to one of them is refused rather than computed in another type
NO_TF_TYPE = {
    TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2,
    TensorProto.FLOAT8E5M2FNUZ, TensorProto.UINT4, TensorProto.INT4, TensorProto.FLOAT4E2M1,
}  # fmt: skip


def _check_cast_target(node) -> None:
    """Cast's ``to`` must be a type TensorFlow has (CastLike's target is an input's type, seen
    when translating)."""
    if node.op_type == "Cast":
        target = _cast_target(node)
        if target in NO_TF_TYPE:
            supported = "a type TensorFlow has (not float8, float4, int4 or uint4)"
            raise UnsupportedOptionError.of("Cast", node.name, "to", TensorProto.DataType.Name(target), supported)


def _cast_target(node) -> int:
    """Cast's ``to`` as an ONNX type (``node.attrs`` holds it translated to a TensorFlow dtype)."""
    return next(a.i for a in node.node_proto.attribute if a.name == "to")


def _check_cast_source(node, tensor_dict) -> None:
    """A float to string cast is refused (TensorFlow formats numbers differently from ONNX), for
    CastLike as well. Checked when translating: the source type of a node output is declared
    in the model only where it carries value_info, while the translated tensor always has it."""
    source = tensor_dict[node.inputs[0]].dtype
    if node.op_type == "CastLike":
        to_string = tensor_dict[node.inputs[1]].dtype == tf.string
    else:
        to_string = _cast_target(node) == TensorProto.STRING
    if to_string and source.is_floating:
        raise UnsupportedOptionError.of(
            node.op_type, node.name, "input type", source.name, "any but a float type when casting to STRING")


def _newer_versions(op_type: str, versions: tuple[int, ...]) -> type:
    stock = _onnx_tf_handler(op_type)
    previous = max(stock.get_versions())

    def run_previous(cls, node, **kwargs):
        if op_type in ("Cast", "CastLike"):
            _check_cast_target(node)  # also for onnx-tf's prepare(), which does not check
            _check_cast_source(node, kwargs["tensor_dict"])
        return getattr(cls, f"version_{previous}")(node, **kwargs)

    members = {f"version_{v}": classmethod(run_previous) for v in versions}
    if op_type in ("Cast", "CastLike"):
        members["check_options"] = classmethod(lambda cls, node, since_version: _check_cast_target(node))
    # reported (support.coverage, supported_ops) as onnx-tf's handler: the translation is its own
    members["__module__"], members["__qualname__"] = stock.__module__, stock.__qualname__
    members["__doc__"] = (
        f"{op_type} versions {', '.join(map(str, versions))}: onnx-tf's version {previous}."
    )
    return onnx_op(op_type)(type(op_type, (stock, BackendHandler), members))


HANDLERS: dict[str, type] = {op: _newer_versions(op, v) for op, v in TYPE_ONLY_VERSIONS.items()}
