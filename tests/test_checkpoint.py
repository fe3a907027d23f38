"""Loading Generator checkpoints (good and bad files) and the embedded random default."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline.models.autovc import DEFAULT_HYPERPARAMETERS, Generator, load_generator, random_generator
from pipeline.runtime.errors import UsageError

SMALL = {"dim_neck": 4, "dim_emb": 8, "dim_pre": 16, "conv_channels": 16, "decoder_lstm_size": 32}


@pytest.fixture(scope="module")
def small_state_dict() -> dict[str, torch.Tensor]:
    generator, _ = random_generator(seed=5, freq=8, **SMALL)
    return generator.state_dict()


def save(tmp_path: Path, obj: object, name: str = "model.ckpt", **kwargs) -> Path:
    path = tmp_path / name
    torch.save(obj, path, **kwargs)
    return path


def assert_same_weights(generator: Generator, state_dict: dict[str, torch.Tensor]) -> None:
    loaded = generator.state_dict()
    assert list(loaded) == list(state_dict)
    for key, tensor in state_dict.items():
        assert torch.equal(loaded[key], tensor), key


# --- Good files ---


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: {"model": sd}, id="model-key"),
        pytest.param(lambda sd: sd, id="bare"),
        pytest.param(lambda sd: {f"module.{k}": v for k, v in sd.items()}, id="module-prefix"),
        pytest.param(
            lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}, "step": 1000},
            id="model-key-module-prefix-extra-entries",
        ),
    ],
)
def test_accepted_layouts(tmp_path, small_state_dict, wrap):
    path = save(tmp_path, wrap(small_state_dict))
    generator, info = load_generator(path, freq=8)
    assert_same_weights(generator, small_state_dict)
    assert not generator.training
    assert info["hyperparameters"] == {**SMALL, "freq": 8}
    assert info["origin"] == {
        "kind": "checkpoint",
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert info["label"].startswith("checkpoint model.ckpt (sha256 ")


def test_legacy_serialization_format(tmp_path, small_state_dict):
    """Checkpoints saved before torch 1.6 (like the authors' autovc.ckpt) are not zip archives."""
    path = save(tmp_path, {"model": small_state_dict}, _use_new_zipfile_serialization=False)
    assert not path.read_bytes().startswith(b"PK")
    generator, _ = load_generator(path, freq=8)
    assert_same_weights(generator, small_state_dict)


def test_the_authors_configuration_is_inferred(tmp_path):
    """A checkpoint shaped like autovc.ckpt: Generator(32, 256, 512, 32)."""
    source = Generator(32, 256, 512, 32)
    path = save(tmp_path, {"model": source.state_dict()})
    generator, info = load_generator(path)
    assert info["hyperparameters"] == DEFAULT_HYPERPARAMETERS
    assert_same_weights(generator, source.state_dict())


# --- Bad files ---


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="checkpoint not found"):
        load_generator(tmp_path / "absent.ckpt")


