"""The authors' D_VECTOR speaker encoder: naming, checkpoint loading, embeddings."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pipeline.models.autovc import D_VECTOR, load_speaker_encoder, speaker_embedding
from pipeline.runtime.errors import UsageError


@pytest.fixture(scope="module")
def encoder() -> D_VECTOR:
    torch.manual_seed(0)
    return D_VECTOR(dim_input=80, dim_cell=768, dim_emb=256).eval()


@pytest.fixture(scope="module")
def real_mel(shared_data) -> np.ndarray:
    return np.load(shared_data / "metadata.npz")["mel_p225"]


def test_state_dict_keys_follow_the_original_naming(encoder):
    """3000000-BL.ckpt's keys (after removing ``module.``): an nn.LSTM named ``lstm`` and an
    nn.Linear named ``embedding``."""
    expected = {
        f"lstm.{kind}_l{layer}": shape
        for layer in range(3)
        for kind, shape in (
            ("weight_ih", (4 * 768, 80 if layer == 0 else 768)),
            ("weight_hh", (4 * 768, 768)),
            ("bias_ih", (4 * 768,)),
            ("bias_hh", (4 * 768,)),
        )
    }
    expected.update({"embedding.weight": (256, 768), "embedding.bias": (256,)})
    assert {k: tuple(v.shape) for k, v in encoder.state_dict().items()} == expected


def test_embedding_is_unit_norm_and_uses_the_last_frame(encoder, real_mel):
    embedding = speaker_embedding(encoder, real_mel)
    assert embedding.shape == (256,) and embedding.dtype == np.float32
    assert abs(np.linalg.norm(embedding) - 1.0) < 1e-6
    with torch.no_grad():
        outputs, _ = encoder.lstm(torch.from_numpy(real_mel)[None])
        projected = encoder.embedding(outputs[0, -1]).numpy()
    np.testing.assert_allclose(embedding, projected / np.linalg.norm(projected), atol=1e-6)
    assert np.abs(embedding - speaker_embedding(encoder, real_mel[:-10])).max() > 1e-3


@pytest.mark.parametrize(
    ("wrap", "prefix"),
    [
        pytest.param(lambda sd: {"model_b": sd}, "module.", id="authors-layout"),
        pytest.param(lambda sd: sd, "", id="bare"),
    ],
)
def test_loader(tmp_path, wrap, prefix, real_mel):
    torch.manual_seed(1)
    source = D_VECTOR(num_layers=2, dim_input=80, dim_cell=32, dim_emb=16)
    path = tmp_path / "speaker.ckpt"
    torch.save(wrap({prefix + k: v for k, v in source.state_dict().items()}), path)
    loaded, origin = load_speaker_encoder(path)
    assert origin["kind"] == "checkpoint" and origin["path"] == str(path)
    sizes = (loaded.lstm.num_layers, loaded.lstm.hidden_size, loaded.embedding.out_features)
    assert sizes == (2, 32, 16)
    for key, tensor in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    np.testing.assert_array_equal(
        speaker_embedding(loaded, real_mel), speaker_embedding(source, real_mel)
    )


def test_loader_lists_missing_keys(tmp_path):
    state_dict = D_VECTOR(num_layers=2, dim_cell=32, dim_emb=16).state_dict()
    del state_dict["lstm.bias_hh_l1"]
    path = tmp_path / "speaker.ckpt"
    torch.save({"model_b": state_dict}, path)
    with pytest.raises(UsageError, match=r"1 missing keys \(lstm.bias_hh_l1\)"):
        load_speaker_encoder(path)


def test_loader_refuses_code(tmp_path):
    marker = tmp_path / "created"

    class CreatesFile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "speaker.ckpt"
    path.write_bytes(pickle.dumps({"model_b": CreatesFile()}, protocol=2))
    with pytest.raises(UsageError, match="refused"):
        load_speaker_encoder(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "mel",
    [np.zeros((0, 80)), np.zeros((20, 40)), np.zeros((1, 20, 80)), np.full((5, 80), np.nan)],
    ids=["no-frames", "wrong-bins", "batched", "nan"],
)
def test_bad_mel(encoder, mel):
    with pytest.raises(UsageError, match="speaker encoder"):
        speaker_embedding(encoder, mel)
