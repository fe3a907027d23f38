"""Every command that writes a folder refuses one it did not write (exit 2, one line, nothing
touched) unless --force, and publishes with the permissions a plain mkdir gives."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO_ROOT, run_cli
from onnx import TensorProto, helper

from pipeline.runtime.artifacts import MANIFEST, AtomicOutputDir, write_file
from pipeline.runtime.errors import UsageError


def _photos(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"\xff\xd8 precious")
    return photos


def _assert_refused(result: subprocess.CompletedProcess, photos: Path) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(photos) in lines[-1], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in photos.iterdir()) == ["holiday.jpg"]
    assert (photos / "holiday.jpg").read_bytes() == b"\xff\xd8 precious"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """y = tanh(x) + 1 as model.onnx and its SavedModel (converted in-process)."""
    folder = tmp_path_factory.mktemp("tiny")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [helper.make_node("Tanh", ["x"], ["t"], name="tanh"), helper.make_node("Add", ["t", "one"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=[one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, folder / "model.onnx")
    from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model

    write_saved_model(OnnxGraphModule(model), folder / "saved_model")
    return folder / "model.onnx", folder / "saved_model"


def test_export_refuses_a_foreign_folder(tmp_path: Path) -> None:
    photos = _photos(tmp_path)
    _assert_refused(run_cli("export", "--out", str(photos)), photos)


def test_convert_refuses_a_foreign_folder(tmp_path: Path, tiny_model: tuple[Path, Path]) -> None:
    photos = _photos(tmp_path)
    _assert_refused(run_cli("convert", str(tiny_model[0]), "--out", str(photos)), photos)


@pytest.mark.slow
def test_parity_refuses_a_foreign_report_folder_and_force_replaces_it(
    tmp_path: Path, tiny_model: tuple[Path, Path]
) -> None:
    photos = _photos(tmp_path)
    onnx_path, saved_model = tiny_model
    np.save(tmp_path / "x.npy", np.ones((2, 3), np.float32))
    args = ("parity", "--onnx", str(onnx_path), "--saved-model", str(saved_model), "--report", str(photos),
            "--input", f"x={tmp_path / 'x.npy'}")
    _assert_refused(run_cli(*args), photos)
    forced = run_cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert sorted(p.name for p in photos.iterdir()) == [MANIFEST, "report.html", "report.json", "summary.txt"]
    again = run_cli(*args)  # a report this tool wrote is replaced without --force
    assert again.returncode == 0, again.stderr[-3000:]


def test_train_parity_refuses_a_foreign_report_folder_before_training(tmp_path: Path) -> None:
    photos = _photos(tmp_path)
    _assert_refused(run_cli("train-parity", "--report", str(photos), "--steps", "1"), photos)


def test_benchmarks_refuse_a_folder_as_results_file(tmp_path: Path) -> None:
    photos = _photos(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "lstm", "--results", str(photos)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, stdin=subprocess.DEVNULL,
    )
    _assert_refused(result, photos)


def test_write_file_replaces_a_file_whole_and_never_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "latest.json"
    target.write_text("old")
    write_file(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]
    photos = _photos(tmp_path)
    with pytest.raises(UsageError, match="is a folder"):
        write_file(photos, "new")
    assert sorted(p.name for p in photos.iterdir()) == ["holiday.jpg"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_published_folder_and_file_get_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        with AtomicOutputDir(tmp_path / "out") as temp:
            (temp / "payload.txt").write_text("x")
        write_file(tmp_path / "results.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o666 & ~umask


def test_an_output_folder_holding_the_runs_own_input_is_refused_even_with_force(
    tmp_path: Path, tiny_model: tuple[Path, Path]
) -> None:
    """A converted SavedModel folder is ours, so --force is not what protects it: the check is."""
    onnx_path, saved_model = tiny_model
    before = sorted(p.relative_to(saved_model) for p in saved_model.rglob("*"))
    result = run_cli("parity", "--onnx", str(onnx_path), "--saved-model", str(saved_model),
                     "--report", str(saved_model), "--force")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "holds the input" in result.stderr.strip().splitlines()[-1]
    assert sorted(p.relative_to(saved_model) for p in saved_model.rglob("*")) == before
    converted = run_cli("convert", str(onnx_path), "--out", str(onnx_path.parent), "--force")
    assert converted.returncode == 2 and "holds the input" in converted.stderr, converted.stderr[-3000:]
    assert onnx_path.is_file()