def test_directory(tmp_path):
    with pytest.raises(UsageError, match="not a file"):
        load_generator(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.touch()
    with pytest.raises(UsageError, match=r"empty \(0 bytes\)"):
        load_generator(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_truncated_file(tmp_path, small_state_dict, legacy):
    path = save(tmp_path, small_state_dict, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        load_generator(path)


def test_not_a_checkpoint(shared_data):
    with pytest.raises(UsageError, match="not a PyTorch checkpoint"):
        load_generator(shared_data / "p225_003.wav")


class CreatesFile:
    """Unpickling this object opens ``path`` for writing, which creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("container", ["torch-save", "raw-pickle"])
def test_pickle_that_runs_code_is_refused(tmp_path, container):
    marker = tmp_path / "created-by-unpickling"
    payload = pickle.dumps(CreatesFile(marker), protocol=2)
    pickle.loads(payload).close()  # the payload really does create the file when unpickled
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "evil.ckpt"
    if container == "torch-save":
        torch.save({"model": CreatesFile(marker)}, path)
    else:
        path.write_bytes(payload)
    with pytest.raises(UsageError, match="refused"):
        load_generator(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"epoch": 3, "lr": 0.1}, "entries that are not tensors: epoch, lr"),
        ([torch.zeros(1)], "found a list"),
        ({}, "found an empty dict"),
    ],
)
def test_not_a_state_dict(tmp_path, content, expected):
    with pytest.raises(UsageError, match=f"holds no state dict.*{expected}"):
        load_generator(save(tmp_path, content))


def test_missing_keys_are_listed(tmp_path, small_state_dict):
    state_dict = dict(small_state_dict)
    del state_dict["postnet.convolutions.4.1.running_var"]
    del state_dict["decoder.linear_projection.linear_layer.bias"]
    with pytest.raises(UsageError, match="2 missing keys") as error:
        load_generator(save(tmp_path, state_dict), freq=8)
    assert "postnet.convolutions.4.1.running_var" in str(error.value)
    assert "decoder.linear_projection.linear_layer.bias" in str(error.value)


def test_unexpected_keys_are_listed(tmp_path, small_state_dict):
    state_dict = {**small_state_dict, "speaker_classifier.weight": torch.zeros(3)}
    with pytest.raises(UsageError, match="1 unexpected keys \\(speaker_classifier.weight\\)"):
        load_generator(save(tmp_path, state_dict), freq=8)


def test_not_a_generator(tmp_path):
    with pytest.raises(UsageError, match="not an AutoVC Generator: .*missing keys"):
        load_generator(save(tmp_path, nn.Linear(3, 4).state_dict()))


@pytest.mark.parametrize(
    ("key", "suspect"),
    [
        ("decoder.lstm1.weight_ih_l0", "dim_neck or dim_emb"),
        ("decoder.convolutions.1.0.conv.weight", "dim_pre"),
        ("encoder.lstm.weight_hh_l1_reverse", "dim_neck"),
        ("postnet.convolutions.2.1.running_mean", "conv_channels"),
        ("decoder.linear_projection.linear_layer.weight", "decoder_lstm_size"),
    ],
)
def test_shape_mismatch_names_the_size_that_probably_differs(
    tmp_path, small_state_dict, key, suspect
):
    state_dict = dict(small_state_dict)
    shape = list(state_dict[key].shape)
    shape[-1] += 2
    state_dict[key] = torch.zeros(shape)
    expected = f"{key} has shape .* expects .*; {suspect} probably differs"
    with pytest.raises(UsageError, match=expected):
        load_generator(save(tmp_path, state_dict), freq=8)


def test_non_finite_weights(tmp_path, small_state_dict):
    state_dict = dict(small_state_dict)
    state_dict["encoder.lstm.bias_ih_l0"] = torch.full((16,), float("nan"))
    with pytest.raises(UsageError, match="encoder.lstm.bias_ih_l0 contains NaN"):
        load_generator(save(tmp_path, state_dict), freq=8)


@pytest.mark.parametrize("freq", [0, -32, 2.5, True])
def test_freq_must_be_a_positive_integer(tmp_path, small_state_dict, freq):
    with pytest.raises(UsageError, match="freq must be a positive integer"):
        load_generator(save(tmp_path, small_state_dict), freq=freq)


# --- Embedded default ---


def test_random_default_is_the_authors_configuration():
    generator, info = random_generator()
    assert info["hyperparameters"] == DEFAULT_HYPERPARAMETERS
    assert generator.hyperparameters == DEFAULT_HYPERPARAMETERS
    assert info["origin"] == {"kind": "random", "seed": 0}
    assert info["label"] == "random weights, seed 0"
    assert not generator.training


def test_random_weights_depend_only_on_the_seed():
    rng_state = torch.random.get_rng_state()
    first, _ = random_generator(seed=7, freq=8, **SMALL)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # global RNG untouched
    torch.manual_seed(12345)
    again, _ = random_generator(seed=7, freq=8, **SMALL)
    other, _ = random_generator(seed=8, freq=8, **SMALL)
    assert_same_weights(again, first.state_dict())
    key = "encoder.lstm.weight_ih_l0"
    assert not torch.equal(other.state_dict()[key], first.state_dict()[key])


def test_random_batchnorm_is_not_an_identity():
    generator, _ = random_generator(seed=0, freq=8, **SMALL)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 11
    for norm in norms:
        assert 0.03 < norm.running_mean.std() < 0.3
        assert norm.running_var.min() >= 0.5 and norm.running_var.max() <= 1.5
        assert norm.running_var.std() > 0.1
        assert norm.weight.min() >= 0.5 and norm.weight.max() <= 1.5
        assert norm.bias.abs().max() > 0
