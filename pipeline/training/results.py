"""The results train-parity reports: one :class:`TensorCheck` per compared tensor, one
:class:`StepReport` per step, and the :class:`TrainParityResult` that ``report.json`` is written from."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.parity.metrics import tolerance_ratio

from .adam import AdamConfig


@dataclass
class TensorCheck:
    """One tensor compared with its reference. ``ratio`` is the error measure over its
    allowance (at most 1 passes): elementwise, the largest ``|candidate - reference| / allowed``;
    for ``rule == "l2"``, ``||candidate - reference|| / allowed``."""

    name: str
    shape: list[int]
    rule: str
    ratio: float
    max_abs_error: float
    reference_max_abs: float
    relative_l2: float
    """``||candidate - reference|| / ||reference||`` (inf when the reference is all zeros)."""
    outside: int | None = None
    """Elementwise rule only: how many elements exceed their allowance (non-finite included)."""

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _errors(reference: Any, candidate: Any, name: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidate, np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"{name}: shape {cand.shape} != reference {ref.shape}")
    error = np.abs(cand - ref)
    error = np.where(np.isfinite(error), error, np.inf)
    norm = float(np.linalg.norm(ref))
    error_norm = float(np.sqrt(np.sum(error * error)))
    facts = {
        "name": name,
        "shape": list(ref.shape),
        "max_abs_error": float(error.max(initial=0.0)),
        "reference_max_abs": float(np.abs(ref).max(initial=0.0)),
        "relative_l2": error_norm / norm if norm else (0.0 if error_norm == 0 else math.inf),
    }
    return ref, error, facts


def check_tensor(name: str, reference: Any, candidate: Any, allowed: Any) -> TensorCheck:
    """Elementwise: ``|candidate - reference| <= allowed`` (an array or a scalar), in float64."""
    ref, error, facts = _errors(reference, candidate, name)
    bound = np.broadcast_to(np.asarray(allowed, np.float64), ref.shape)
    ratio = tolerance_ratio(error, bound)
    return TensorCheck(rule="elementwise", ratio=float(ratio.max(initial=0.0)), outside=int((error > bound).sum()),
                       **facts)


def check_l2(name: str, reference: Any, candidate: Any, allowed_l2: float) -> TensorCheck:
    """Whole tensor: ``||candidate - reference|| <= allowed_l2``."""
    _, error, facts = _errors(reference, candidate, name)
    error_norm = float(np.sqrt(np.sum(error * error)))
    ratio = error_norm / allowed_l2 if allowed_l2 > 0 else (0.0 if error_norm == 0 else math.inf)
    return TensorCheck(rule="l2", ratio=ratio, **facts)


@dataclass
class StepReport:
    """Step ``step`` (1-based): TF from PyTorch's state before the step against PyTorch after it."""

    step: int
    loss: dict[str, dict[str, float]]
    gradient_scale: float
    gradients: list[TensorCheck]
    running_stats: list[TensorCheck]
    optimizer_tf: list[TensorCheck]
    """TF's weights after its step against torch.optim.Adam's update with TF's gradient."""
    optimizer_torch: list[TensorCheck]
    """TorchAdam fed PyTorch's gradients since step 1 against torch.optim.Adam."""
    weights_vs_torch: dict[str, dict[str, float]]
    """Reported: per parameter, max |w_tf - w_torch| / lr and the relative L2 of the update
    difference ``||dw_tf - dw_torch|| / ||dw_torch||``."""
    keras_drift_lr: dict[str, float]
    """Reported: per parameter, max |w_keras - w_torch| / lr, Keras' Adam fed PyTorch's gradients."""

    def checks(self) -> dict[str, list[TensorCheck]]:
        return {
            "gradients": self.gradients,
            "running_stats": self.running_stats,
            "optimizer_tf": self.optimizer_tf,
            "optimizer_torch": self.optimizer_torch,
        }

    def failures(self) -> list[str]:
        found = [
            f"step {self.step}: loss {term} differs by {v['abs_error']:.3g} (allowed {v['allowed']:.3g})"
            for term, v in self.loss.items()
            if not v["abs_error"] <= v["allowed"]
        ]
        for kind, checks in self.checks().items():
            found += [
                f"step {self.step}: {kind} {c.name}: {c.ratio:.3g}x the allowance "
                f"(max abs {c.max_abs_error:.3g}, relative L2 {c.relative_l2:.3g})"
                for c in checks
                if not c.passed
            ]
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "loss": self.loss,
            "gradient_scale": self.gradient_scale,
            **{kind: [c.to_json() for c in checks] for kind, checks in self.checks().items()},
            "weights_vs_torch": self.weights_vs_torch,
            "keras_drift_lr": self.keras_drift_lr,
        }


@dataclass
class TrainParityResult:
    created_utc: str
    versions: dict[str, str | None]
    weights_origin: str
    hyperparameters: dict[str, int]
    batch: dict[str, Any]
    adam: AdamConfig
    steps: list[StepReport]
    gradient_free: list[str]
    """Parameters whose exact gradient is 0 (biases cancelled by training-mode BatchNorm)."""
    float64_gradients: dict[str, dict[str, float]]
    """Step 1, per parameter: max |float32 - float64 gradient| / G for PyTorch and for TF."""
    free_running: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def failures(self) -> list[str]:
        return [line for step in self.steps for line in step.failures()]

    @property
    def passed(self) -> bool:
        return not self.failures()

    def summary_line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        failures = self.failures()
        detail = (
            f"{len(failures)} failing checks"
            if failures
            else "loss, gradients, BatchNorm statistics and optimizer within tolerance"
        )
        return f"train-parity {verdict}: {len(self.steps)} steps, {self.weights_origin}; {detail}"
