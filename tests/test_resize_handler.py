"""Resize (opsets 10-19, inputs of rank 3-5, nearest / linear / cubic, every coordinate mode,
antialias) through onnx-tf + custom_ops, against onnx's node tests and PyTorch's interpolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case
from torch_onnx import export

from benchmarks.node_suite import run_graph_module


@pytest.mark.parametrize("folder", official_node_tests("test_resize_"), ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-5, rtol=1e-5)


class _Interpolate(torch.nn.Module):
    def __init__(self, **options) -> None:
        super().__init__()
        self.options = options

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, **self.options)


# (input shape, options): 1-D, 2-D and 3-D inputs as torch exports them
TORCH_CASES = [
    ((1, 3, 7), {"scale_factor": 2, "mode": "nearest"}),
    ((1, 3, 7), {"scale_factor": 3, "mode": "nearest"}),
    ((1, 3, 7), {"size": 10, "mode": "nearest"}),
    ((1, 3, 7), {"scale_factor": 2, "mode": "linear", "align_corners": False}),
    ((1, 3, 7), {"scale_factor": 0.5, "mode": "linear", "align_corners": False}),
    ((1, 3, 7), {"size": 12, "mode": "linear", "align_corners": True}),
    ((1, 2, 5, 6), {"scale_factor": 2, "mode": "nearest"}),
    ((1, 2, 5, 6), {"scale_factor": (2, 3), "mode": "bilinear", "align_corners": False}),
    ((1, 2, 5, 6), {"size": (7, 4), "mode": "bilinear", "align_corners": True}),
    ((1, 2, 5, 6), {"scale_factor": 2, "mode": "bicubic", "align_corners": False}),
    ((1, 2, 3, 4, 5), {"scale_factor": 2, "mode": "nearest"}),
    ((1, 2, 3, 4, 5), {"scale_factor": 2, "mode": "trilinear", "align_corners": False}),
]


@pytest.mark.parametrize("opset", [13, 17, 18, 19])
@pytest.mark.parametrize(("shape", "options"), TORCH_CASES, ids=str)
def test_torch_interpolate(shape: tuple[int, ...], options: dict, opset: int) -> None:
    module = _Interpolate(**options)
    generator = torch.Generator().manual_seed(len(shape))
    x = torch.randn(*shape, generator=generator)
    dynamic = {"x0": {0: "b"}} if "size" in options else {"x0": {0: "b", len(shape) - 1: "t"}}
    model = export(module, (x,), opset, dynamic)
    assert "Resize" in {n.op_type for n in model.graph.node}
    longer = (2, *shape[1:-1], shape[-1] + (0 if "size" in options else 3))
    for test_shape in (shape, longer):
        x = torch.randn(*test_shape, generator=generator)
        want = module(x).numpy()
        np.testing.assert_allclose(run_graph_module(model, {"x0": x.numpy()})["y"], want, atol=1e-5)
