"""BatchNormalization through onnx-tf + custom_ops against onnx's node tests, the numpy
reference, PyTorch (outputs, running buffers, gradients) and onnxruntime."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
import torch
from onnx import TensorProto, helper
from onnx_tf_harness import load_node_test, official_node_tests, run_onnx_tf, run_test_case
from reference.batch_normalization import BatchNormalization as Reference

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.batch_normalization import (  # noqa: E402
    BatchNormalization,
    running_var_estimator,
)

_NP_TO_ONNX = {
    np.float16: TensorProto.FLOAT16,
    np.float32: TensorProto.FLOAT,
    np.float64: TensorProto.DOUBLE,
}


def _bn_model(
    opset: int,
    x_shape: tuple[int | None, ...],
    attrs: dict,
    outputs: tuple[str, ...] = ("y",),
    x_dtype: type = np.float32,
    stats_dtype: type = np.float32,
) -> onnx.ModelProto:
    """One BatchNormalization node; every input, the statistics included, is a graph input."""
    x_type, stats_type = _NP_TO_ONNX[x_dtype], _NP_TO_ONNX[stats_dtype]
    channels = x_shape[1]
    inputs = [helper.make_tensor_value_info("x", x_type, x_shape)]
    inputs += [helper.make_tensor_value_info(n, x_type, [channels]) for n in ("scale", "bias")]
    inputs += [helper.make_tensor_value_info(n, stats_type, [channels]) for n in ("mean", "var")]
    bn_inputs = ["x", "scale", "bias", "mean", "var"]
    node = helper.make_node("BatchNormalization", bn_inputs, list(outputs), **attrs)
    graph = helper.make_graph(
        [node],
        "bn",
        inputs,
        [helper.make_tensor_value_info(outputs[0], x_type, x_shape)]
        + [helper.make_tensor_value_info(n, stats_type, [channels]) for n in outputs[1:]],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _bn_inputs(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    x_dtype: type = np.float32,
    stats_dtype: type = np.float32,
) -> dict[str, np.ndarray]:
    channels = shape[1]
    return {
        "x": (rng.standard_normal(shape) * 2 + 0.5).astype(x_dtype),
        "scale": rng.uniform(0.5, 1.5, channels).astype(x_dtype),
        "bias": rng.standard_normal(channels).astype(x_dtype),
        "mean": rng.standard_normal(channels).astype(stats_dtype),
        "var": rng.uniform(0.5, 2.0, channels).astype(stats_dtype),
    }


# --- official node tests -------------------------------------------------------------------


@pytest.mark.parametrize("folder", official_node_tests("test_batchnorm"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected)


def test_official_node_tests_cover_training_mode() -> None:
    names = {p.name for p in official_node_tests("test_batchnorm")}
    assert {"test_batchnorm_example_training_mode", "test_batchnorm_epsilon_training_mode"} <= names


# --- dispatch ----------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [9, 13, 14, 15, 17])
def test_onnx_tf_dispatches_to_our_handler(opset: int) -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    handler = get_all_backend_handlers({"": opset})[""]["BatchNormalization"]
    assert handler is BatchNormalization
    assert hasattr(handler, f"version_{handler.SINCE_VERSION}")


# --- numpy reference -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opset", "attrs"),
    [(6, {"is_test": 1}), (7, {}), (9, {}), (14, {}), (15, {"training_mode": 0})],
    ids=["v6", "v7", "v9", "v14", "v15"],
)
def test_inference_at_every_version(opset: int, attrs: dict) -> None:
    rng = np.random.default_rng(opset)
    inputs = _bn_inputs(rng, (2, 3, 4))
    model = _bn_model(opset, (2, 3, 4), {"epsilon": 1e-3, **attrs})
    expected = Reference.inference(**inputs, epsilon=np.float32(1e-3))
    run_test_case(model, inputs, {"y": expected}, atol=1e-5, rtol=1e-5)


def _random_cases(count: int) -> list[tuple[tuple[int, ...], bool, float, float, bool]]:
    """Seeded ``(shape, training, momentum, epsilon, unbiased)``: ranks 2-5, dims 1-4."""
    rng = np.random.default_rng(2024)
    cases = []
    for i in range(count):
        rank = 2 + i % 4
        shape = tuple(int(d) for d in rng.integers(1, 5, size=rank))
        cases.append(
            (
                shape,
                bool(i % 3),
                float(rng.choice([0.0, 0.1, 0.9, 0.99, 1.0])),
                float(rng.choice([1e-5, 1e-3, 0.5])),
                bool(rng.integers(2)),
            )
        )
    return cases


@pytest.mark.parametrize(("shape", "training", "momentum", "epsilon", "unbiased"), _random_cases(24))
def test_matches_reference(
    shape: tuple[int, ...], training: bool, momentum: float, epsilon: float, unbiased: bool
) -> None:
    """Opset 15, inference and training mode, both running_var estimators."""
    n = int(np.prod(shape)) // shape[1]
    unbiased = unbiased and training and n > 1
    inputs = _bn_inputs(np.random.default_rng(n), shape)
    attrs = {"epsilon": epsilon, "momentum": momentum, "training_mode": int(training)}
    eps, mom = float(np.float32(epsilon)), float(np.float32(momentum))
    if training:
        outputs = ("y", "running_mean", "running_var")
        expected = Reference.training(**inputs, momentum=mom, epsilon=eps, unbiased_running_var=unbiased)
    else:
        outputs = ("y",)
        expected = (Reference.inference(**inputs, epsilon=eps),)
    model = _bn_model(15, shape, attrs, outputs)
    with running_var_estimator("unbiased" if unbiased else "biased"):
        run_test_case(model, inputs, dict(zip(outputs, expected)), atol=2e-5, rtol=2e-5)


def test_mixed_dtypes_opset_15() -> None:
    """v15: X/scale/bias float16 (T, T1), mean/var float64 (T2); running stats stay float64."""
    inputs = _bn_inputs(np.random.default_rng(7), (3, 2, 5), x_dtype=np.float16, stats_dtype=np.float64)
    model = _bn_model(
        15, (3, 2, 5), {"training_mode": 1}, ("y", "running_mean", "running_var"), np.float16, np.float64
    )
    y, running_mean, running_var = Reference.training(**inputs)
    actual = run_onnx_tf(model, inputs)
    assert actual["y"].dtype == np.float16 and actual["running_var"].dtype == np.float64
    np.testing.assert_allclose(actual["y"], y, atol=1e-2, rtol=1e-2)
    np.testing.assert_allclose(actual["running_mean"], running_mean, atol=1e-3)
    np.testing.assert_allclose(actual["running_var"], running_var, atol=1e-3)


def test_dynamic_batch_and_time() -> None:
    """Declared ``[None, 3, None]``; one converted graph serves two shapes."""
    model = _bn_model(15, (None, 3, None), {"training_mode": 1}, ("y", "running_mean", "running_var"))
    from onnx_tf.backend import prepare

    rep = prepare(model)
    for shape in [(2, 3, 5), (4, 3, 9)]:
        inputs = _bn_inputs(np.random.default_rng(shape[0]), shape)
        actual = rep.run(inputs)
        for name, want in zip(("y", "running_mean", "running_var"), Reference.training(**inputs)):
            np.testing.assert_allclose(np.asarray(actual[name]), want, atol=2e-5, rtol=2e-5, err_msg=name)


# --- PyTorch --------------------------------------------------------------------------------


def _export(
    module: torch.nn.Module, x: torch.Tensor, opset: int, training: torch.onnx.TrainingMode
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (x,),
            buffer,
            dynamo=False,
            opset_version=opset,
            training=training,
            input_names=["x"],
            output_names=["y"],
            do_constant_folding=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    assert [n.op_type for n in model.graph.node if n.op_type != "Identity"] == ["BatchNormalization"]
    return model


def _with_stat_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """torch.onnx leaves the running-stat outputs unconnected; make them graph outputs."""
    node = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    channels = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    for name in node.output[1:]:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [channels]))
    return model


def _random_stats(module: torch.nn.modules.batchnorm._BatchNorm, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    channels = module.num_features
    with torch.no_grad():
        module.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
        module.bias.copy_(torch.randn(channels, generator=generator))
        module.running_mean.copy_(torch.randn(channels, generator=generator))
        module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)


@pytest.mark.parametrize(
    ("module_type", "shape", "opset"),
    [
        (torch.nn.BatchNorm1d, (4, 3), 17),
        (torch.nn.BatchNorm1d, (2, 3, 7), 17),
        (torch.nn.BatchNorm1d, (2, 3, 7), 13),
        (torch.nn.BatchNorm2d, (2, 3, 4, 5), 15),
        (torch.nn.BatchNorm3d, (2, 3, 2, 3, 4), 14),
    ],
    ids=["1d-rank2", "1d-rank3", "1d-rank3-opset13", "2d-rank4", "3d-rank5"],
)
def test_torch_eval(module_type: type, shape: tuple[int, ...], opset: int) -> None:
    module = module_type(3, eps=1e-3).eval()
    _random_stats(module, seed=len(shape))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(opset))
    model = _export(module, x, opset, torch.onnx.TrainingMode.PRESERVE)
    with torch.no_grad():
        expected = module(x).numpy()
    run_test_case(model, {"x": x.numpy()}, {"y": expected}, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "opset", "momentum"),
    [((6, 3), 17, 0.1), ((2, 3, 7), 17, 0.3), ((2, 3, 7), 13, 0.1)],
    ids=["rank2-opset17", "rank3-opset17-momentum0.3", "rank3-opset13"],
)
def test_torch_train_matches_torch_buffers(shape: tuple[int, ...], opset: int, momentum: float) -> None:
    """Y and, with the unbiased estimator, the running stats equal torch's after one step."""
    module = torch.nn.BatchNorm1d(3, momentum=momentum).train()
    _random_stats(module, seed=opset)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    model = _with_stat_outputs(_export(module, x, opset, torch.onnx.TrainingMode.TRAINING))
    node = model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["momentum"] == pytest.approx(1 - momentum)
    with torch.no_grad():
        y = module(x).numpy()  # updates module.running_mean / running_var
    expected = {
        "y": y,
        node.output[1]: module.running_mean.numpy(),
        node.output[2]: module.running_var.numpy(),
    }
    with running_var_estimator("unbiased"):
        run_test_case(model, {"x": x.numpy()}, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("opset", [13, 17])
def test_torch_train_graph_matches_onnxruntime(opset: int) -> None:
    """With the default (ONNX) estimator every output, v9's saved_mean and saved_var (inverse
    std) included, equals onnxruntime's on the graph torch exports."""
    module = torch.nn.BatchNorm1d(3).train()
    _random_stats(module, seed=3)
    x = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(2))
    model = _with_stat_outputs(_export(module, x, opset, torch.onnx.TrainingMode.TRAINING))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    assert len(names) == (5 if opset == 13 else 3)
    expected = dict(zip(names, session.run(names, {"x": x.numpy()})))
    run_test_case(model, {"x": x.numpy()}, expected, atol=1e-5, rtol=1e-5)


