"""LeakyRelu and PRelu (opset 16 and earlier) and Mish (18, 22) through onnx-tf + custom_ops,
against onnx's node tests, a numpy reference, onnxruntime and PyTorch (its exports at opset 17
through the `convert` graph module; ``F.mish``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case, run_xla_module
from reference.activation import LeakyRelu, Mish, PRelu
from torch_onnx import export

from benchmarks.node_suite import run_graph_module


@pytest.mark.parametrize(
    "folder", official_node_tests("test_leakyrelu", "test_prelu", "test_mish"), ids=lambda p: p.name
)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        # (Mish's data: outputs up to 10, where float32's last bit is 1e-6)
        run_test_case(model, inputs, expected, rtol=1e-6)


@pytest.mark.parametrize("opset", [6, 16])
@pytest.mark.parametrize("alpha", [0.2, 1.5, None])
def test_leaky_relu_matches_reference(alpha: float | None, opset: int) -> None:
    x = np.random.default_rng(3).standard_normal((2, 3, 5)).astype(np.float32)
    attrs = {} if alpha is None else {"alpha": alpha}
    node = helper.make_node("LeakyRelu", ["x"], ["y"], **attrs)
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 5])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 5])
    graph = helper.make_graph([node], "leaky", [value], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    want = LeakyRelu.run(x) if alpha is None else LeakyRelu.run(x, alpha)
    run_test_case(model, {"x": x}, {"y": want})


@pytest.mark.parametrize("slope_shape", [(1,), (3, 1), (5,), (2, 3, 5)])
def test_prelu_16_matches_reference(slope_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(slope_shape))
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    slope = rng.uniform(0.1, 0.5, slope_shape).astype(np.float32)
    node = helper.make_node("PRelu", ["x", "slope"], ["y"])
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, None])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3, None])
    graph = helper.make_graph(
        [node], "prelu", [value], [out], initializer=[numpy_helper.from_array(slope, "slope")]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    np.testing.assert_allclose(
        run_graph_module(model, {"x": x})["y"], PRelu.run(x, slope), atol=1e-7
    )


@pytest.mark.parametrize("opset", [15, 17])
def test_torch_export(opset: int) -> None:
    module = torch.nn.Sequential(
        torch.nn.Conv1d(4, 6, 3, padding=1),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Conv1d(6, 6, 1),
        torch.nn.PReLU(6),
    )
    generator = torch.Generator().manual_seed(opset)
    with torch.no_grad():
        module[3].weight.uniform_(0.1, 0.4, generator=generator)
    model = export(
        module, (torch.randn(1, 4, 7, generator=generator),), opset, {"x0": {0: "b", 2: "t"}}
    )
    assert {"LeakyRelu", "PRelu"} <= {n.op_type for n in model.graph.node}
    for shape in [(1, 4, 7), (2, 4, 12)]:
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            want = module(x).numpy()
        np.testing.assert_allclose(run_graph_module(model, {"x0": x.numpy()})["y"], want, atol=1e-5)


def _mish_model(opset: int, elem_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Mish", ["x"], ["y"])],
        "mish",
        [helper.make_tensor_value_info("x", elem_type, [None, None])],
        [helper.make_tensor_value_info("y", elem_type, [None, None])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# large magnitudes too, where a naive log(1 + exp(x)) overflows
MISH_INPUT = np.concatenate([np.linspace(-30, 30, 61), [-100.0, 88.0, 100.0, 1e-3, -1e-3]])


@pytest.mark.parametrize("opset", [18, 22])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mish_matches_reference_torch_and_onnxruntime(opset: int, dtype: type) -> None:
    import onnxruntime

    x = MISH_INPUT.astype(dtype).reshape(2, -1)
    model = _mish_model(opset, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    want = Mish.run(x)
    np.testing.assert_allclose(torch.nn.functional.mish(torch.from_numpy(x)).numpy(), want, rtol=1e-6, atol=1e-7)
    # onnxruntime's Mish-22 expands to a Softplus-22 it lacks for float64: its Mish-18 (the same op)
    session = onnxruntime.InferenceSession(
        _mish_model(18, model.graph.input[0].type.tensor_type.elem_type).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=1e-6, atol=1e-7)
    run_test_case(model, {"x": x}, {"y": want}, rtol=1e-6, atol=1e-7)


def test_mish_compiles_under_xla() -> None:
    x = MISH_INPUT.astype(np.float32).reshape(2, -1)
    np.testing.assert_allclose(run_xla_module(_mish_model(22), {"x": x})["y"], Mish.run(x), rtol=1e-6, atol=1e-7)
