"""ONNX graph -> LiteRT (TFLite) flatbuffer with builtin ops only, for any batch and length.

The graph is traced again, with every handler lowering for ``"tflite"`` (see
:mod:`custom_ops.lowering`: no TensorList/TensorArray, no Flex ops), and converted with
``tf.lite.TFLiteConverter`` restricted to ``TFLITE_BUILTINS``. Dynamic dims stay dynamic: a user
calls ``resize_tensor_input`` then ``allocate_tensors`` (or a signature runner, which does both).
The ``serving_default`` signature names its inputs and outputs like the SavedModel's (the ONNX
names, made identifier-like by :func:`pipeline.stages.tf_convert.tf_name`).

Variants (``quantize``): ``dynamic`` stores weights as int8 and quantizes activations on the fly
(dynamic-range quantization); ``float16`` stores weights as float16, dequantized when loaded.
Both are about the size/accuracy trade, reported but not held to float32 tolerances.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from pipeline.runtime.errors import PipelineError, UsageError

if TYPE_CHECKING:
    import tensorflow as tf

    from pipeline.parity.backends import BackendSpec
    from pipeline.stages.tf_convert import OnnxGraphModule

TFLITE_FILE = "model.tflite"
Quantize = Literal["dynamic", "float16"]
QUANTIZE_VARIANTS: tuple[Quantize, ...] = ("dynamic", "float16")
CUSTOM = "CUSTOM"  # the builtin code of custom ops, Flex (SELECT_TF_OPS) ops among them


class NonBuiltinOpError(PipelineError):
    """The written model holds an op that the stock LiteRT runtime does not have."""


@dataclass(frozen=True)
class TfliteModel:
    """One written ``.tflite`` file: its variant (None: float32), size, conversion time and ops."""

    path: Path
    variant: Quantize | None
    size_bytes: int
    seconds: float
    ops: dict[str, int]  # builtin op name -> number of uses, over every subgraph

    def to_json(self, relative_to: Path | None = None) -> dict:
        path = self.path.relative_to(relative_to) if relative_to is not None else self.path
        return {
            "path": str(path),
            "variant": self.variant or "float32",
            "bytes": self.size_bytes,
            "conversion_s": self.seconds,
            "ops": self.ops,
        }


def variant_file(variant: Quantize | None) -> str:
    """``model.tflite`` for float32, ``model.<variant>.tflite`` for a quantized variant."""
    return TFLITE_FILE if variant is None else f"model.{variant}.tflite"


def tflite_function(module: OnnxGraphModule) -> tf.types.experimental.ConcreteFunction:
    """The graph outputs keyed by TF name, traced with the handlers lowering for LiteRT.

    A trace of its own: the module's cached :meth:`~OnnxGraphModule.node_outputs_function` was
    traced for the graph executor (e.g. TF's fused ``BlockLSTM``, which LiteRT has no lowering for).
    """
    import tensorflow as tf

    from custom_ops.lowering import lowering

    def outputs(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return module.signature_outputs(module.tensors(**inputs))

    with lowering("tflite"):
        return tf.function(outputs, autograph=False).get_concrete_function(**module.input_signature())


def convert(function: tf.types.experimental.ConcreteFunction, module: OnnxGraphModule,
            quantize: Quantize | None = None) -> bytes:
    """The LiteRT flatbuffer of ``function`` (its variables taken from ``module``), builtin ops only.

    Raises :class:`PipelineError` with the converter's first error line when an op does not
    lower to a builtin.
    """
    import tensorflow as tf

    if quantize is not None and quantize not in QUANTIZE_VARIANTS:
        raise UsageError(f"unknown quantization {quantize!r}; known: {', '.join(QUANTIZE_VARIANTS)}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as error:  # noqa: BLE001 (the converter raises ConverterError and others)
        raise PipelineError(f"LiteRT conversion (builtin ops only) failed: {_first_error(error)}") from None


def _first_error(error: Exception) -> str:
    """The converter's message names the op that failed to legalize; its first error line is enough."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "error:" in line:
            return line[line.index("error:") + len("error:"):].strip()
    return lines[0] if lines else type(error).__name__


def op_counts(flatbuffer: bytes) -> dict[str, int]:
    """Every operator of every subgraph, by builtin name (``CUSTOM:<name>`` for a custom op),
    sorted by name."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    codes = []
    for code in model.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, str(builtin))
        if name == CUSTOM:
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            name = f"{CUSTOM}:{custom}"
        codes.append(name)
    counts = Counter(codes[op.opcodeIndex] for subgraph in model.subgraphs for op in subgraph.operators or [])
    return dict(sorted(counts.items()))


def require_builtin(ops: dict[str, int], what: str) -> None:
    """Raise :class:`NonBuiltinOpError` naming every custom (or Flex) op of ``ops``."""
    custom = sorted(name for name in ops if name.startswith(CUSTOM))
    if custom:
        raise NonBuiltinOpError(f"{what} holds ops the stock LiteRT runtime lacks: {', '.join(custom)}")


def write_tflite(module: OnnxGraphModule, directory: Path,
                 variants: tuple[Quantize | None, ...] = (None,)) -> list[TfliteModel]:
    """Trace ``module`` for LiteRT once and write one file per variant into ``directory``
    (``None``: the float32 ``model.tflite``); each is checked to hold builtin ops only."""
    start = time.perf_counter()
    function = tflite_function(module)
    trace_seconds = time.perf_counter() - start
    written = []
    for variant in variants:
        start = time.perf_counter()
        flatbuffer = convert(function, module, variant)
        ops = op_counts(flatbuffer)
        path = Path(directory) / variant_file(variant)
        require_builtin(ops, path.name)
        path.write_bytes(flatbuffer)
        seconds = time.perf_counter() - start + (trace_seconds if not written else 0.0)
        written.append(TfliteModel(path, variant, len(flatbuffer), round(seconds, 3), ops))
    return written


def litert_backend(model: TfliteModel) -> BackendSpec:
    """The parity backend ``litert`` running ``model`` (see :class:`pipeline.parity.backends.LitertBackend`)."""
    from pipeline.parity.backends import LITERT, BackendSpec, LitertBackend

    return BackendSpec(LITERT, lambda output_names: LitertBackend(model.path, output_names), model.path)


def variant_errors(models: list[TfliteModel], inputs: dict[str, np.ndarray],
                   reference: dict[str, np.ndarray], output_names: list[str]) -> dict[str, dict[str, float]]:
    """Max abs error per output of each quantized variant against ``reference`` outputs (e.g.
    torch's) on ``inputs``, by file name. Reported only: quantization is not held to 1e-5."""
    from pipeline.parity.backends import LitertBackend

    errors = {}
    for model in models:
        outputs = LitertBackend(model.path, output_names).run(inputs)
        errors[model.path.name] = {
            name: float(np.max(np.abs(outputs[name].astype(np.float64) - reference[name]), initial=0.0))
            for name in output_names if name in outputs and name in reference
        }
    return errors


def report_section(models: list[TfliteModel], errors: dict[str, dict[str, float]], reference: str | None,
                   relative_to: Path | None = None) -> dict:
    """The ``tflite`` object of report.json and manifest.json (see SCHEMA.md)."""
    return {
        "builtin_ops_only": True,
        "models": [
            {**m.to_json(relative_to), "max_abs_vs_reference": errors.get(m.path.name)} for m in models
        ],
        "variants_reference": reference,
    }
