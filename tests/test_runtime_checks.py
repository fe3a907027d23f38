"""Bad models are bad input (exit 2), handler bugs are not retried away, and --device cuda is
checked against where each backend really ran."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_cli
from onnx import TensorProto, helper

from custom_ops.support import UnsupportedOptionError, check_supported
from pipeline.runtime.devices import (
    CPU_EP,
    placement_problem,
    tiny_onnx_model,
    verify_placement,
)
from pipeline.runtime.errors import PipelineError


def _lstm_model(**attrs) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [5, 1, 1, 2])
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 8, 3], np.zeros(24, np.float32))
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 8, 2], np.zeros(16, np.float32))
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="enc_lstm", hidden_size=2, **attrs)
    graph = helper.make_graph([node], "g", [x], [y], initializer=[w, r])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize(
    ("attrs", "option", "value"),
    [
        ({"activations": ["Sigmoid", "Gelu", "Tanh"]}, "activation", "Gelu"),
        ({"direction": "sideways"}, "direction", "sideways"),
        ({"layout": 2}, "layout", 2),
        ({"activations": ["Sigmoid", "Tanh"]}, "activations", ["Sigmoid", "Tanh"]),
    ],
)
def test_unsupported_lstm_option_is_named_up_front(attrs: dict, option: str, value: object) -> None:
    with pytest.raises(UnsupportedOptionError) as raised:
        check_supported(_lstm_model(**attrs))
    error = raised.value
    assert (error.op_type, error.node_name, error.option, error.value) == ("LSTM", "enc_lstm", option, value)
    assert "supported:" in str(error) and "\n" not in str(error)


def test_unsupported_batchnorm_option_is_named_up_front() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])
    params = [helper.make_tensor(n, TensorProto.FLOAT, [3, 4], np.ones(12, np.float32)) for n in "sbmv"]
    node = helper.make_node("BatchNormalization", ["x", *"sbmv"], ["y"], name="bn", spatial=0)
    graph = helper.make_graph([node], "g", [x], [y], initializer=params)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)], ir_version=8)
    with pytest.raises(UnsupportedOptionError, match="node 'bn': spatial 0 is not supported"):
        check_supported(model)


def test_convert_of_an_unsupported_option_is_one_line_and_exit_2(tmp_path) -> None:
    onnx.save(_lstm_model(activations=["Sigmoid", "Gelu", "Tanh"]), tmp_path / "m.onnx")
    result = run_cli("convert", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "sm"))
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot convert") and "enc_lstm" in last and "LSTM" in last
    assert "'Gelu'" in last and "supported: " in last and "internal error" not in result.stderr
    assert not (tmp_path / "sm").exists()


def test_an_option_onnx_tf_refuses_while_translating_is_one_line_and_exit_2(tmp_path) -> None:
    """onnx-tf's Cast handler refuses a string input cast to float16 while translating."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], name="to_half", to=TensorProto.FLOAT16)], "cast",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (tmp_path / "cast.onnx").write_bytes(model.SerializeToString())
    result = run_cli("convert", str(tmp_path / "cast.onnx"), "--out", str(tmp_path / "sm"))
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot convert") and "ONNX op Cast at node 'to_half'" in last, last
    assert "Cast string to type" in last and "internal error" not in result.stderr
    assert not (tmp_path / "sm").exists()


