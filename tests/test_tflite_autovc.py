"""`export --tflite` on AutoVC, end to end through the real CLI: a user checkpoint (a saved random
state dict of a small AutoVC, LSTMs and BatchNorm included) and the default model. The written
model.tflite holds builtin ops only, the parity report holds the litert pairs within 1e-5, and
after resize_tensor_input it agrees with torch within 1e-5 at every B and T tried."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from pipeline.models.autovc import AutoVC, load_generator, random_generator
from pipeline.models.autovc.spec import INPUT_NAMES, OUTPUT_NAMES
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SMALL = {"dim_neck": 8, "dim_emb": 16, "dim_pre": 32, "freq": 8, "conv_channels": 32, "decoder_lstm_size": 48}
LITERT_PAIRS = ("torch-litert", "ort-litert")


@pytest.fixture(scope="module")
def checkpoint_export(tmp_path_factory) -> tuple[Path, Path, str]:
    """A user checkpoint (a bare state dict of random weights) exported with --tflite and one
    quantized variant: the output folder, the checkpoint and stderr."""
    folder = tmp_path_factory.mktemp("tflite-autovc")
    generator, _ = random_generator(3, **SMALL)
    checkpoint = folder / "mine.ckpt"
    torch.save(generator.state_dict(), checkpoint)
    out = folder / "out"
    result = run_cli("export", "--checkpoint", str(checkpoint), "--freq", str(SMALL["freq"]), "--out", str(out),
                     "--tflite", "--tflite-quantize", "dynamic")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, checkpoint, result.stderr


def _inputs(batch: int, frames: int, dim_emb: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch * 10_000 + frames)
    return {
        "mel": rng.uniform(0.0, 1.0, (batch, frames, 80)).astype(np.float32),
        "emb_src": rng.normal(0.0, 0.1, (batch, dim_emb)).astype(np.float32),
        "emb_trg": rng.normal(0.0, 0.1, (batch, dim_emb)).astype(np.float32),
    }


def _litert(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The user's path: resize_tensor_input, allocate_tensors, set, invoke, get."""
    interpreter = Interpreter(model_path=str(path))
    inputs_at = interpreter.get_signature_runner().get_input_details()
    for name, value in inputs.items():
        interpreter.resize_tensor_input(inputs_at[name]["index"], value.shape)
    interpreter.allocate_tensors()
    for name, value in inputs.items():
        interpreter.set_tensor(inputs_at[name]["index"], value)
    interpreter.invoke()
    outputs_at = interpreter.get_signature_runner().get_output_details()
    return {name: interpreter.get_tensor(d["index"]) for name, d in outputs_at.items()}


def _torch(module: AutoVC, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        outputs = module(*(torch.from_numpy(inputs[name]) for name in INPUT_NAMES))
    return {name: value.numpy() for name, value in zip(OUTPUT_NAMES, outputs)}


def test_checkpoint_export_writes_a_builtin_only_tflite_with_its_own_stage(checkpoint_export):
    out, _, stderr = checkpoint_export
    assert "[write tflite] done in" in stderr
    assert stderr.strip().splitlines()[-1].startswith("parity PASS: 3 outputs x 7 pairs")
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"model.tflite", "model.dynamic.tflite"} <= set(manifest["files"])
    assert "write tflite" in manifest["timings_s"]
    models = {m["variant"]: m for m in manifest["tflite"]["models"]}
    assert set(models) == {"float32", "dynamic"}
    for model in models.values():
        assert model["ops"] and not [op for op in model["ops"] if op.startswith("CUSTOM")]
    assert models["dynamic"]["bytes"] < models["float32"]["bytes"]


def test_checkpoint_export_report_holds_litert_within_tolerance(checkpoint_export):
    out, _, _ = checkpoint_export
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["passed"] is True
    litert = [c for c in report["comparisons"] if c["pair"] in LITERT_PAIRS]
    assert {(c["output"], c["pair"]) for c in litert} == {(o, p) for o in OUTPUT_NAMES for p in LITERT_PAIRS}
    assert all(c["max_abs"] <= 1e-5 for c in litert)
    assert report["model"]["backend_models"] == {"litert": "model.tflite"}
    assert [i["role"] for i in report["provenance"]["inputs"]][-1] == "litert_model"
    dynamic = next(m for m in report["tflite"]["models"] if m["variant"] == "dynamic")
    assert set(dynamic["max_abs_vs_reference"]) == set(OUTPUT_NAMES)
    assert report["tflite"]["variants_reference"] == "torch"


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [1, 31, 77, 512])
def test_resized_tflite_matches_torch(checkpoint_export, batch, frames):
    out, checkpoint, _ = checkpoint_export
    generator, _ = load_generator(checkpoint, freq=SMALL["freq"])
    inputs = _inputs(batch, frames, SMALL["dim_emb"])
    expected = _torch(AutoVC(generator).eval(), inputs)
    got = _litert(out / "model.tflite", inputs)
    for name in OUTPUT_NAMES:
        assert got[name].shape == expected[name].shape, name
        assert np.max(np.abs(got[name] - expected[name])) <= 1e-5, name


@pytest.fixture(scope="module")
def default_export(tmp_path_factory) -> Path:
    """``export --tflite`` of the default Generator(32, 256, 512, 32), random weights seed 0."""
    out = tmp_path_factory.mktemp("tflite-default") / "autovc"
    result = run_cli("export", "--out", str(out), "--tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_default_autovc_exports_to_tflite(default_export):
    """Builtin ops only, parity within 1e-5 on every litert pair, and a resized batch of
    3 x 77 frames agrees with torch."""
    out = default_export
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["passed"] is True
    assert sum(c["pair"] in LITERT_PAIRS for c in report["comparisons"]) == len(LITERT_PAIRS) * len(OUTPUT_NAMES)
    ops = report["tflite"]["models"][0]["ops"]
    assert not [op for op in ops if op.startswith("CUSTOM")]
    generator, _ = random_generator(0)
    inputs = _inputs(3, 77, generator.dim_emb)
    expected = _torch(AutoVC(generator).eval(), inputs)
    got = _litert(out / "model.tflite", inputs)
    for name in OUTPUT_NAMES:
        assert np.max(np.abs(got[name] - expected[name])) <= 1e-5, name


def test_latency_benchmark_times_litert_beside_the_others(default_export):
    """The latency benchmark adds LiteRT when the artefact has model.tflite, checks it against
    torch and renders its column, ratio and the model sizes (the numbers belong to the benchmark)."""
    from benchmarks import latency, report
    from benchmarks.common import machine

    result = latency.run(default_export, [latency.Shape(1, 32, 1)], threads=1)
    (row,) = result["shapes"]
    assert set(row["stats_ms"]) == {latency.TORCH, latency.ORT, latency.TF, latency.TF_XLA, latency.LITERT}
    assert row["max_abs_vs_torch"][latency.LITERT] <= 1e-5
    assert result["model_bytes"][latency.LITERT] == (default_export / "model.tflite").stat().st_size
    results = {"command": "python -m benchmarks --only latency", "created_utc": "now", "quick": True,
               "machine": machine(), "latency": [{"threads": {"tensorflow_intra_op": 1}, **result}]}
    markdown = report.render(results)
    assert "| LiteRT ms |" in markdown and "| LiteRT/ORT |" in markdown
    assert "Model size: " in markdown and "LiteRT 113." in markdown
