"""AveragePool / MaxPool through onnx-tf + custom_ops, against onnx's node tests, a numpy
reference and PyTorch (odd lengths, where ``ceil_mode`` leaves a partial last window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case
from reference.pool import Pool as PoolReference
from torch_onnx import export

import custom_ops

custom_ops.register()  # before importing a handler module: onnx-tf needs the compat shims

from custom_ops.handlers.average_pool import AveragePool  # noqa: E402 (after register(), as said above)
from custom_ops.handlers.max_pool import MaxPool  # noqa: E402


@pytest.mark.parametrize(
    "folder", official_node_tests("test_averagepool", "test_maxpool"), ids=lambda p: p.name
)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    # test_averagepool_2d_ceil_last_window_starts_on_pad's data is rounded to 4 decimals
    # (onnxruntime and this handler agree to 1e-7): onnx's own runner's tolerance, rtol 1e-3
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-6, rtol=1e-3)


@pytest.mark.parametrize(
    ("op_type", "handler", "opsets"),
    [
        ("AveragePool", AveragePool, [1, 7, 10, 11, 17, 19, 22, 23]),
        ("MaxPool", MaxPool, [1, 8, 10, 11, 12, 17, 22, 23]),
    ],
)
def test_onnx_tf_dispatches_to_our_handler(op_type: str, handler: type, opsets: list[int]) -> None:
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    for opset in opsets:
        dispatched = get_all_backend_handlers({"": opset})[""][op_type]
        assert dispatched is handler, (op_type, opset)
        assert hasattr(dispatched, f"version_{dispatched.SINCE_VERSION}"), (op_type, opset)


def _pool_model(
    op_type: str, x_shape: list[int | None], opset: int, indices: bool = False, **attrs
) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    unknown = [None] * len(x_shape)
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, unknown)]
    if indices:
        outputs.append(helper.make_tensor_value_info("i", TensorProto.INT64, unknown))
    node = helper.make_node(op_type, ["x"], [o.name for o in outputs], **attrs)
    graph = helper.make_graph([node], op_type.lower(), [x], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def test_partial_last_window_counts_only_its_positions() -> None:
    """The issue's case: [1, 2, 3, 4, 5], kernel 2, stride 2, ceil_mode, count_include_pad."""
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
    attrs = {"kernel_shape": [2], "strides": [2], "ceil_mode": 1, "count_include_pad": 1}
    expected = PoolReference.run(x, "avg", **attrs)
    torch_y = F.avg_pool1d(
        torch.from_numpy(x), 2, 2, ceil_mode=True, count_include_pad=True
    ).numpy()
    np.testing.assert_allclose(expected, torch_y)
    np.testing.assert_allclose(expected.ravel(), [1.5, 3.5, 5.0])
    for opset in (10, 11, 19, 22):
        run_test_case(
            _pool_model("AveragePool", [1, 1, None], opset, **attrs), {"x": x}, {"y": expected}
        )


# (kernel, stride, padding, dilation, ceil_mode, count_include_pad) for torch's pools
# (torch's avg_pool1d has no dilation; count_include_pad is an average's option)
TORCH_1D = [
    (kind, k, s, p, d, ceil, include)
    for k, s, p, d in [
        (2, 2, 0, 1),
        (3, 2, 1, 1),
        (3, 3, 1, 1),
        (4, 3, 2, 1),
        (3, 2, 1, 2),
        (5, 1, 2, 1),
    ]
    for ceil in (False, True)
    for kind, include in [("avg", False), ("avg", True), ("max", False)]
    if kind == "max" or d == 1
]


class _Pool(torch.nn.Module):
    def __init__(
        self, kind: str, dims: int, kernel, stride, padding, dilation, ceil, include
    ) -> None:
        super().__init__()
        self.kind, self.dims = kind, dims
        self.args = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil}
        if kind == "avg":
            self.args["count_include_pad"] = include
        else:
            self.args["dilation"] = dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = {
            ("avg", 1): F.avg_pool1d,
            ("avg", 2): F.avg_pool2d,
            ("max", 1): F.max_pool1d,
            ("max", 2): F.max_pool2d,
        }
        return pool[(self.kind, self.dims)](x, **self.args)


