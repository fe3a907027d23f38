"""PyTorch's losses in TensorFlow, and AutoVC's generator objective in both frameworks.

``mse_loss`` and ``l1_loss`` reduce as ``torch.nn.functional``'s default
(``reduction="mean"``): the mean over every element. Unlike PyTorch they refuse operands of
different shapes instead of broadcasting them.

The AutoVC objective is the one of the authors' ``solver_encoder.py`` (lambda_cd = 1)::

    x_identic, x_identic_psnt, code_real = G(x, emb, emb)
    code_reconst = G.encoder(x_identic_psnt, emb)        # G(x_identic_psnt, emb, None) there
    loss = mse(x, x_identic) + mse(x, x_identic_psnt) + lambda_cd * l1(code_real, code_reconst)

with one deliberate difference. The original Generator returns its mels as (B, 1, T, 80) and
the data loader gives x as (B, T, 80), so ``F.mse_loss(x_real, x_identic)`` broadcasts to
(B, B, T, 80): for B > 1 it averages the error of every utterance against every
reconstruction in the batch, not each against its own (PyTorch warns about the size mismatch).
For B = 1 both agree. Here every term compares tensors of one shape, (B, T, 80) and the codes
(B, T / freq, 2 * dim_neck); the codes' layout does not change a mean over all elements.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import tensorflow as tf
import torch
import torch.nn.functional as F

from pipeline.models.autovc.model import Generator

LAMBDA_CD = 1.0
"""Weight of the content-code loss in the authors' training configuration."""

T = TypeVar("T")


@dataclass(frozen=True)
class LossTerms(Generic[T]):
    """The objective's terms (same names as the authors' log keys) and their weighted sum."""

    loss_id: T
    loss_id_psnt: T
    loss_cd: T
    loss: T

    def as_dict(self) -> dict[str, T]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def _difference(input: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``input - target`` for operands of one shape: a shape known to differ raises now, a
    dynamic one when the graph runs."""
    input, target = tf.convert_to_tensor(input), tf.convert_to_tensor(target)
    input.shape.assert_is_compatible_with(target.shape)
    check = tf.debugging.assert_equal(tf.shape(input), tf.shape(target), message="loss operands differ in shape")
    with tf.control_dependencies([check]):
        return input - target


def mse_loss(input: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``torch.nn.functional.mse_loss(input, target)``: mean of the squared differences."""
    return tf.reduce_mean(tf.square(_difference(input, target)))


def l1_loss(input: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``torch.nn.functional.l1_loss(input, target)``: mean of the absolute differences."""
    return tf.reduce_mean(tf.abs(_difference(input, target)))


def autovc_loss(
    mel: tf.Tensor,
    mel_decoder: tf.Tensor,
    mel_postnet: tf.Tensor,
    codes: tf.Tensor,
    codes_reconst: tf.Tensor,
    lambda_cd: float = LAMBDA_CD,
) -> LossTerms[tf.Tensor]:
    """The AutoVC objective from the outputs of a training forward (see the module docstring)."""
    loss_id = mse_loss(mel, mel_decoder)
    loss_id_psnt = mse_loss(mel, mel_postnet)
    loss_cd = l1_loss(codes, codes_reconst)
    return LossTerms(loss_id, loss_id_psnt, loss_cd, loss_id + loss_id_psnt + lambda_cd * loss_cd)


def torch_autovc_loss(
    generator: Generator, mel: torch.Tensor, emb: torch.Tensor, lambda_cd: float = LAMBDA_CD
) -> LossTerms[torch.Tensor]:
    """The same objective computed by PyTorch (the reference), exactly as the authors' solver
    runs it, bar the broadcast: ``generator`` should be in train mode."""
    x_identic, x_identic_psnt, code_real = generator(mel, emb, emb)
    loss_id = F.mse_loss(mel, x_identic)
    loss_id_psnt = F.mse_loss(mel, x_identic_psnt)
    code_reconst = generator.encoder(x_identic_psnt, emb)
    loss_cd = F.l1_loss(code_real, code_reconst)
    return LossTerms(loss_id, loss_id_psnt, loss_cd, loss_id + loss_id_psnt + lambda_cd * loss_cd)
