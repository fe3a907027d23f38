"""PyTorch's loss reductions in TensorFlow and the AutoVC objective, against torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F

from pipeline.models.autovc import random_generator
from pipeline.training import autovc_loss, l1_loss, mse_loss, torch_autovc_loss
from pipeline.training.results import check_tensor
from pipeline.training.tolerances import LOSS

SMALL = {"dim_neck": 8, "dim_emb": 16, "dim_pre": 32, "freq": 8, "conv_channels": 32, "decoder_lstm_size": 64}


def _pair(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, shape).astype(np.float32), rng.normal(0.5, 0.3, shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(2, 32, 80), (3, 4, 16), (1, 7)])
def test_mse_and_l1_reduce_as_torch(shape: tuple[int, ...]) -> None:
    a, b = _pair(shape, seed=len(shape))
    for ours, theirs in ((mse_loss, F.mse_loss), (l1_loss, F.l1_loss)):
        expected = float(theirs(torch.from_numpy(a), torch.from_numpy(b)))
        check = check_tensor(ours.__name__, expected, float(ours(a, b)), LOSS.allowed(expected))
        assert check.passed, check


def test_sum_reduction_would_be_detected() -> None:
    a, b = _pair((2, 32, 80), seed=1)
    expected = float(F.mse_loss(torch.from_numpy(a), torch.from_numpy(b)))
    summed = float(tf.reduce_sum(tf.square(a - b)))
    assert not check_tensor("mse sum", expected, summed, LOSS.allowed(expected)).passed


def test_operands_of_different_shapes_are_refused() -> None:
    """The authors' (B, T, 80) against (B, 1, T, 80) would broadcast; here it is an error, also
    when the shapes are only known at run time."""
    a, b = _pair((2, 16, 80), seed=2)
    with pytest.raises(ValueError):
        mse_loss(a, b[:, None])
    dynamic = tf.function(l1_loss, input_signature=[tf.TensorSpec([None, None, 80])] * 2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        dynamic(a, b[:1])


def test_original_broadcast_mixes_utterances_for_batches_above_one() -> None:
    """What the authors' solver computes, F.mse_loss((B, T, 80), (B, 1, T, 80)), equals the
    per-utterance loss only for B = 1."""
    x, y = (torch.from_numpy(v) for v in _pair((2, 16, 80), seed=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about the broadcast
        assert torch.allclose(F.mse_loss(x[:1], y[:1].unsqueeze(1)), F.mse_loss(x[:1], y[:1]))
        original = F.mse_loss(x, y.unsqueeze(1))
    intended = F.mse_loss(x, y)
    assert abs(float(original - intended)) > 1e-3 * float(intended)


def test_autovc_objective_matches_the_authors_terms() -> None:
    """The TF objective on PyTorch's outputs equals PyTorch's objective, term by term."""
    generator, _ = random_generator(0, **SMALL)
    generator.train()
    rng = np.random.default_rng(4)
    mel = torch.from_numpy(rng.uniform(0, 1, (2, 16, 80)).astype(np.float32))
    emb = torch.from_numpy(rng.normal(size=(2, 16)).astype(np.float32))
    with torch.no_grad():
        expected = torch_autovc_loss(generator, mel, emb)
        mel_decoder, mel_postnet, codes = generator(mel, emb, emb)
        codes_reconst = generator.encoder(mel_postnet, emb)
    ours = autovc_loss(*(t.numpy() for t in (mel, mel_decoder, mel_postnet, codes, codes_reconst)))
    for term, value in expected.as_dict().items():
        reference = float(value)
        assert check_tensor(term, reference, float(getattr(ours, term)), LOSS.allowed(reference)).passed, term
    assert float(expected.loss) == pytest.approx(
        float(expected.loss_id + expected.loss_id_psnt + expected.loss_cd), rel=1e-6
    )
