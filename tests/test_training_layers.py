"""Single layers exported from PyTorch (train and eval graphs), imported through our onnx-tf
handlers as a TrainableGraph, and compared with PyTorch: outputs, gradients by PyTorch
parameter name, and for BatchNorm in training mode the updated running statistics.
Weights are constant (1 and 0) or random, as in the original blog post's layer checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf
import torch
from torch import nn

from pipeline.parity.metrics import Tolerance
from pipeline.training import TrainableGraph, TrainingExport, assign_state, export_onnx
from pipeline.training.results import check_l2, check_tensor
from pipeline.training.tolerances import BN_STATS, gradient_allowed_l2
from pipeline.training.trainable import numpy_state

LAYER = Tolerance(atol=1e-6, rtol=1e-5)
"""One layer in float32: a few ulps of its output."""


class BiLSTM(nn.Module):
    """Bidirectional LSTM with its three results as flat outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 5, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, (h, c) = self.lstm(x)
        return y, h, c


# name: (module factory, input shape, dynamic axes of x, output names)
LAYERS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], dict[int, str], tuple[str, ...]]] = {
    "linear": (lambda: nn.Linear(16, 8), (3, 5, 16), {0: "batch", 1: "time"}, ("y",)),
    "conv1d": (lambda: nn.Conv1d(6, 4, 5, padding=2), (2, 6, 12), {0: "batch", 2: "time"}, ("y",)),
    "bilstm": (BiLSTM, (2, 7, 6), {0: "batch", 1: "time"}, ("y", "h", "c")),
    "batchnorm1d": (lambda: nn.BatchNorm1d(4), (4, 4, 64), {0: "batch", 2: "time"}, ("y",)),
}


def _module(layer: str, weights: str) -> nn.Module:
    torch.manual_seed(0)
    module = LAYERS[layer][0]()
    with torch.no_grad():
        for p in module.parameters():
            if weights == "random":
                p.uniform_(-0.8, 0.8)
            else:
                p.fill_(1.0 if weights == "ones" else 0.0)
        if isinstance(module, nn.BatchNorm1d) and weights == "random":
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return module


def _trainable(module: nn.Module, layer: str) -> TrainableGraph:
    _, shape, axes, outputs = LAYERS[layer]
    example = (torch.zeros(shape),)
    graphs = [
        export_onnx(module, example, ("x",), outputs, {"x": axes}, training=training) for training in (True, False)
    ]
    state, parameters = numpy_state(module)
    return TrainableGraph(TrainingExport(*graphs, state, parameters))


def _input(layer: str) -> np.ndarray:
    return np.random.default_rng(1).normal(0.3, 1.0, LAYERS[layer][1]).astype(np.float32)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_matches_torch(layer: str) -> None:
    """One export and one TF graph per layer; each set of weights is the PyTorch module's state
    assigned to the TF variables by name (the graph reads variables, not constants)."""
    graph = _trainable(_module(layer, "random"), layer)
    for weights in ("ones", "zeros", "random"):
        module = _module(layer, weights)
        assign_state(graph, module.state_dict())
        _compare(graph, module, layer, weights)


def _compare(graph: TrainableGraph, module: nn.Module, layer: str, weights: str) -> None:
    assert list(graph.parameters) == [name for name, _ in module.named_parameters()]
    assert all(var.name == f"{name}:0" for name, var in {**graph.parameters, **graph.buffers}.items())
    x = _input(layer)
    names = LAYERS[layer][3]

    # Inference (eval mode).
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(x))
    expected = expected if isinstance(expected, tuple) else (expected,)
    outputs = graph.inference(tf.constant(x))
    for name, reference in zip(names, expected):
        check = check_tensor(name, reference.numpy(), outputs[name].numpy(), LAYER.allowed(reference.numpy()))
        assert check.passed, (weights, "inference", check)

    # Training mode: outputs, gradients of a weighted sum of the outputs, updated buffers.
    module.train()
    weights_of_outputs = [np.random.default_rng(i + 2).normal(size=r.shape).astype(np.float32)
                          for i, r in enumerate(expected)]
    torch_outputs = module(torch.from_numpy(x))
    torch_outputs = torch_outputs if isinstance(torch_outputs, tuple) else (torch_outputs,)
    sum((o * torch.from_numpy(w)).sum() for o, w in zip(torch_outputs, weights_of_outputs)).backward()
    with tf.GradientTape() as tape:
        outputs = graph.train_forward(tf.constant(x))
        objective = tf.add_n([tf.reduce_sum(outputs[n] * w) for n, w in zip(names, weights_of_outputs)])
    gradients = tape.gradient(objective, graph.trainable_variables)
    for name, reference in zip(names, torch_outputs):
        ref = reference.detach().numpy()
        check = check_tensor(name, ref, outputs[name].numpy(), LAYER.allowed(ref))
        assert check.passed, (weights, "train", check)
    torch_grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    scale = max(float(np.abs(g).max()) for g in torch_grads.values())
    for name, gradient in zip(graph.parameters, gradients):
        check = check_l2(name, torch_grads[name], gradient.numpy(), gradient_allowed_l2(torch_grads[name], scale))
        assert check.passed, (weights, "gradient", check)
    for name, buffer in module.named_buffers():
        reference = buffer.numpy()
        bound = 0 if reference.dtype == np.int64 else BN_STATS.allowed(reference)
        check = check_tensor(name, reference, graph.buffers[name].numpy(), bound)
        assert check.passed, (weights, "buffer", check)


def test_batchnorm_wrong_training_semantics_would_be_detected() -> None:
    """The comparisons above catch the two classic mistakes: normalising with the running
    statistics in training mode, and updating running_var with the biased batch variance
    (what ONNX's spec and onnxruntime do; PyTorch uses the unbiased one)."""
    module = _module("batchnorm1d", "random")
    x = _input("batchnorm1d")
    before = {name: b.clone() for name, b in module.named_buffers()}
    module.train()
    with torch.no_grad():
        y_train = module(torch.from_numpy(x)).numpy()
    y_with_running_stats = nn.functional.batch_norm(
        torch.from_numpy(x), before["running_mean"], before["running_var"], module.weight, module.bias,
        training=False, eps=module.eps,
    ).detach().numpy()
    assert not check_tensor("y", y_train, y_with_running_stats, LAYER.allowed(y_train)).passed

    batch_var = x.transpose(1, 0, 2).reshape(4, -1).var(axis=1)  # biased: divides by n
    p = module.momentum
    biased = (1 - p) * before["running_var"].numpy() + p * batch_var
    reference = module.running_var.numpy()
    assert not check_tensor("running_var", reference, biased, BN_STATS.allowed(reference)).passed
    graph = _trainable(_module("batchnorm1d", "random"), "batchnorm1d")
    graph.train_forward(tf.constant(x))
    assert check_tensor("running_var", reference, graph.buffers["running_var"].numpy(),
                        BN_STATS.allowed(reference)).passed
