"""Per-layer localisation looks at the SavedModel under test: its weights are compared with the
ONNX initializers, so a stale or edited artefact is named, with its PyTorch module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import run_cli
from onnx import TensorProto, helper, numpy_helper

from pipeline.parity.layers import compare_weights, saved_model_weights


def _conv_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 8])
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3)).astype(np.float32), "net.conv.weight")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "net.conv.bias")
    node = helper.make_node("Conv", ["x", "net.conv.weight", "net.conv.bias"], ["y"], name="/net/conv/Conv", pads=[1, 1])
    graph = helper.make_graph([node], "g", [x], [y], initializer=[w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_weights_of_a_saved_model_are_compared_by_name_with_transposes_undone(tmp_path: Path) -> None:
    from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model

    model = _conv_model()
    write_saved_model(OnnxGraphModule(model), tmp_path / "sm")
    stored = saved_model_weights(tmp_path / "sm")
    assert sorted(stored) == ["net.conv.bias", "net.conv.weight"]
    assert stored["net.conv.weight"].shape == (3, 3, 4)  # stored as the Conv handler reads it
    assert compare_weights(model, stored) == []

    edited = dict(stored)
    edited["net.conv.weight"] = edited["net.conv.weight"].copy()
    edited["net.conv.weight"][0, 1, 2] += 0.5
    [changed] = compare_weights(model, edited)
    assert (changed.kind, changed.initializer, changed.torch_module, changed.onnx_nodes) == (
        "value", "net.conv.weight", "net.conv", ["/net/conv/Conv"])
    assert changed.elements_differing == 1 and changed.max_abs == pytest.approx(0.5)

    odd = {"net.conv.weight": np.zeros((2, 2), np.float32), "stray": np.zeros(1, np.float32)}
    found = compare_weights(model, odd)
    assert {w.initializer: w.kind for w in found} == {"net.conv.weight": "shape", "net.conv.bias": "missing", "stray": "extra"}
    assert [w.describe() for w in found] == [
        "weight net.conv.weight (torch module net.conv, node /net/conv/Conv): shape [2, 2] in the SavedModel, "
        "[4, 3, 3] in the ONNX model",
        "weight net.conv.bias (torch module net.conv, node /net/conv/Conv): not in the SavedModel",
        "weight stray (no node): in the SavedModel only",
    ]


def test_a_folder_that_is_not_a_saved_model_of_ours_is_not_checked(tmp_path: Path) -> None:
    assert saved_model_weights(tmp_path) is None


@pytest.mark.slow
def test_tampered_onnx_against_its_untampered_saved_model_names_decoder_lstm1(
    exported_autovc: tuple[Path, str], tmp_path: Path
) -> None:
    """decoder.lstm1's input weights W scaled by 1.01 in the ONNX model; the SavedModel is the
    untampered conversion. The re-translated nodes agree; the weights do not."""
    out, _ = exported_autovc
    model = onnx.load(out / "model.onnx")
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM" and "/decoder/lstm1/" in n.name)
    init = next(i for i in model.graph.initializer if i.name == lstm.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), init.name))
    onnx.save(model, tmp_path / "tampered.onnx")

    result = run_cli("parity", "--onnx", str(tmp_path / "tampered.onnx"), "--saved-model", str(out / "saved_model"),
                     "--report", str(tmp_path / "report"))
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    [mismatch] = report["per_layer"]["weight_mismatches"]
    assert mismatch["initializer"] == lstm.input[1] and mismatch["kind"] == "value"
    assert mismatch["torch_module"].endswith("decoder.lstm1")
    first = report["first_divergence"]
    assert first["kind"] == "weight" and first["torch_module"].endswith("decoder.lstm1")
    assert first["onnx_node"] == lstm.name
    terminal = result.stderr
    assert "decoder.lstm1" in terminal.strip().splitlines()[-1]
    assert "SavedModel weights: 1 differ" in terminal
    assert "not the SavedModel under test" in terminal
    assert "decoder.lstm1" in (tmp_path / "report" / "report.html").read_text()


def test_agreeing_nodes_beside_a_failing_pair_always_say_why() -> None:
    from pipeline.parity import LayerReport, Tolerance
    from pipeline.parity.layers import WeightMismatch

    clean = LayerReport(tolerance=Tolerance(1e-5, 1e-4), nodes=[], nodes_total=0, weights_compared=3)
    assert clean.nodes_line(set()) is None
    assert "SavedModel's own graph" in clean.nodes_line({"ort-tf", "torch-tf"})
    assert "involve PyTorch" in clean.nodes_line({"torch-ort"})
    stale = WeightMismatch("w", "missing", [], None, None, [2], None)
    edited = LayerReport(tolerance=Tolerance(1e-5, 1e-4), nodes=[], nodes_total=0, weight_mismatches=[stale],
                         weights_compared=3)
    assert "weights differ" in edited.nodes_line({"ort-tf"})
    assert "SavedModel weights: 1 differ" in edited.weights_line() and "w (no node)" in edited.weights_line()
