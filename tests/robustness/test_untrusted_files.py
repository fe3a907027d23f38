"""Untrusted files: a pickle that would run code is refused and runs nothing, ONNX external data
cannot point outside the model's folder, and the sources load nothing unsafely."""

from __future__ import annotations

import ast
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import REPO_ROOT, run_cli
from onnx import TensorProto, helper, numpy_helper

from .helpers import assert_one_error


class CreatesFile:
    """Unpickling this calls ``open(path, "w")``: the file appears."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable, tuple[str, str]]:
        return open, (str(self.path), "w")


def _torch_zip(path: Path, payload: object) -> None:
    torch.save({"model": payload}, path)


def _torch_legacy(path: Path, payload: object) -> None:
    torch.save({"model": payload}, path, _use_new_zipfile_serialization=False)


def _plain_pickle(path: Path, payload: object) -> None:
    path.write_bytes(pickle.dumps({"model": payload}, protocol=2))


def _torch_load_unsafely(path: Path) -> None:
    torch.load(path, weights_only=False)


def _pickle_load(path: Path) -> None:
    pickle.loads(path.read_bytes())


@pytest.mark.parametrize("flag", ["--checkpoint", "--speaker-encoder"])
@pytest.mark.parametrize(
    "write,load_unsafely",
    [(_torch_zip, _torch_load_unsafely), (_torch_legacy, _torch_load_unsafely), (_plain_pickle, _pickle_load)],
    ids=["zip", "legacy", "pickle"],
)
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, flag, write, load_unsafely):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.ckpt"
    write(checkpoint, CreatesFile(marker))
    out = tmp_path / "out"
    result = run_cli("export", flag, str(checkpoint), "--out", str(out))
    assert_one_error(result.returncode, result.stderr, 2, "checkpoint refused", "pickled Python objects",
                     str(checkpoint))
    assert not marker.exists()
    assert not out.exists()
    load_unsafely(checkpoint)  # the payload is live: loading it unsafely does create the file
    assert marker.exists()


def test_mel_npy_with_pickled_objects_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    mel = tmp_path / "mel.npy"
    np.save(mel, np.array([CreatesFile(marker)], dtype=object), allow_pickle=True)
    result = run_cli("export", "--mel", str(mel), "--out", str(tmp_path / "out"))
    assert_one_error(result.returncode, result.stderr, 2, f"mel file {mel} is not a readable .npy array")
    assert not marker.exists()
    np.load(mel, allow_pickle=True)
    assert marker.exists()


# --- ONNX external data ---

WEIGHTS = np.arange(4, dtype=np.float32)


def _model_with_external_weights(path: Path, location: str) -> None:
    """``y = x + W`` with ``W`` stored as external data at ``location``."""
    weights = numpy_helper.from_array(WEIGHTS, "W")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("length", str(WEIGHTS.nbytes))):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"])], "g", [x], [y], [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


ESCAPES = {"../secret.bin": "dotdot.onnx", "absolute": "absolute.onnx", "symlink": "symlink.onnx"}


@pytest.fixture
def escaping_models(tmp_path) -> dict[str, Path]:
    """Models whose weights file exists (so they would convert) but lies outside their folder."""
    outside = tmp_path / "secret.bin"
    outside.write_bytes(WEIGHTS.tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(outside, folder / "link.bin")
    locations = {"../secret.bin": "../secret.bin", "absolute": str(outside), "symlink": "link.bin"}
    for case, location in locations.items():
        _model_with_external_weights(folder / ESCAPES[case], location)
    return {case: folder / name for case, name in ESCAPES.items()}


@pytest.mark.parametrize("case", ["../secret.bin", "absolute", "symlink"])
def test_convert_refuses_external_data_outside_the_model_folder(tmp_path, escaping_models, case):
    model = escaping_models[case]
    result = run_cli("convert", str(model), "--out", str(tmp_path / "sm"))
    assert_one_error(result.returncode, result.stderr, 2, "refers to external data",
                     "outside the model's folder", "refusing to read it")
    assert not (tmp_path / "sm").exists()


@pytest.mark.parametrize("case", ["../secret.bin", "absolute"])
def test_parity_refuses_external_data_outside_the_model_folder(tmp_path, escaping_models, case):
    report = tmp_path / "report"
    result = run_cli("parity", "--onnx", str(escaping_models[case]), "--saved-model", str(tmp_path / "sm"),
                     "--report", str(report), "--device", "cpu")
    assert_one_error(result.returncode, result.stderr, 2, "outside the model's folder", "refusing to read it")
    assert not report.exists()


# --- The sources ---

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "os.system", "os.popen", "yaml.load", "yaml.unsafe_load"}
# Loader calls that are safe only with this keyword set to this constant.
REQUIRED_KEYWORD = {
    "torch.load": ("weights_only", True),
    "np.load": ("allow_pickle", False),
    "numpy.load": ("allow_pickle", False),
    "onnx.load": ("load_external_data", False),
    "onnx.load_model": ("load_external_data", False),
}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_uses(source: str) -> list[str]:
    """Every construct in ``source`` that could run code from a file or string, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in UNSAFE_CALLS:
                found.append(f"{node.lineno}: {name}()")
            elif name in REQUIRED_KEYWORD:
                keyword, value = REQUIRED_KEYWORD[name]
                given = keywords.get(keyword)
                if not (isinstance(given, ast.Constant) and given.value is value):
                    found.append(f"{node.lineno}: {name}() without {keyword}={value}")
            shell = keywords.get("shell")
            if isinstance(shell, ast.Constant) and shell.value is True:
                found.append(f"{node.lineno}: {name}(shell=True)")
    return found


def test_the_scan_finds_each_unsafe_construct():
    source = "\n".join([
        "import pickle", "from dill import loads", "eval('1')", "exec('x = 1')", "os.system('ls')",
        "torch.load(p)", "torch.load(p, weights_only=False)", "np.load(p)", "onnx.load(p)",
        "subprocess.run(cmd, shell=True)",
        # safe:
        "model.eval()", "re.compile('x')", "torch.load(p, weights_only=True)",
        "np.load(p, allow_pickle=False)", "onnx.load(p, load_external_data=False)",
    ])
    assert sorted(int(line.split(":")[0]) for line in unsafe_uses(source)) == list(range(1, 11))


def test_no_unsafe_loading_in_the_sources():
    files = sorted((REPO_ROOT / "pipeline").rglob("*.py")) + sorted((REPO_ROOT / "custom_ops").rglob("*.py"))
    assert len(files) > 20
    found = [f"{path.relative_to(REPO_ROOT)}:{use}" for path in files for use in unsafe_uses(path.read_text())]
    assert found == []