def test_a_handler_type_error_is_not_retried_through_autograph(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler bug (TypeError) of an op outside AUTOGRAPH_OPS propagates; only the named ops
    get the AutoGraph retry."""
    import custom_ops

    custom_ops.register()  # before importing an onnx-tf handler module: the compat shims
    from onnx_tf.handlers.backend.tanh import Tanh

    import pipeline.stages.tf_convert as tf_convert

    calls: list[str] = []

    def broken(cls, node, **kwargs):
        calls.append(node.op_type)
        raise TypeError("a bug in the Tanh handler")

    monkeypatch.setattr(Tanh, "version_13", classmethod(broken))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(TypeError, match="a bug in the Tanh handler"):
        tf_convert.OnnxGraphModule(model).node_outputs_function()
    assert calls == ["Tanh"]  # once: no second, AutoGraph-converted attempt
    assert "Tanh" not in tf_convert.AUTOGRAPH_OPS and "ReduceSum" in tf_convert.AUTOGRAPH_OPS


# --- --device cuda holds at run time --------------------------------------------------------


def test_an_onnxruntime_session_on_the_cpu_fails_the_cuda_check() -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(tiny_onnx_model(), providers=[CPU_EP])
    problem = placement_problem("onnxruntime", {"providers_used": session.get_providers()})
    assert problem == "onnxruntime session runs on CPUExecutionProvider, not CUDAExecutionProvider"
    assert placement_problem("onnxruntime", {"providers_used": ["CUDAExecutionProvider", CPU_EP]}) is None


def test_tensorflow_and_torch_on_the_cpu_fail_the_cuda_check() -> None:
    import tensorflow as tf
    import torch

    with tf.device("/CPU:0"):
        device = (tf.ones([2]) * 2).device
    assert "tensorflow ran on" in placement_problem("tensorflow", {"device_used": device})
    assert placement_problem("tensorflow", {"device_used": device.replace("CPU", "GPU")}) is None
    assert placement_problem("tf", {"device_used": None}) == "tf recorded no device after its first call"
    module = torch.nn.Linear(2, 2)
    assert placement_problem("torch", {"device": str(next(module.parameters()).device)}) == (
        "torch module is on cpu, not a CUDA device"
    )


def test_a_parity_run_asked_for_cuda_stops_after_the_first_call_on_the_cpu(tmp_path) -> None:
    """Real backends (onnxruntime session, SavedModel) placed on the CPU under a cuda request."""
    from pipeline.parity import run_parity
    from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "m.onnx")
    write_saved_model(OnnxGraphModule(model), tmp_path / "sm")
    with pytest.raises(PipelineError) as raised:
        run_parity(tmp_path / "m.onnx", tmp_path / "sm", {"x": np.ones((2, 3), np.float32)},
                   ort_providers=[CPU_EP], tf_device="/CPU:0", devices={"requested": "cuda"}, per_layer=False)
    message = str(raised.value)
    assert message.startswith("--device cuda: ") and "\n" not in message
    assert "onnxruntime" in message or "ort" in message
    assert "CPU" in message
    verify_placement([])  # nothing to check: no error


def test_the_per_layer_sessions_are_checked_too() -> None:
    """The per-layer pass builds its own onnxruntime session and TF trace: a CPU placement under
    a cuda request fails there as well."""
    from pipeline.parity.layers import ort_node_outputs, tf_node_outputs

    model = onnx.load_from_string(tiny_onnx_model())
    inputs = {"x": np.ones((1, 4), np.float32)}
    assert set(ort_node_outputs(model, inputs, [CPU_EP])) == {"y"}
    with pytest.raises(PipelineError, match=r"^--device cuda: onnxruntime \(per-layer\) session runs on CPUExecutionProvider"):
        ort_node_outputs(model, inputs, [CPU_EP], require_gpu=True)
    with pytest.raises(PipelineError, match=r"^--device cuda: tensorflow \(per-layer\) ran on .*CPU:0, not a GPU"):
        tf_node_outputs(model, inputs, "/CPU:0", require_gpu=True)


def test_the_command_line_maps_a_refused_option_from_any_command_to_exit_2(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Wherever a handler refuses an option (parity re-translates the ONNX model too), the
    command line prints one error line and exits 2, not 'internal error'."""
    import pipeline.commands.convert
    from pipeline.cli import main

    def refuse(*args, **kwargs):
        raise UnsupportedOptionError.of("LSTM", "enc_lstm", "layout", 2, "0, 1")

    monkeypatch.setattr(pipeline.commands.convert, "run_convert", refuse)
    assert main(["convert", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        "error: ONNX op LSTM at node 'enc_lstm': layout 2 is not supported (supported: 0, 1)\n")