@pytest.mark.parametrize("opset", [17, 19])
@pytest.mark.parametrize("case", TORCH_1D, ids=str)
def test_torch_1d(case: tuple, opset: int) -> None:
    kind, kernel, stride, padding, dilation, ceil, include = case
    module = _Pool(kind, 1, kernel, stride, padding, dilation, ceil, include)
    generator = torch.Generator().manual_seed(kernel * 10 + stride)
    model = export(
        module, (torch.randn(1, 3, 9, generator=generator),), opset, {"x0": {0: "b", 2: "t"}}
    )
    for length in (9, 10, 11, 13, 16):
        x = torch.randn(2, 3, length, generator=generator)
        want = module(x).numpy()
        run_test_case(model, {"x0": x.numpy()}, {"y": want}, atol=1e-6)


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "ceil", "include"),
    [
        ((2, 3), (2, 2), (1, 1), True, True),
        ((3, 3), (2, 3), (1, 0), True, False),
        ((2, 2), (2, 2), (0, 0), True, True),
        ((3, 2), (1, 2), (1, 1), False, True),
    ],
    ids=str,
)
def test_torch_2d(kind: str, kernel, stride, padding, ceil: bool, include: bool) -> None:
    module = _Pool(kind, 2, kernel, stride, padding, 1, ceil, include)
    generator = torch.Generator().manual_seed(sum(kernel))
    model = export(
        module, (torch.randn(1, 2, 7, 9, generator=generator),), 17, {"x0": {2: "h", 3: "w"}}
    )
    for shape in [(1, 2, 7, 9), (1, 2, 8, 11), (1, 2, 5, 5)]:
        x = torch.randn(*shape, generator=generator)
        run_test_case(model, {"x0": x.numpy()}, {"y": module(x).numpy()}, atol=1e-6)


# (attrs) for the numpy reference: dilations, auto_pad and 3-D inputs torch does not export
REFERENCE_CASES = [
    {
        "kernel_shape": [3],
        "strides": [2],
        "dilations": [2],
        "pads": [2, 1],
        "ceil_mode": 1,
        "count_include_pad": 1,
    },
    {
        "kernel_shape": [2, 3],
        "strides": [2, 2],
        "dilations": [2, 1],
        "pads": [1, 0, 0, 2],
        "ceil_mode": 1,
    },
    {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_UPPER", "count_include_pad": 1},
    {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [2, 3], "strides": [3, 1], "auto_pad": "VALID"},
    {
        "kernel_shape": [2, 2, 3],
        "strides": [2, 1, 2],
        "pads": [1, 0, 1, 0, 1, 1],
        "ceil_mode": 1,
        "count_include_pad": 1,
    },
]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("attrs", REFERENCE_CASES, ids=str)
def test_matches_reference(attrs: dict, kind: str) -> None:
    rank = len(attrs["kernel_shape"])
    shape = [2, 3, 7, 8, 5][: 2 + rank]
    x = np.random.default_rng(rank).standard_normal(shape).astype(np.float32)
    op_type, opset = ("AveragePool", 19) if kind == "avg" else ("MaxPool", 12)
    if kind == "max":
        attrs = {k: v for k, v in attrs.items() if k != "count_include_pad"}
    model = _pool_model(op_type, [None, None] + [None] * rank, opset, **attrs)
    run_test_case(model, {"x": x}, {"y": PoolReference.run(x, kind, **attrs)}, atol=1e-6)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_match_onnxruntime(storage_order: int) -> None:
    import onnxruntime

    attrs = {
        "kernel_shape": [3, 2],
        "strides": [2, 2],
        "pads": [1, 0, 1, 1],
        "ceil_mode": 1,
        "storage_order": storage_order,
    }
    model = _pool_model("MaxPool", [2, 3, 7, 6], 12, indices=True, **attrs)
    x = np.random.default_rng(storage_order).standard_normal((2, 3, 7, 6)).astype(np.float32)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    y, indices = session.run(None, {"x": x})
    np.testing.assert_allclose(
        y, PoolReference.run(x, "max", **{k: v for k, v in attrs.items() if k != "storage_order"})
    )
    run_test_case(model, {"x": x}, {"y": y, "i": indices})
