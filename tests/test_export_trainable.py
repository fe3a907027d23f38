"""`python -m pipeline export --trainable`: the real CLI writes trainable/ beside saved_model/,
and that SavedModel loads, trains and serves in a process that never imports our packages."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import run_cli

from pipeline.models.autovc import random_generator

pytestmark = pytest.mark.slow

FORBIDDEN_MODULES = ("onnx_tf", "custom_ops", "pipeline")


@pytest.fixture(scope="module")
def trainable_export(tmp_path_factory):
    """One real ``python -m pipeline export --trainable`` (default model and input)."""
    out = tmp_path_factory.mktemp("export_trainable") / "autovc"
    result = run_cli("export", "--trainable", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stderr


def test_trainable_is_its_own_stage_and_listed_in_the_manifest(trainable_export):
    out, stderr = trainable_export
    assert "[write trainable] done in" in stderr
    assert stderr.strip().splitlines()[-1].startswith("parity PASS: 3 outputs x 5 pairs")
    manifest = json.loads((out / "manifest.json").read_text())
    files = set(manifest["files"])
    assert {"trainable/saved_model.pb", "trainable/variables/variables.index"} <= files
    assert "saved_model/saved_model.pb" in files and "model.onnx" in files
    assert "write trainable" in manifest["timings_s"]
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def test_without_the_flag_no_trainable_is_written(exported_autovc):
    out, stderr = exported_autovc
    assert not (out / "trainable").exists()
    assert "[write trainable]" not in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert not [f for f in manifest["files"] if f.startswith("trainable/")]


def test_trainable_loads_alone_trains_and_serves_as_the_saved_model(trainable_export, tmp_path):
    """In a fresh process without pipeline, custom_ops or onnx_tf: the variables carry the
    PyTorch names, the inference forward equals saved_model/'s serving output (1e-5 max abs; run
    before the training step, which updates the BatchNorm running statistics), and one
    GradientTape step on the loss gives finite gradients, non-zero except where BatchNorm
    cancels a Conv bias."""
    out, _ = trainable_export
    rng = np.random.default_rng(7)
    inputs = {
        "mel": rng.uniform(0, 1, (2, 45, 80)).astype(np.float32),  # 45: not a multiple of freq
        "emb_src": rng.normal(0, 0.05, (2, 256)).astype(np.float32),
        "emb_trg": rng.normal(0, 0.05, (2, 256)).astype(np.float32),
        "train_mel": rng.uniform(0, 1, (2, 64, 80)).astype(np.float32),  # 64: a multiple of 32
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        x = dict(np.load({str(tmp_path / "inputs.npz")!r}))
        trainable = tf.saved_model.load({str(out / "trainable")!r})
        served = tf.saved_model.load({str(out / "saved_model")!r}).signatures["serving_default"]
        feed = {{k: tf.constant(x[k]) for k in ("mel", "emb_src", "emb_trg")}}
        want = {{k: v.numpy() for k, v in served(**feed).items()}}
        got = {{k: v.numpy() for k, v in trainable.inference(feed["mel"], feed["emb_src"], feed["emb_trg"]).items()}}
        mel, emb = tf.constant(x["train_mel"]), tf.constant(x["emb_src"])
        with tf.GradientTape() as tape:
            loss = trainable.loss(mel, emb)["loss"]
        grads = tape.gradient(loss, trainable.trainable_variables)
        facts = {{
            "parameters": list(trainable.parameters),
            "buffers": list(trainable.buffers),
            "trainable_names": [v.name for v in trainable.trainable_variables],
            "inference_max_abs": {{k: float(np.max(np.abs(got[k] - want[k]))) for k in want}},
            "shapes": {{k: [list(got[k].shape), list(want[k].shape)] for k in want}},
            "loss": float(loss),
            "gradients": {{v.name[:-2]: None if g is None else [bool(np.all(np.isfinite(g))), float(np.max(np.abs(g)))]
                          for v, g in zip(trainable.trainable_variables, grads)}},
            "modules": [m for m in sys.modules if m.startswith({FORBIDDEN_MODULES!r})],
        }}
        with open({str(tmp_path / "facts.json")!r}, "w") as f:
            json.dump(facts, f)
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    facts = json.loads((tmp_path / "facts.json").read_text())
    assert facts["modules"] == []

    generator, _ = random_generator(0)
    parameters = [name for name, _ in generator.named_parameters()]
    buffers = [name for name, _ in generator.named_buffers()]
    assert set(parameters) | set(buffers) == set(generator.state_dict())
    assert facts["parameters"] == parameters
    assert set(facts["buffers"]) == set(buffers)
    assert facts["trainable_names"] == [f"{name}:0" for name in parameters]

    for name, (got_shape, want_shape) in facts["shapes"].items():
        assert got_shape == want_shape, name
    assert set(facts["inference_max_abs"]) == {"mel_decoder", "mel_postnet", "codes"}
    for name, error in facts["inference_max_abs"].items():
        assert error <= 1e-5, (name, error)

    assert np.isfinite(facts["loss"]) and facts["loss"] > 0
    gradients = facts["gradients"]
    assert list(gradients) == parameters
    assert all(g is not None and g[0] for g in gradients.values()), "missing or non-finite gradients"
    zero = [name for name, (_, max_abs) in gradients.items() if max_abs == 0 and not name.endswith("conv.bias")]
    assert zero == [], zero
