"""`python -m pipeline export` end to end: the real CLI, the real backends, one run shared by
the tests below (it takes about a minute on 2 cores)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch

from pipeline.models.autovc import AutoVC, random_generator
from pipeline.models.autovc.spec import INPUT_NAMES, OUTPUT_NAMES

pytestmark = pytest.mark.slow


def test_export_reports_every_stage(exported_autovc):
    _, stderr = exported_autovc
    for stage in ("devices", "load model", "torch -> onnx", "onnxruntime check", "onnx -> tf",
                  "write savedmodel", "parity"):
        assert f"[{stage}] done in" in stderr, stage
    assert "random weights, seed 0" in stderr
    assert stderr.strip().splitlines()[-1].startswith("parity PASS: 3 outputs x 5 pairs")


def test_export_writes_the_artefacts_and_manifest(exported_autovc):
    out, _ = exported_autovc
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"] == {"kind": "random", "seed": 0}
    assert "model.onnx" in manifest["files"]
    assert "saved_model/saved_model.pb" in manifest["files"]
    assert {"report/report.json", "report/report.html"} <= set(manifest["files"])
    assert manifest["parity"] == "pass"
    assert manifest["devices"]["backends"]["torch"]["used"] == "cpu"


def test_export_report_records_three_pairs_and_no_divergence(exported_autovc):
    out, _ = exported_autovc
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["passed"] is True
    assert report["first_divergence"] is None
    pairs = {(c["output"], c["pair"]) for c in report["comparisons"]}
    assert pairs == {(o, p) for o in OUTPUT_NAMES for p in ("torch-ort", "torch-tf", "torch-tf_xla", "ort-tf", "ort-tf_xla")}
    assert all(c["max_abs"] <= 1e-5 for c in report["comparisons"])
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def test_onnx_records_origin_and_keeps_batchnorm(exported_autovc):
    out, _ = exported_autovc
    model = onnx.load(str(out / "model.onnx"), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["autovc.weights_origin"]) == {"kind": "random", "seed": 0}
    assert props["opset"] == "17"
    assert sum(node.op_type == "BatchNormalization" for node in model.graph.node) == 3 + 3 + 5


@pytest.mark.parametrize("batch,frames", [(1, 45), (4, 77)])
def test_saved_model_runs_without_our_packages_and_matches_torch(exported_autovc, tmp_path, batch, frames):
    """The SavedModel loads in a process that never imports onnx_tf or custom_ops, keeps batch and
    time dynamic, and agrees with torch to 1e-5 max abs (T not a multiple of 32)."""
    out, _ = exported_autovc
    rng = np.random.default_rng(batch * 1000 + frames)
    inputs = {
        "mel": rng.uniform(0, 1, (batch, frames, 80)).astype(np.float32),
        "emb_src": rng.normal(0, 0.05, (batch, 256)).astype(np.float32),
        "emb_trg": rng.normal(0, 0.05, (batch, 256)).astype(np.float32),
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({str(out / "saved_model")!r})
        run = model.signatures["serving_default"]
        for spec in run.structured_input_signature[1].values():
            assert spec.shape[0] is None and (spec.shape.rank < 3 or spec.shape[1] is None), spec
        inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
        outputs = run(**{{k: tf.constant(v) for k, v in inputs.items()}})
        np.savez({str(tmp_path / "outputs.npz")!r}, **{{k: v.numpy() for k, v in outputs.items()}})
        assert not [m for m in sys.modules if m.startswith(("onnx_tf", "custom_ops", "pipeline"))]
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    tf_outputs = dict(np.load(tmp_path / "outputs.npz"))

    generator, _ = random_generator(0)
    with torch.no_grad():
        expected = AutoVC(generator).eval()(*(torch.from_numpy(inputs[n]) for n in INPUT_NAMES))
    for name, want in zip(OUTPUT_NAMES, expected):
        got = tf_outputs[name]
        assert got.shape == tuple(want.shape), name
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0, err_msg=name)


def test_serving_xla_runs_without_our_packages_and_matches_torch(exported_autovc, tmp_path):
    """``serving_xla`` (XLA-compiled, T bucketed to multiples of 32) loads and runs in a process
    that never imports our packages, and agrees with torch to 1e-5 max abs at B in {1, 3} and
    T in {1, 31, 77, 512} (T=1 and T=31 fall in one length bucket)."""
    out, _ = exported_autovc
    shapes = [(batch, frames) for batch in (1, 3) for frames in (1, 31, 77, 512)]
    rng = np.random.default_rng(12)
    cases = {}
    for batch, frames in shapes:
        cases[f"{batch}x{frames}"] = {
            "mel": rng.uniform(0, 1, (batch, frames, 80)).astype(np.float32),
            "emb_src": rng.normal(0, 0.05, (batch, 256)).astype(np.float32),
            "emb_trg": rng.normal(0, 0.05, (batch, 256)).astype(np.float32),
        }
        np.savez(tmp_path / f"in_{batch}x{frames}.npz", **cases[f"{batch}x{frames}"])
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({str(out / "saved_model")!r})
        run = model.signatures["serving_xla"]
        for case in {list(cases)!r}:
            inputs = dict(np.load({str(tmp_path)!r} + f"/in_{{case}}.npz"))
            outputs = run(**{{k: tf.constant(v) for k, v in inputs.items()}})
            np.savez({str(tmp_path)!r} + f"/out_{{case}}.npz", **{{k: v.numpy() for k, v in outputs.items()}})
        assert not [m for m in sys.modules if m.startswith(("onnx_tf", "custom_ops", "pipeline"))]
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    generator, _ = random_generator(0)
    module = AutoVC(generator).eval()
    for case, inputs in cases.items():
        tf_outputs = dict(np.load(tmp_path / f"out_{case}.npz"))
        with torch.no_grad():
            expected = module(*(torch.from_numpy(inputs[n]) for n in INPUT_NAMES))
        for name, want in zip(OUTPUT_NAMES, expected):
            got = tf_outputs[name]
            assert got.shape == tuple(want.shape), (case, name)
            np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0, err_msg=f"{case} {name}")
