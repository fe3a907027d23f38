"""The trainable SavedModel and train-parity: AutoVC trained in TF (through the reloaded
SavedModel) against the same training in PyTorch, on real mels and embeddings; the weights back
into a PyTorch checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import torch

from pipeline.models.autovc import AutoVC, load_generator, random_generator
from pipeline.parity.metrics import DEFAULT_TOLERANCE
from pipeline.runtime.progress import Progress
from pipeline.training import (
    TrainableAutoVC,
    TrainParityResult,
    tf_state_dict,
    train_parity,
    write_checkpoint,
)
from pipeline.training.results import check_tensor

SMALL = {"dim_neck": 8, "dim_emb": 16, "dim_pre": 32, "freq": 8, "conv_channels": 32, "decoder_lstm_size": 64}
STEPS = 2


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The real utterances with the first 16 values of each real embedding (the small model's
    dim_emb)."""
    with np.load(shared_data / "metadata.npz") as data:
        arrays = {key: data[key] for key in data.files}
    arrays["embeddings"] = np.ascontiguousarray(arrays["embeddings"][:, : SMALL["dim_emb"]])
    path = tmp_path_factory.mktemp("data") / "metadata.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory: pytest.TempPathFactory, small_data: Path):
    generator, info = random_generator(0, **SMALL)
    initial = {k: v.clone() for k, v in generator.state_dict().items()}
    out = tmp_path_factory.mktemp("train_parity")
    result = train_parity(
        None, STEPS, out / "report", generator=generator, weights_origin=info["label"], data=small_data,
        frames=32, trainable_dir=out / "trainable", progress=Progress(quiet=True),
    )
    return result, out, generator, initial


def test_train_parity_passes_with_every_parameter_and_buffer(parity_run) -> None:
    result, _, generator, initial = parity_run
    assert isinstance(result, TrainParityResult)
    assert result.passed, result.failures()
    assert [s.step for s in result.steps] == list(range(1, STEPS + 1))
    names = [name for name, _ in generator.named_parameters()]
    buffers = [name for name, _ in generator.named_buffers()]
    for step in result.steps:
        assert [c.name for c in step.gradients] == names
        assert [c.name for c in step.optimizer_tf] == names
        assert [c.name for c in step.running_stats] == buffers
        assert all(v["abs_error"] <= v["allowed"] for v in step.loss.values())
    # The biases BatchNorm cancels: every Conv bias of AutoVC (each Conv feeds a BatchNorm).
    assert sorted(result.gradient_free) == sorted(n for n in names if n.endswith("conv.bias"))
    # The caller's Generator is left as it was.
    assert all(torch.equal(initial[k], v) for k, v in generator.state_dict().items())


def test_num_batches_tracked_counts_both_encoder_passes(parity_run) -> None:
    """The encoder runs twice per step (on x and on the reconstruction), so its BatchNorms count
    two batches per step, as in PyTorch; the check is exact."""
    result, *_ = parity_run
    tracked = {c.name: c for c in result.steps[-1].running_stats if c.name.endswith("num_batches_tracked")}
    assert tracked and all(c.passed and c.max_abs_error == 0 for c in tracked.values())
    assert tracked["encoder.convolutions.0.1.num_batches_tracked"].reference_max_abs == 2 * STEPS
    assert tracked["decoder.convolutions.0.1.num_batches_tracked"].reference_max_abs == STEPS


def test_report_files(parity_run) -> None:
    _, out, generator, _ = parity_run
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["passed"] is True
    step1 = report["steps"][0]
    assert [g["name"] for g in step1["gradients"]] == [n for n, _ in generator.named_parameters()]
    assert all(g["rule"] == "l2" and g["passed"] for g in step1["gradients"])
    assert set(report["float64_gradients_step1"]) == {n for n, _ in generator.named_parameters()}
    assert len(report["free_running"]["loss"]["tf"]) == STEPS
    page = (out / "report" / "report.html").read_text()
    assert "Train parity PASS" in page and "data:image/png;base64," in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert (out / "report" / "summary.txt").read_text().startswith("train-parity PASS")


def test_saved_model_has_pytorch_names_and_serves_any_length(parity_run, small_data: Path, tmp_path: Path) -> None:
    _, out, generator, initial = parity_run
    loaded = tf.saved_model.load(str(out / "trainable"))
    names = [name for name, _ in generator.named_parameters()]
    assert list(loaded.parameters) == names
    assert [v.name for v in loaded.trainable_variables] == [f"{n}:0" for n in names]
    assert loaded.buffers["encoder.convolutions.0.1.num_batches_tracked"].dtype == tf.int64
    reloaded, _ = load_generator(write_checkpoint(loaded, tmp_path / "autovc.ckpt"), freq=SMALL["freq"])
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, initial[name]), name  # the file holds the initial weights

    with np.load(small_data) as data:
        mel = data[f"mel_{data['speakers'][0]}"][:13][None]  # 13 frames: not a multiple of freq
        emb = data["embeddings"][:1]
    served = loaded.signatures["serving_default"](mel=tf.constant(mel), emb_src=tf.constant(emb), emb_trg=tf.constant(emb))
    with torch.no_grad():
        expected = AutoVC(generator.eval())(torch.from_numpy(mel), torch.from_numpy(emb), torch.from_numpy(emb))
    for name, reference in zip(("mel_decoder", "mel_postnet", "codes"), expected):
        ref = reference.numpy()
        assert check_tensor(name, ref, served[name].numpy(), DEFAULT_TOLERANCE.allowed(ref)).passed, name


def test_fine_tuned_variables_load_into_generator_strictly(tmp_path: Path) -> None:
    """Variables changed in TF (weights and every buffer, num_batches_tracked included) come back
    bit for bit through an authors'-layout checkpoint that ``load_generator`` reads strictly."""
    generator, _ = random_generator(1, **SMALL)
    module = TrainableAutoVC(generator)
    rng = np.random.default_rng(0)
    for var in module.trainable_variables:
        var.assign_add(rng.normal(0, 1e-3, var.shape).astype(np.float32))
    for name, var in module.buffers.items():
        var.assign_add(3 if name.endswith("num_batches_tracked") else rng.uniform(0, 0.1, var.shape).astype(np.float32))
    path = write_checkpoint(module, tmp_path / "autovc.ckpt")
    assert set(torch.load(path, weights_only=True)) == {"model"}
    reloaded, _ = load_generator(path, freq=SMALL["freq"])
    expected = tf_state_dict(module)
    state = reloaded.state_dict()
    assert list(state) == list(generator.state_dict())
    for name, value in state.items():
        assert value.dtype == expected[name].dtype and torch.equal(value, expected[name]), name
    assert int(state["encoder.convolutions.0.1.num_batches_tracked"]) == 3


@pytest.mark.slow
def test_full_generator_trains_as_in_pytorch_on_real_mels(tmp_path: Path, shared_data: Path) -> None:
    """Generator(32, 256, 512, 32) with seeded random weights, the four real utterances cut to
    64 frames and their real embeddings, two steps."""
    result = train_parity(
        None, 2, tmp_path / "report", data=shared_data / "metadata.npz", frames=64, progress=Progress(quiet=True)
    )
    assert result.passed, result.failures()
    assert result.hyperparameters["conv_channels"] == 512 and result.batch["mel_shape"] == [4, 64, 80]
    assert (tmp_path / "report" / "report.html").exists()
