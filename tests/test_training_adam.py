"""TorchAdam against torch.optim.Adam; Keras' epsilon placement is caught by the same checks."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
import torch

from pipeline.training import AdamConfig, TorchAdam, torch_adam_state
from pipeline.training.results import check_tensor
from pipeline.training.tolerances import OPTIMIZER, adam_update

SHAPES = [(64, 80, 5), (256,), (8, 8)]
GRADIENT_SCALES = [1e-2, 1e-6, 1e-9]  # ordinary, comparable with eps' = 3e-7, below eps


def _gradients(steps: int, seed: int = 0) -> list[list[np.ndarray]]:
    """Per step, one gradient per parameter; every scale of Adam's regimes, some exact zeros."""
    rng = np.random.default_rng(seed)
    sequence = []
    for _ in range(steps):
        grads = []
        for shape, scale in zip(SHAPES, GRADIENT_SCALES):
            g = (rng.normal(size=shape) * scale).astype(np.float32)
            g.flat[::7] = 0.0
            grads.append(g)
        sequence.append(grads)
    return sequence


def _torch_run(initial: list[np.ndarray], sequence: list[list[np.ndarray]], config: AdamConfig):
    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in initial]
    optimizer = torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps)
    states = []
    for grads in sequence:
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        optimizer.step()
        states.append([p.detach().numpy().copy() for p in params])
    return params, optimizer, states


def _initial(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.3, shape).astype(np.float32) for shape in SHAPES]


def test_torch_adam_follows_torch_for_ten_steps() -> None:
    config = AdamConfig(lr=1e-3)
    initial, sequence = _initial(), _gradients(10)
    _, _, expected = _torch_run(initial, sequence, config)
    variables = [tf.Variable(w) for w in initial]
    adam = TorchAdam(variables, config)
    for step, grads in enumerate(sequence):
        adam.apply([tf.constant(g) for g in grads])
        for i, var in enumerate(variables):
            check = check_tensor(f"step {step + 1} param {i}", expected[step][i], var.numpy(),
                                 OPTIMIZER.allowed(expected[step][i]))
            assert check.passed, check


def test_keras_epsilon_placement_is_detected_and_equals_a_rescaled_eps() -> None:
    """Keras' Adam is torch's with eps / sqrt(1 - beta2^t): after one step it fails the optimizer
    check (by up to lr where |g| is comparable with 3.2e-7), and matches torch run with that eps
    to 1e-4 of a step (Keras rounds the beta powers to float32, 1 - 0.999 to 1.3e-5 relative)."""
    config = AdamConfig(lr=1e-3)
    initial, sequence = _initial(), _gradients(1)
    _, _, expected = _torch_run(initial, sequence, config)
    variables = [tf.Variable(w) for w in initial]
    keras.optimizers.Adam(learning_rate=config.lr, beta_1=config.betas[0], beta_2=config.betas[1],
                          epsilon=config.eps).apply_gradients(zip([tf.constant(g) for g in sequence[0]], variables))
    checks = [check_tensor(str(i), expected[0][i], v.numpy(), OPTIMIZER.allowed(expected[0][i]))
              for i, v in enumerate(variables)]
    assert not any(check.passed for check in checks)
    assert checks[1].max_abs_error > 0.1 * config.lr  # |g| ~ 1e-6 against eps' = 3.2e-7
    rescaled = AdamConfig(lr=config.lr, eps=config.eps / math.sqrt(1 - config.betas[1]))
    _, _, as_keras = _torch_run(initial, sequence, rescaled)
    for i, v in enumerate(variables):
        bound = 1e-4 * config.lr + OPTIMIZER.allowed(as_keras[0][i])
        assert check_tensor(str(i), as_keras[0][i], v.numpy(), bound).passed


def test_continues_from_torch_state() -> None:
    config = AdamConfig()
    initial, sequence = _initial(), _gradients(5, seed=2)
    params, optimizer, _ = _torch_run(initial, sequence[:3], config)
    variables = [tf.Variable(p.detach().numpy()) for p in params]
    adam = TorchAdam(variables, config)
    adam.load_state(*torch_adam_state(optimizer, params))
    assert int(adam.step.numpy()) == 3
    for grads in sequence[3:]:
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        optimizer.step()
        adam.apply([tf.constant(g) for g in grads])
    for p, v in zip(params, variables):
        expected = p.detach().numpy()
        assert check_tensor("w", expected, v.numpy(), OPTIMIZER.allowed(expected)).passed


def test_optimizer_check_on_own_gradient_passes_ours_and_catches_keras_style_epsilon() -> None:
    """train-parity's optimizer check (new weight = torch.optim.Adam's update of the same state with
    the same gradient) from a mid-training state: TorchAdam passes it, a Keras-style update fails."""
    config = AdamConfig()
    beta1, beta2 = config.betas
    initial, sequence = _initial(), _gradients(4, seed=3)
    params, optimizer, _ = _torch_run(initial, sequence[:3], config)
    step, exp_avg, exp_avg_sq = torch_adam_state(optimizer, params)
    gradients = sequence[3]
    variables = [tf.Variable(p.detach().numpy()) for p in params]
    adam = TorchAdam(variables, config)
    adam.load_state(step, exp_avg, exp_avg_sq)
    adam.apply([tf.constant(g) for g in gradients])
    t = step + 1
    alpha = config.lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    for i, (p, g) in enumerate(zip(params, gradients)):
        w = p.detach().numpy().astype(np.float64)
        expected = w + adam_update(g, exp_avg[i], exp_avg_sq[i], t, config)
        bound = OPTIMIZER.allowed(expected)
        assert check_tensor(f"ours {i}", expected, variables[i].numpy(), bound).passed
        m = beta1 * exp_avg[i] + (1 - beta1) * g.astype(np.float64)
        v = beta2 * exp_avg_sq[i] + (1 - beta2) * g.astype(np.float64) ** 2
        keras_style = w - alpha * m / (np.sqrt(v) + config.eps)
        if GRADIENT_SCALES[i] < 1e-4:  # where eps matters
            assert not check_tensor(f"keras {i}", expected, keras_style, bound).passed
