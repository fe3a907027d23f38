"""LiteRT (TFLite) export of an LSTM-free model: builtin ops only, any batch and length after
``resize_tensor_input``, signature names = ONNX names, quantized variants, and the CLI paths
(``convert --tflite``, ``parity --tflite``). PyTorch is the reference."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import tensorflow as tf
import torch
from ai_edge_litert.interpreter import Interpreter
from torch import nn

from custom_ops.handlers.squeeze import squeeze
from custom_ops.lowering import lowering
from pipeline.runtime.errors import PipelineError
from pipeline.stages.onnx_export import export_to_bytes
from pipeline.stages.tf_convert import OnnxGraphModule
from pipeline.stages.tflite import (
    NonBuiltinOpError,
    convert,
    op_counts,
    require_builtin,
    variant_file,
    write_tflite,
)
from tests.conftest import run_cli
from tests.reference.squeeze import Squeeze as SqueezeReference

CHANNELS, EMB, OUT = 12, 6, 5
INPUTS, OUTPUTS = ("x", "emb"), ("frames", "first_frame")


class ConvBatchNorm(nn.Module):
    """x [B, T, C], emb [B, E] -> frames [B, T, OUT], first_frame [B, OUT]: an embedding broadcast
    over time (Unsqueeze + Expand), Conv1d + BatchNorm1d (kept as a BatchNormalization node), a
    Linear and a Gather: the non-LSTM ops of AutoVC's graph."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(CHANNELS + EMB, 16, 5, padding=2)
        self.bn = nn.BatchNorm1d(16)
        self.linear = nn.Linear(16, OUT)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for tensor in (self.bn.weight, self.bn.bias, self.bn.running_mean):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
            self.bn.running_var.copy_(torch.rand(16, generator=generator) + 0.5)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x.transpose(1, 2)
        y = torch.cat((y, emb.unsqueeze(-1).expand(-1, -1, y.shape[-1])), dim=1)
        y = torch.tanh(self.bn(self.conv(y)))
        frames = self.linear(y.transpose(1, 2))
        return frames, frames[:, 0, :]


@pytest.fixture(scope="module")
def small() -> tuple[nn.Module, onnx.ModelProto]:
    module = ConvBatchNorm().eval()
    exported = export_to_bytes(
        module, (torch.zeros(2, 16, CHANNELS), torch.zeros(2, EMB)), opset=17, input_names=INPUTS,
        output_names=OUTPUTS,
        dynamic_axes={"x": {0: "batch", 1: "time"}, "emb": {0: "batch"}, "frames": {0: "batch", 1: "time"},
                      "first_frame": {0: "batch"}},
    )
    model = onnx.load_from_string(exported)
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}
    return module, model


@pytest.fixture(scope="module")
def written(small, tmp_path_factory):
    _, model = small
    directory = tmp_path_factory.mktemp("tflite")
    return write_tflite(OnnxGraphModule(model), directory, (None, "float16", "dynamic"))


def _inputs(batch: int, frames: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch * 1000 + frames)
    return {"x": rng.standard_normal((batch, frames, CHANNELS), np.float32),
            "emb": rng.standard_normal((batch, EMB), np.float32)}


def _torch(module: nn.Module, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        outputs = module(*(torch.from_numpy(inputs[name]) for name in INPUTS))
    return {name: value.numpy() for name, value in zip(OUTPUTS, outputs)}


def test_written_model_holds_builtin_ops_only(written):
    model = written[0]
    assert model.path.name == "model.tflite" and model.variant is None
    assert model.ops == op_counts(model.path.read_bytes())
    assert not [op for op in model.ops if op.startswith("CUSTOM")]
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(model.ops)


def test_signature_names_are_the_onnx_names(written):
    signature = Interpreter(model_path=str(written[0].path)).get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == sorted(INPUTS)
    assert sorted(signature["outputs"]) == sorted(OUTPUTS)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [1, 31, 77, 512])
def test_any_batch_and_length_after_resize_matches_torch(small, written, batch, frames):
    """The user's path: resize_tensor_input, allocate_tensors, set, invoke, get (no reconversion)."""
    module, _ = small
    inputs = _inputs(batch, frames)
    interpreter = Interpreter(model_path=str(written[0].path))
    runner_inputs = interpreter.get_signature_runner().get_input_details()  # by ONNX name
    for name, value in inputs.items():
        interpreter.resize_tensor_input(runner_inputs[name]["index"], value.shape)
    interpreter.allocate_tensors()
    for name, value in inputs.items():
        interpreter.set_tensor(runner_inputs[name]["index"], value)
    interpreter.invoke()
    output_details = interpreter.get_signature_runner().get_output_details()
    expected = _torch(module, inputs)
    for name in OUTPUTS:
        got = interpreter.get_tensor(output_details[name]["index"])
        assert got.shape == expected[name].shape
        assert np.max(np.abs(got - expected[name])) <= 1e-5, name


