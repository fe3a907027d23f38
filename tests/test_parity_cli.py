"""`python -m pipeline parity` through the real CLI: three-way on the exported AutoVC (PyTorch
rebuilt from the seed recorded in the ONNX metadata), a tolerance failure exits 1 and names the
failing outputs and pairs, and any other ONNX model is compared two ways."""

import json
import warnings

import numpy as np
import pytest
import torch
from conftest import run_cli

pytestmark = pytest.mark.slow


def test_parity_three_way_on_exported_model(exported_autovc, tmp_path):
    out, _ = exported_autovc
    report = tmp_path / "report"
    result = run_cli("parity", "--onnx", str(out / "model.onnx"), "--saved-model", str(out / "saved_model"),
                     "--report", str(report), "--no-per-layer")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((report / "report.json").read_text())
    assert data["passed"] and [p["name"] for p in data["pairs"]] == ["torch-ort", "torch-tf", "torch-tf_xla", "ort-tf", "ort-tf_xla"]
    assert data["weights_origin"] == "random weights, seed 0"
    assert (report / "report.html").is_file()


def test_parity_tolerance_failure_exits_1_and_names_what_failed(exported_autovc, tmp_path):
    out, _ = exported_autovc
    result = run_cli("parity", "--onnx", str(out / "model.onnx"), "--saved-model", str(out / "saved_model"),
                     "--report", str(tmp_path / "report"), "--no-per-layer", "--atol", "0", "--rtol", "0",
                     "--tolerance", "codes=1e-3,0")
    assert result.returncode == 1, result.stderr[-3000:]
    verdict = result.stderr.strip().splitlines()[-1]
    assert verdict.startswith("parity FAIL:")
    assert "mel_postnet torch-tf" in verdict and "codes" not in verdict
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert not data["passed"]


def test_parity_two_way_for_any_onnx_model(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3, padding=1), torch.nn.Tanh()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 4, 10),), str(tmp_path / "net.onnx"), dynamo=False,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b", 2: "t"}})
    converted = run_cli("convert", str(tmp_path / "net.onnx"), "--out", str(tmp_path / "sm"))
    assert converted.returncode == 0, converted.stderr[-3000:]
    x = np.random.default_rng(1).standard_normal((2, 4, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run_cli("parity", "--onnx", str(tmp_path / "net.onnx"), "--saved-model", str(tmp_path / "sm"),
                     "--report", str(tmp_path / "report"), "--input", f"x={tmp_path / 'x.npy'}")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [p["name"] for p in data["pairs"]] == ["ort-tf", "ort-tf_xla"]
    assert data["comparisons"][0]["shape"]["candidate"] == [2, 8, 7]
