"""train-parity: AutoVC fine-tuned in TensorFlow against the same fine-tuning in PyTorch.

PyTorch runs ``steps`` steps of the authors' objective with ``torch.optim.Adam``. At every step
TensorFlow starts from PyTorch's state before that step (weights, BatchNorm buffers, Adam
moments), runs the trainable SavedModel's training graph and :class:`~.adam.TorchAdam`, and is
compared with PyTorch's state after it (tolerances and their reasons: :mod:`.tolerances`):

* the loss and its terms;
* every gradient, by PyTorch parameter name;
* the BatchNorm running statistics and ``num_batches_tracked``;
* the optimizer: TF's new weights against ``torch.optim.Adam``'s update of the same state with
  TF's gradient, and :class:`TorchAdam` fed PyTorch's own gradients against
  ``torch.optim.Adam`` (Keras' Adam alongside, to measure its drift).

TF's weights against PyTorch's are reported per parameter in units of lr. Step 1 starts from
the common initial weights, so its weights are "the weights after one step" of both.

Free running: TF also trains alone for ``steps`` steps from the initial weights. Float32
training of AutoVC is chaotic at the level of rounding: Adam divides each gradient element by
its own magnitude, so an element whose gradient is near rounding noise, or that sits at a ReLU
kink, takes a step of up to ``lr`` in either direction, and two runs drift apart (PyTorch
against itself with the batch in another order does the same). This part is reported, not
judged, next to a control: PyTorch fed TF's first-step gradient, then training on its own.
A float64 PyTorch gradient at step 1 shows how far float32 PyTorch itself is from exact.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import torch

from pipeline.models.autovc import Generator, load_generator, random_generator
from pipeline.models.autovc.model import N_MELS
from pipeline.parity.run import library_versions
from pipeline.runtime.artifacts import AtomicOutputDir
from pipeline.runtime.errors import UsageError
from pipeline.runtime.progress import Progress

from . import tolerances
from .adam import AdamConfig, TorchAdam, torch_adam_state
from .batch import TrainingBatch, default_training_batch, read_training_batch
from .losses import torch_autovc_loss
from .report import write_report
from .results import StepReport, TrainParityResult, check_l2, check_tensor
from .trainable import write_trainable
from .weights import assign_state

LOSS_TERMS = ("loss_id", "loss_id_psnt", "loss_cd", "loss")
DEFAULT_FRAMES = 64


def train_parity(
    checkpoint: Path | None = None,
    steps: int = 10,
    report_dir: Path | None = None,
    *,
    freq: int = 32,
    data: Path | None = None,
    frames: int = DEFAULT_FRAMES,
    generator: Generator | None = None,
    weights_origin: str | None = None,
    adam: AdamConfig | None = None,
    trainable_dir: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> TrainParityResult:
    """Run the comparison (see the module docstring) and write the report when ``report_dir``.

    TF's side is the trainable SavedModel (:func:`~.trainable.write_trainable`) written into
    ``trainable_dir`` (a temporary folder when None) and loaded back with
    ``tf.saved_model.load``: the artefact a user fine-tunes is the one proved.

    Weights: ``generator`` if given, else ``checkpoint`` (``freq`` as for ``export``), else the
    seeded random full-size Generator (seed 0). Batch: ``data`` (a ``metadata.npz`` with
    ``speakers``, ``mel_<speaker>`` and ``embeddings``) or the embedded synthetic utterance,
    each mel cropped or zero-padded to ``frames`` (a multiple of ``freq``). ``adam``: the
    authors' optimizer settings (lr 1e-4) when None.
    """
    adam = adam or AdamConfig()
    if steps < 1:
        raise UsageError(f"steps must be at least 1, got {steps}")
    if report_dir is not None:  # a folder this tool did not write is refused before the run
        AtomicOutputDir(Path(report_dir), force=force, reads=[checkpoint, data]).check()
    progress = progress or Progress()
    if generator is None:
        generator, info = load_generator(checkpoint, freq) if checkpoint else random_generator(0, freq=freq)
        weights_origin = info["label"]
    freq = generator.freq
    if data is not None:
        batch = read_training_batch(data, frames, freq)
    else:
        batch = default_training_batch(generator.dim_emb, frames, freq)
    if batch.emb.shape[1] != generator.dim_emb:
        raise UsageError(f"embeddings have {batch.emb.shape[1]} values, the model takes {generator.dim_emb}")
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    initial = {k: v.detach().clone() for k, v in generator.state_dict().items()}

    with contextlib.ExitStack() as stack:
        if trainable_dir is None:
            trainable_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "trainable"
        with progress.stage("write trainable SavedModel"):
            gradient_free = write_trainable(generator, trainable_dir).batchnorm_cancelled_biases()
        with progress.stage("load trainable SavedModel"):
            trainable = tf.saved_model.load(str(trainable_dir))
            tf_step = _tf_step_function(trainable, generator.dim_emb)
            tf_adam = TorchAdam(trainable.trainable_variables, adam)
        run = _Runs(generator, batch, adam)
        with progress.stage("same-state steps (PyTorch and TF)"):
            reports = [run.step(trainable, tf_step, tf_adam, s) for s in range(1, steps + 1)]
        with progress.stage("float64 PyTorch gradients"):
            float64 = run.float64_gradients(initial)
        with progress.stage("free running"):
            free = run.free_running(trainable, tf_step, tf_adam, initial, steps)

    result = TrainParityResult(
        created_utc=created,
        versions=library_versions(),
        weights_origin=weights_origin or "given Generator",
        hyperparameters=dict(generator.hyperparameters),
        batch=batch.describe(),
        adam=adam,
        steps=reports,
        gradient_free=list(gradient_free),
        float64_gradients=float64,
        free_running=free,
        timings=dict(progress.timings),
    )
    if report_dir is not None:

        with progress.stage("report"):
            write_report(result, report_dir, force=force)
    return result


def _tf_step_function(trainable: Any, dim_emb: int) -> Callable[..., tuple[dict, list]]:
    """Loss terms and gradients (by ``trainable_variables``) of one training forward of a
    loaded trainable SavedModel; the forward also updates its BatchNorm buffers."""

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, N_MELS], tf.float32), tf.TensorSpec([None, dim_emb], tf.float32)],
        autograph=False,
    )
    def step(mel: tf.Tensor, emb: tf.Tensor) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            terms = trainable.loss(mel, emb)
        return terms, tape.gradient(terms["loss"], list(trainable.trainable_variables))

    return step


class _Runs:
    """PyTorch's reference run and everything compared with it, step by step."""

    def __init__(self, generator: Generator, batch: TrainingBatch, adam: AdamConfig) -> None:
        self.config = adam
        self.torch_model = copy.deepcopy(generator).train()
        self.names = [name for name, _ in self.torch_model.named_parameters()]
        self.torch_params = [p for _, p in self.torch_model.named_parameters()]
        self.optimizer = torch.optim.Adam(self.torch_params, lr=adam.lr, betas=adam.betas, eps=adam.eps)
        self.mel, self.emb = batch.mel, batch.emb
        self.first_tf_gradients: list[np.ndarray] = []
        self.first_torch_gradients: list[np.ndarray] = []
        self.losses_torch: list[float] = []
        # The optimizers alone, on PyTorch's gradients: ours and Keras'.
        self.shadow = [tf.Variable(p.detach().numpy()) for p in self.torch_params]
        self.shadow_adam = TorchAdam(self.shadow, adam)
        self.keras_shadow = [tf.Variable(p.detach().numpy()) for p in self.torch_params]
        self.keras_adam = keras.optimizers.Adam(
            learning_rate=adam.lr, beta_1=adam.betas[0], beta_2=adam.betas[1], epsilon=adam.eps
        )

    @staticmethod
    def _loss_and_gradients(model: Generator, mel: np.ndarray, emb: np.ndarray) -> tuple[dict[str, float], list[np.ndarray]]:
        """The objective's terms and every parameter's gradient, in the model's dtype."""
        dtype = next(model.parameters()).dtype
        model.zero_grad(set_to_none=True)
        terms = torch_autovc_loss(model, torch.from_numpy(mel).to(dtype), torch.from_numpy(emb).to(dtype))
        terms.loss.backward()
        grads = [p.grad.detach().numpy().copy() for p in model.parameters()]
        return {k: float(v.detach()) for k, v in terms.as_dict().items()}, grads

    def step(self, trainable: Any, tf_step: Callable, tf_adam: TorchAdam, s: int) -> StepReport:
        before = {k: v.detach().clone() for k, v in self.torch_model.state_dict().items()}
        adam_step, exp_avg, exp_avg_sq = torch_adam_state(self.optimizer, self.torch_params)
        # TF from PyTorch's state.
        assign_state(trainable, before)
        tf_adam.load_state(adam_step, exp_avg, exp_avg_sq)
        tf_terms, tf_grads = tf_step(tf.constant(self.mel), tf.constant(self.emb))
        tf_grads = [g.numpy() for g in tf_grads]
        tf_adam.apply(tf_grads)
        if s == 1:
            self.first_tf_gradients = tf_grads
        # PyTorch's step; then the optimizers alone on its gradients.
        torch_terms, torch_grads = self._loss_and_gradients(self.torch_model, self.mel, self.emb)
        self.optimizer.step()
        if s == 1:
            self.first_torch_gradients = torch_grads
        self.losses_torch.append(torch_terms["loss"])
        self.shadow_adam.apply([tf.constant(g) for g in torch_grads])
        self.keras_adam.apply_gradients(zip([tf.constant(g) for g in torch_grads], self.keras_shadow))
        after = self.torch_model.state_dict()

        loss = {}
        for term in LOSS_TERMS:
            ref, cand = torch_terms[term], float(tf_terms[term])
            loss[term] = {"torch": ref, "tf": cand, "abs_error": abs(cand - ref),
                          "allowed": float(tolerances.LOSS.allowed(ref))}
        scale = max(float(np.abs(g).max()) for g in torch_grads)
        lr = self.config.lr
        gradients, optimizer_tf, optimizer_torch, weights_vs_torch, keras_drift = [], [], [], {}, {}
        for i, name in enumerate(self.names):
            gradients.append(check_l2(name, torch_grads[i], tf_grads[i],
                                      tolerances.gradient_allowed_l2(torch_grads[i], scale)))
            w_before = before[name].numpy().astype(np.float64)
            w_tf = trainable.parameters[name].numpy()
            expected_tf = w_before + tolerances.adam_update(tf_grads[i], exp_avg[i], exp_avg_sq[i], adam_step + 1,
                                                            self.config)
            optimizer_tf.append(check_tensor(name, expected_tf, w_tf, tolerances.OPTIMIZER.allowed(expected_tf)))
            w_torch = after[name].numpy()
            optimizer_torch.append(check_tensor(name, w_torch, self.shadow[i].numpy(),
                                                tolerances.OPTIMIZER.allowed(w_torch)))
            update_torch = w_torch - w_before
            difference = np.linalg.norm(w_tf - w_before - update_torch)
            weights_vs_torch[name] = {
                "max_abs_lr": float(np.abs(w_tf - w_torch).max()) / lr,
                "update_relative_l2": float(difference / np.linalg.norm(update_torch)) if np.any(update_torch) else 0.0,
            }
            keras_drift[name] = float(np.abs(self.keras_shadow[i].numpy() - w_torch).max()) / lr
        running_stats = [
            check_tensor(name, after[name].numpy(), var.numpy(),
                         0.0 if var.dtype.is_integer else tolerances.BN_STATS.allowed(after[name].numpy()))
            for name, var in trainable.buffers.items()
        ]
        return StepReport(s, loss, scale, gradients, running_stats, optimizer_tf, optimizer_torch, weights_vs_torch,
                          keras_drift)

    def float64_gradients(self, initial: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
        """Step-1 gradients in float64 against PyTorch's and TF's float32 ones, per parameter,
        as fractions of G (the largest float64 |gradient| element)."""
        exact_model = self._fresh(initial, torch.float64)
        _, exact = self._loss_and_gradients(exact_model, self.mel.astype(np.float64), self.emb.astype(np.float64))
        scale = max(float(np.abs(g).max()) for g in exact)
        return {
            name: {
                "torch_float32": float(np.abs(self.first_torch_gradients[i] - exact[i]).max()) / scale,
                "tf_float32": float(np.abs(self.first_tf_gradients[i] - exact[i]).max()) / scale,
            }
            for i, name in enumerate(self.names)
        }

    def _fresh(self, state: dict[str, torch.Tensor], dtype: torch.dtype) -> Generator:
        model = copy.deepcopy(self.torch_model)
        model.load_state_dict(state)
        return model.to(dtype).train()

    def free_running(self, trainable: Any, tf_step: Callable, tf_adam: TorchAdam,
                     initial: dict[str, torch.Tensor], steps: int) -> dict[str, Any]:
        """TF trains alone from ``initial``; the control is PyTorch starting with TF's first
        gradient. Both against PyTorch's run (already done by :meth:`step`)."""
        assign_state(trainable, initial)
        tf_adam.load_state(0, [np.zeros(v.shape, np.float32) for v in trainable.trainable_variables],
                           [np.zeros(v.shape, np.float32) for v in trainable.trainable_variables])
        tf_losses = []
        for _ in range(steps):
            terms, grads = tf_step(tf.constant(self.mel), tf.constant(self.emb))
            tf_adam.apply(list(grads))
            tf_losses.append(float(terms["loss"]))
        control = self._fresh(initial, torch.float32)
        control_optimizer = torch.optim.Adam(control.parameters(), lr=self.config.lr, betas=self.config.betas,
                                             eps=self.config.eps)
        control_losses = []
        for s in range(steps):
            terms, _ = self._loss_and_gradients(control, self.mel, self.emb)
            if s == 0:
                for p, g in zip(control.parameters(), self.first_tf_gradients, strict=True):
                    p.grad = torch.from_numpy(g)
            control_optimizer.step()
            control_losses.append(terms["loss"])
        reference = self.torch_model.state_dict()
        control_state = control.state_dict()
        lr = self.config.lr
        per_parameter = {
            name: {
                "tf_vs_torch_lr": float(np.abs(trainable.parameters[name].numpy() - reference[name].numpy()).max()) / lr,
                "tf_vs_control_lr": float(np.abs(trainable.parameters[name].numpy() - control_state[name].numpy()).max()) / lr,
                "control_vs_torch_lr": float(np.abs(control_state[name].numpy() - reference[name].numpy()).max()) / lr,
            }
            for name in self.names
        }
        buffers = {
            name: {
                "tf_vs_torch": float(np.abs(var.numpy() - reference[name].numpy()).max()),
                "tf_vs_control": float(np.abs(var.numpy() - control_state[name].numpy()).max()),
            }
            for name, var in trainable.buffers.items()
        }
        return {
            "loss": {"torch": self.losses_torch, "tf": tf_losses, "control": control_losses},
            "weights_after_last_step": per_parameter,
            "buffers_after_last_step": buffers,
        }
