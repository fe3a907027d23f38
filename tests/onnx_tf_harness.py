"""One harness for every handler test: run an ONNX model through onnx-tf + custom_ops (or
through the graph module traced for a lowering target) and compare with expected outputs
computed by an independent reference (onnx's official node test data, torch, or a numpy
reference).

The onnx package's own ``onnx.backend.test`` runner counts "not implemented" as passed, so the
official node tests are loaded and compared here directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import custom_ops
from custom_ops.lowering import Target

NODE_TEST_ROOT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def official_node_tests(*prefixes: str) -> list[Path]:
    """The official node test folders whose names start with one of ``prefixes``."""
    found = sorted(p for p in NODE_TEST_ROOT.iterdir() if p.name.startswith(prefixes))
    assert found, f"no official node tests match {prefixes}"
    return found


def load_node_test(folder: Path) -> tuple[onnx.ModelProto, list[tuple[dict, dict]]]:
    """The model and its (inputs, expected outputs) data sets, keyed by graph value names."""
    model = onnx.load(folder / "model.onnx")
    input_names = [i.name for i in model.graph.input]
    output_names = [o.name for o in model.graph.output]
    cases = []
    for data_set in sorted(folder.glob("test_data_set_*")):
        inputs = [_read_tensor(p) for p in sorted(data_set.glob("input_*.pb"), key=_index)]
        outputs = [_read_tensor(p) for p in sorted(data_set.glob("output_*.pb"), key=_index)]
        cases.append((dict(zip(input_names, inputs)), dict(zip(output_names, outputs))))
    return model, cases


def run_node_test(folder: Path, atol: float = 1e-6, rtol: float = 0.0) -> None:
    """Every data set of the official node test in ``folder`` through onnx-tf."""
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=atol, rtol=rtol)


def run_onnx_tf(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Import ``model`` with onnx-tf (our handlers registered) and run it once."""
    custom_ops.register()
    from onnx_tf.backend import prepare

    rep = prepare(model)
    outputs = rep.run(inputs)
    return {name: np.asarray(outputs[name]) for name in rep.outputs}


def run_xla_module(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``model`` run once through the SavedModel's ``serving_xla`` function, as `convert` builds
    it: traced for the XLA lowering target and compiled with ``jit_compile=True``."""
    import tensorflow as tf

    from pipeline.stages.tf_convert import OnnxGraphModule, tf_name

    module = OnnxGraphModule(model)
    feeds = {i.tf_name: tf.constant(inputs[i.onnx_name], dtype=i.dtype) for i in module.inputs}
    outputs = module.xla_serving_function()(**feeds)
    return {name: outputs[tf_name(name)].numpy() for name in module.output_names}


def run_test_case(
    model: onnx.ModelProto,
    inputs: dict[str, np.ndarray],
    expected: dict[str, np.ndarray],
    atol: float = 1e-6,
    rtol: float = 0.0,
) -> None:
    """Every expected output must match in shape, dtype and value."""
    actual = run_onnx_tf(model, inputs)
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=name)


Run = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Lowered:
    """A model's serving function traced for one lowering target (:mod:`custom_ops.lowering`),
    and each runtime that runs it, keyed by name: TensorFlow for every target (for ``"xla"``
    compiled with ``jit_compile=True``), and for ``"tflite"`` also LiteRT running the
    builtins-only model converted from it (any batch and length: its signature runner resizes)."""

    runs: dict[str, Run]
    litert_ops: dict[str, int]  # builtin op name -> uses in the LiteRT model ({} for other targets)


def lower(model: onnx.ModelProto, target: Target) -> Lowered:
    """``model`` as ``convert`` builds it (the graph module), for ``target``; inputs and outputs
    keyed by ONNX name."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from pipeline.stages.tf_convert import OnnxGraphModule, tf_name
    from pipeline.stages.tflite import convert, op_counts, tflite_function

    module = OnnxGraphModule(model)
    functions = {"graph": module.serving_function, "xla": module.xla_serving_function, "tflite": lambda: tflite_function(module)}
    function = functions[target]()

    def by_onnx_name(outputs: dict) -> dict[str, np.ndarray]:
        return {name: np.asarray(outputs[tf_name(name)]) for name in module.output_names}

    runs: dict[str, Run] = {"tensorflow": lambda inputs: by_onnx_name(function(**{tf_name(k): tf.constant(v) for k, v in inputs.items()}))}
    ops: dict[str, int] = {}
    if target == "tflite":
        flatbuffer = convert(function, module)
        ops = op_counts(flatbuffer)
        runner = Interpreter(model_content=flatbuffer).get_signature_runner()
        runs["litert"] = lambda inputs: by_onnx_name(runner(**{tf_name(k): v for k, v in inputs.items()}))
    return Lowered(runs, ops)


def _read_tensor(path: Path) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def _index(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[1])
