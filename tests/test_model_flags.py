"""A model's flags live in its spec: a third model (``tests/toy_model``, registered here only)
exports end to end with a flag of its own and an extra output folder, its flag is refused for
AutoVC, and the commands never name it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pipeline.cli import main
from pipeline.models import MODELS

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(MODELS, "toy", "tests.toy_model.spec")


@pytest.mark.slow
def test_a_third_model_exports_with_its_own_flags(toy_registered, tmp_path: Path, capsys) -> None:
    import tensorflow as tf

    out = tmp_path / "toy"
    assert main(["export", "--model", "toy", "--width", "8", "--dump-weights", "--out", str(out)]) == 0
    stderr = capsys.readouterr().err
    assert "[dump weights] done in" in stderr

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "toy" and manifest["parity"] == "pass"
    assert manifest["hyperparameters"] == {"width": 8}
    assert {"model.onnx", "saved_model/saved_model.pb", "report/report.json", "weights/conv.npy"} <= set(manifest["files"])
    assert "dump weights" in manifest["timings_s"]

    model = onnx.load(str(out / "model.onnx"))
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    weight = next(init for init in model.graph.initializer if init.name == conv.input[1])
    assert list(weight.dims) == [8, 3, 3]
    np.testing.assert_array_equal(np.load(out / "weights" / "conv.npy"), numpy_helper.to_array(weight))

    served = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    assert served(x=tf.zeros([2, 3, 5]))["y"].shape == (2, 8, 5)


def test_a_model_flag_is_refused_for_a_model_that_does_not_read_it(toy_registered, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["export", "--model", "autovc", "--width", "8", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: --width: not an option of --model autovc"
    assert not out.exists()


def test_help_names_the_model_that_reads_each_flag(toy_registered, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "output channels of the toy Conv1d (default 4) [--model toy]" in help_text
    assert "(default 32) [--model autovc]" in help_text
    assert "[--model autovc, dvector]" in help_text


def test_the_commands_never_name_a_model_package() -> None:
    for path in sorted((REPO_ROOT / "pipeline" / "commands").glob("*.py")):
        assert "toy" not in path.read_text().lower(), path