# --- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 6), (2, 3, 3, 4)], ids=["rank2", "rank3", "rank4"])
def test_training_gradients_match_torch_autograd(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    inputs = _bn_inputs(rng, shape)
    upstream = rng.standard_normal(shape).astype(np.float32)
    model = _bn_model(15, shape, {"training_mode": 1, "epsilon": 1e-3})

    from onnx_tf.backend import prepare

    rep = prepare(model)
    tf_inputs = {k: tf.constant(v) for k, v in inputs.items()}
    with tf.GradientTape() as tape:
        tape.watch(list(tf_inputs.values()))
        loss = tf.reduce_sum(rep.tf_module(**tf_inputs)["y"] * upstream)
    tf_grads = tape.gradient(loss, [tf_inputs["x"], tf_inputs["scale"], tf_inputs["bias"]])

    x, scale, bias = (torch.tensor(inputs[k], requires_grad=True) for k in ("x", "scale", "bias"))
    y = torch.nn.functional.batch_norm(
        x, torch.tensor(inputs["mean"]), torch.tensor(inputs["var"]), scale, bias, training=True, eps=1e-3
    )
    (y * torch.tensor(upstream)).sum().backward()
    for name, got, want in zip(("x", "scale", "bias"), tf_grads, (x.grad, scale.grad, bias.grad)):
        assert got is not None, f"no gradient for {name}"
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4, rtol=1e-4, err_msg=name)


def test_running_var_estimator_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="biased"):
        with running_var_estimator("sample"):  # type: ignore[arg-type]
            pass
