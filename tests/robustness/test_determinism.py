"""Two runs with the same weights and flags give a byte-identical ``model.onnx`` and the same
numbers in ``report.json``; the records say what is needed to run it again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
import pytest

pytestmark = pytest.mark.slow

# Keys of report.json that describe when and where a run happened, not what it computed.
RUN_SPECIFIC = ("created_utc", "timings_s")
RUN_SPECIFIC_MODEL = ("onnx_path", "saved_model_dir")
RUN_SPECIFIC_CASE = ("seconds",)


def _report(out: Path) -> dict[str, Any]:
    report = json.loads((out / "report" / "report.json").read_text())
    for key in RUN_SPECIFIC:
        report.pop(key)
    for key in RUN_SPECIFIC_MODEL:
        report["model"].pop(key)
    for case in report["cases"]:
        for key in RUN_SPECIFIC_CASE:
            case.pop(key)
    return report


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def test_same_weights_and_flags_give_a_byte_identical_onnx(exported_autovc, second_export):
    first, _ = exported_autovc
    assert second_export.run.returncode == 0, second_export.run.stderr[-3000:]
    digests = {hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest() for out in (first, second_export.out)}
    assert len(digests) == 1


def test_same_weights_and_flags_give_the_same_report_numbers(exported_autovc, second_export):
    first, second = _report(exported_autovc[0]), _report(second_export.out)
    assert len(first["comparisons"]) == 9 and first["per_layer"]["nodes"]
    assert first == second


def test_same_weights_and_flags_give_the_same_manifest_but_for_timings(exported_autovc, second_export):
    first, second = _manifest(exported_autovc[0]), _manifest(second_export.out)
    assert first.pop("timings_s").keys() == second.pop("timings_s").keys()
    assert first == second


def test_records_name_weights_inputs_devices_and_versions(second_export):
    manifest = _manifest(second_export.out)
    assert manifest["weights"] == {"kind": "random", "seed": 0}
    assert manifest["hyperparameters"]["freq"] == 32
    assert manifest["inputs"]["shapes"]["mel"] == [1, 113, 80] and manifest["inputs"]["lengths"] == [113]
    assert manifest["devices"]["requested"] == "auto"
    report = json.loads((second_export.out / "report" / "report.json").read_text())
    for library in ("python", "numpy", "torch", "onnx", "onnxruntime", "tensorflow", "onnx_tf"):
        assert report["versions"][library], library
    assert report["model"]["opset"] == {"ai.onnx": 17}
    model = onnx.load(str(second_export.out / "model.onnx"), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["autovc.weights_origin"]) == {"kind": "random", "seed": 0}
    assert props["opset"] == "17"


def test_a_checkpoint_run_records_the_checkpoint_sha256(long_export):
    assert long_export.run.returncode == 0, long_export.run.stderr[-3000:]
    sha256 = hashlib.sha256(long_export.checkpoint.read_bytes()).hexdigest()
    weights = _manifest(long_export.out)["weights"]
    assert weights == {"kind": "checkpoint", "path": str(long_export.checkpoint), "sha256": sha256}
    model = onnx.load(str(long_export.out / "model.onnx"), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["autovc.weights_origin"])["sha256"] == sha256
