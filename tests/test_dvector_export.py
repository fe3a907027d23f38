"""``export --model dvector``: AutoVC's D_VECTOR speaker encoder exported, converted and checked
three ways, from the authors' checkpoint format (``{'model_b': state_dict}``, ``module.``-prefixed
keys) or from seeded random weights; and the model registry the commands read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from pipeline.models import MODELS, model_spec
from pipeline.models.autovc.speaker_encoder import D_VECTOR

SMALL = {"num_layers": 2, "dim_input": 80, "dim_cell": 32, "dim_emb": 16}
THREE_WAY = {"torch-ort", "torch-tf", "ort-tf"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, D_VECTOR]:
    """A small encoder saved the way the authors' 3000000-BL.ckpt is."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        encoder = D_VECTOR(**SMALL).eval()
    path = tmp_path_factory.mktemp("ckpt") / "small-BL.ckpt"
    torch.save({"model_b": {f"module.{k}": v for k, v in encoder.state_dict().items()}}, path)
    return path, encoder


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dvector") / "out"
    result = run_cli("export", "--model", "dvector", "--checkpoint", str(checkpoint[0]), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _three_way_errors(report: dict) -> dict[str, float]:
    return {c["pair"]: c["max_abs"] for c in report["comparisons"] if c["pair"] in THREE_WAY}


@pytest.mark.slow
def test_checkpoint_export_agrees_three_ways(exported: Path, checkpoint) -> None:
    report = json.loads((exported / "report" / "report.json").read_text())
    errors = _three_way_errors(report)
    assert report["passed"] and set(errors) == THREE_WAY, errors
    assert max(errors.values()) <= 1e-5, errors
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["model"] == "dvector"
    assert manifest["weights"]["kind"] == "checkpoint" and manifest["hyperparameters"] == SMALL


@pytest.mark.slow
def test_saved_model_computes_the_checkpoint_embedding(exported: Path, checkpoint, shared_data: Path) -> None:
    """The SavedModel on a real utterance against the test's own torch encoder (the weights it
    saved), which the export never saw."""
    import tensorflow as tf

    mel = np.load(shared_data / "metadata.npz")["mel_p225"][None].astype(np.float32)
    served = tf.saved_model.load(str(exported / "saved_model")).signatures["serving_default"]
    got = served(mel=tf.constant(mel))["embedding"].numpy()
    with torch.no_grad():
        want = checkpoint[1](torch.from_numpy(mel)).numpy()
    assert got.shape == (1, SMALL["dim_emb"])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_random_weights_export_and_parity_rebuild_torch_from_the_metadata(tmp_path: Path) -> None:
    out, report_dir = tmp_path / "out", tmp_path / "report"
    result = run_cli("export", "--model", "dvector", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli("parity", "--onnx", str(out / "model.onnx"), "--saved-model", str(out / "saved_model"),
                     "--report", str(report_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    errors = _three_way_errors(report)
    assert report["weights_origin"] == "random weights, seed 3"
    assert set(errors) == THREE_WAY and max(errors.values()) <= 1e-5, errors


def test_an_autovc_only_flag_is_refused_for_dvector(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("export", "--model", "dvector", "--emb-src", str(tmp_path / "e.npy"), "--trainable",
                     "--out", str(out))
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "error: --trainable, --emb-src: not an option of --model dvector"
    assert not out.exists()


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_spec_gives_axes_for_exactly_its_inputs_and_outputs(name: str) -> None:
    spec = model_spec(name)
    assert spec.name == name
    assert set(spec.dynamic_axes) <= {*spec.input_names, *spec.output_names}
    assert set(spec.input_names) | set(spec.output_names) <= set(spec.dynamic_axes)


def test_an_unknown_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("export", "--model", "wavenet", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "invalid choice: 'wavenet'" in result.stderr.strip().splitlines()[-1]
