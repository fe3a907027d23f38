"""NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss, Gelu-20 and Bitwise*-18 through onnx-tf +
custom_ops, against onnx's node tests and PyTorch's exports of its losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx_tf_harness import load_node_test, official_node_tests, run_test_case
from torch_onnx import export

from benchmarks.node_suite import run_graph_module

NODE_TESTS = [
    f
    for f in official_node_tests("test_nllloss", "test_sce", "test_gelu", "test_bitwise")
    if not f.name.startswith("test_gelu") or not f.name.endswith("_expanded")
]


@pytest.mark.parametrize("folder", NODE_TESTS, ids=lambda p: p.name)
def test_official_node_test(folder: Path) -> None:
    model, cases = load_node_test(folder)
    for inputs, expected in cases:
        run_test_case(model, inputs, expected, atol=1e-5, rtol=1e-5)


class _Losses(torch.nn.Module):
    def __init__(self, reduction: str) -> None:
        super().__init__()
        self.reduction = reduction
        self.register_buffer("weight", torch.tensor([0.5, 1.0, 2.0, 1.5]))

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r = self.reduction
        ce = F.cross_entropy(scores, labels, weight=self.weight, ignore_index=2, reduction=r)
        nll = F.nll_loss(F.log_softmax(scores, 1), labels, reduction=r)
        return ce + nll


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_losses(reduction: str, opset: int) -> None:
    module = _Losses(reduction)
    generator = torch.Generator().manual_seed(opset)
    scores = torch.randn(3, 4, 5, generator=generator)
    labels = torch.randint(0, 4, (3, 5), generator=generator)
    model = export(
        module, (scores, labels), opset, {"x0": {0: "b", 2: "t"}, "x1": {0: "b", 1: "t"}}
    )
    assert {"SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"} & {
        n.op_type for n in model.graph.node
    }
    for shape in [(3, 4, 5), (2, 4, 9)]:
        scores = torch.randn(*shape, generator=generator)
        labels = torch.randint(0, 4, (shape[0], shape[2]), generator=generator)
        got = run_graph_module(model, {"x0": scores.numpy(), "x1": labels.numpy()})["y"]
        np.testing.assert_allclose(got, module(scores, labels).numpy(), atol=1e-5, rtol=1e-5)