def test_quantized_variants_are_written_beside_it(written):
    files = {m.variant: m for m in written}
    assert files["float16"].path.name == variant_file("float16") == "model.float16.tflite"
    assert files["dynamic"].path.name == "model.dynamic.tflite"
    assert "DEQUANTIZE" in files["float16"].ops  # float16 weights, dequantized when loaded
    for model in written:
        require_builtin(model.ops, model.path.name)


def test_a_non_builtin_op_fails_clearly():
    """An op with no LiteRT builtin (a string op): the converter's refusal becomes one error line."""

    class Strings(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def upper(self, text):
            return tf.strings.upper(text)

    module = Strings()
    with pytest.raises(PipelineError, match="builtin ops only"):
        convert(module.upper.get_concrete_function(), module)
    with pytest.raises(NonBuiltinOpError, match="CUSTOM:FlexStringUpper"):
        require_builtin({"ADD": 1, "CUSTOM:FlexStringUpper": 1}, "model.tflite")


def test_convert_and_parity_cli_add_litert(small, tmp_path):
    """`convert --tflite` writes model.tflite beside the SavedModel and lists it in the manifest;
    `parity --tflite` compares LiteRT with onnxruntime and TensorFlow in the report."""
    _, model = small
    onnx_path = tmp_path / "small.onnx"
    onnx.save(model, onnx_path)
    out = tmp_path / "converted"
    result = run_cli("convert", str(onnx_path), "--out", str(out), "--tflite", "--tflite-quantize", "float16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[write tflite] done in" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"model.tflite", "model.float16.tflite", "saved_model.pb"} <= set(manifest["files"])
    assert [m["variant"] for m in manifest["tflite"]["models"]] == ["float32", "float16"]

    report = tmp_path / "report"
    result = run_cli("parity", "--onnx", str(onnx_path), "--saved-model", str(out), "--tflite",
                     str(out / "model.tflite"), "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((report / "report.json").read_text())
    assert [p["name"] for p in data["pairs"]] == ["ort-tf", "ort-tf_xla", "ort-litert"]
    assert data["backends"]["litert"]["label"] == "LiteRT"
    assert data["model"]["backend_models"] == {"litert": str(out / "model.tflite")}
    assert all(c["max_abs"] <= 1e-5 for c in data["comparisons"])
    assert "ort-litert" in (report / "summary.txt").read_text()
    assert "LiteRT" in (report / "report.html").read_text()


def test_parity_with_a_missing_tflite_file_is_a_usage_error(small, tmp_path):
    _, model = small
    onnx_path = tmp_path / "small.onnx"
    onnx.save(model, onnx_path)
    result = run_cli("parity", "--onnx", str(onnx_path), "--saved-model", str(tmp_path), "--tflite",
                     str(tmp_path / "absent.tflite"), "--report", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: --tflite {tmp_path / 'absent.tflite'}: no such file"


@pytest.mark.parametrize("shape,axes", [((3, 1, 5, 1), [1]), ((3, 1, 5, 1), [-1, 1]), ((1, 4, 1), [0, 2])])
def test_squeeze_lowered_for_litert_matches_the_reference(shape, axes):
    """Squeeze with known axes under the "tflite" lowering (a reshape), on an input whose non-1
    dims are dynamic: TensorFlow and the converted LiteRT model both give the numpy oracle's result."""
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    spec = tf.TensorSpec([1 if d == 1 else None for d in shape], tf.float32)

    class Module(tf.Module):
        pass

    with lowering("tflite"):
        function = tf.function(lambda x: {"y": squeeze(x, tf.constant(axes, tf.int64))}, autograph=False)
        concrete = function.get_concrete_function(spec)
    expected = SqueezeReference.run(x, axes)
    np.testing.assert_array_equal(concrete(tf.constant(x))["y"].numpy(), expected)
    flatbuffer = convert(concrete, Module())
    require_builtin(op_counts(flatbuffer), "squeeze")
    got = Interpreter(model_content=flatbuffer).get_signature_runner()(x=x)["y"]
    np.testing.assert_array_equal(got, expected)


def test_squeeze_lowered_for_litert_refuses_a_dimension_that_is_not_1():
    with lowering("tflite"):
        function = tf.function(lambda x: squeeze(x, tf.constant([1], tf.int64)), autograph=False)
        concrete = function.get_concrete_function(tf.TensorSpec([None, None, 4], tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError):
        concrete(tf.zeros([2, 3, 4]))
