"""Two runs with the same weights and flags give a byte-identical ``model.onnx`` and the same
numbers in ``report.json``; the records say what is needed to run it again."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx
import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

# Keys of report.json that describe when and where a run happened, not what it computed.
RUN_SPECIFIC = ("created_utc", "timings_s")
RUN_SPECIFIC_MODEL = ("onnx_path", "saved_model_dir")
RUN_SPECIFIC_CASE = ("seconds",)
# The command line names the output folder (and --force): where a run wrote, not what it computed.
RUN_SPECIFIC_PROVENANCE = ("command",)


def _without_run_specific_provenance(record: dict[str, Any]) -> dict[str, Any]:
    for key in RUN_SPECIFIC_PROVENANCE:
        record["provenance"].pop(key)
    return record


def _report(out: Path) -> dict[str, Any]:
    report = json.loads((out / "report" / "report.json").read_text())
    for key in RUN_SPECIFIC:
        report.pop(key)
    for key in RUN_SPECIFIC_MODEL:
        report["model"].pop(key)
    for case in report["cases"]:
        for key in RUN_SPECIFIC_CASE:
            case.pop(key)
    return _without_run_specific_provenance(report)


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a JSON value (keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_weights_and_flags_give_a_byte_identical_onnx(exported_autovc, second_export):
    first, _ = exported_autovc
    assert second_export.run.returncode == 0, second_export.run.stderr[-3000:]
    digests = {hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest() for out in (first, second_export.out)}
    assert len(digests) == 1


def test_same_weights_and_flags_give_the_same_report_numbers(exported_autovc, second_export):
    first, second = _report(exported_autovc[0]), _report(second_export.out)
    assert len(first["comparisons"]) == 3 * 5 and first["per_layer"]["nodes"]
    assert first == second


def test_same_weights_and_flags_give_the_same_manifest_but_for_timings(exported_autovc, second_export):
    first, second = _manifest(exported_autovc[0]), _manifest(second_export.out)
    assert first.pop("timings_s").keys() == second.pop("timings_s").keys()
    assert first["provenance"]["command"]["argv"] != second["provenance"]["command"]["argv"]
    assert _without_run_specific_provenance(first) == _without_run_specific_provenance(second)


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


def test_reports_and_manifests_record_the_final_folder_not_the_temporary_one(exported_autovc, long_export):
    assert long_export.run.returncode == 0, long_export.run.stderr[-3000:]
    for out in (exported_autovc[0], long_export.out):
        for record in (out / "report" / "report.json", out / "manifest.json"):
            data = json.loads(record.read_text())
            assert not [s for s in _strings(data) if ".partial-" in s], record
        report = json.loads((out / "report" / "report.json").read_text())
        assert report["model"]["onnx_path"] == "model.onnx"
        assert report["model"]["saved_model_dir"] == "saved_model"
        for record in report["provenance"]["inputs"]:
            if record["role"] in ("onnx_model", "saved_model"):
                assert (out / record["path"]).is_file() and _sha256(out / record["path"]) == record["sha256"]


def test_records_name_the_tool_commit_command_and_every_input_file(long_export):
    """Enough to run it again: the tool's version and commit, the exact command line, and the
    sha256 of the checkpoint, the wav, and of the ONNX model and SavedModel the parity read."""
    assert long_export.run.returncode == 0, long_export.run.stderr[-3000:]
    out = long_export.out
    report = json.loads((out / "report" / "report.json").read_text())
    manifest = _manifest(out)
    argv = ["python -m pipeline", "export", "--checkpoint", str(long_export.checkpoint), "--wav", str(long_export.wav),
            "--max-frames", "501", "--device", "cpu", "--out", str(out)]
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    for record in (report["provenance"], manifest["provenance"]):
        assert record["tool"]["name"] == "autovc-onnx-tf"
        assert record["tool"]["version"] == metadata.version("autovc-onnx-tf")
        if head.returncode == 0:
            assert record["tool"]["git"]["commit"] == head.stdout.strip()
            assert isinstance(record["tool"]["git"]["dirty"], bool)
        assert record["command"]["argv"] == argv
        assert record["command"]["shell"] == " ".join(argv)
    inputs = [(r["role"], r["path"], r["sha256"]) for r in report["provenance"]["inputs"]]
    assert inputs == [
        ("checkpoint", str(long_export.checkpoint), _sha256(long_export.checkpoint)),
        ("wav", str(long_export.wav), _sha256(long_export.wav)),
        ("onnx_model", "model.onnx", _sha256(out / "model.onnx")),
        ("saved_model", "saved_model/saved_model.pb", _sha256(out / "saved_model" / "saved_model.pb")),
    ]
    assert manifest["provenance"]["inputs"] == report["provenance"]["inputs"][:2]
    assert report["chunking"]["chunks"] == 1 and report["chunking"]["frames_budget"] == 16384
