"""The provenance record never fails a run: no git, a folder that is not a checkout, a file that
cannot be read all give nulls; paths inside an output folder being written are made relative."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from pipeline.runtime import provenance


def test_git_state_is_null_when_git_cannot_be_run(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert provenance.git_state(REPO_ROOT / "pipeline") is None
    assert provenance.tool()["git"] is None


def test_git_state_is_null_outside_a_checkout(tmp_path):
    assert provenance.git_state(tmp_path) is None


def test_git_state_is_null_for_a_folder_the_enclosing_checkout_does_not_track(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "venv" / "pkg").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "tracked.txt").write_text("x")
    subprocess.run([*git, "add", "tracked.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (repo / "venv" / "pkg" / "mod.py").write_text("")
    assert provenance.git_state(repo) is not None
    assert provenance.git_state(repo / "venv" / "pkg") is None  # untracked, e.g. an installed copy


def test_git_state_names_the_commit_of_this_checkout():
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout or no git")
    state = provenance.git_state(REPO_ROOT / "pipeline")
    assert state is not None and state["commit"] == head.stdout.strip() and isinstance(state["dirty"], bool)


def test_input_files_are_hashed_and_unreadable_ones_recorded_as_null(tmp_path):
    out = tmp_path / ".out.partial-abcd1234"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"onnx bytes")
    outside = tmp_path / "x.npy"
    outside.write_bytes(b"npy bytes")
    records = provenance.input_files(
        [("mel", outside), ("onnx_model", out / "model.onnx"), ("emb_src", None), ("wav", tmp_path / "gone.wav")],
        relative_to=out,
    )
    assert records == [
        {"role": "mel", "path": str(outside), "bytes": 9, "sha256": hashlib.sha256(b"npy bytes").hexdigest()},
        {"role": "onnx_model", "path": "model.onnx", "bytes": 10, "sha256": hashlib.sha256(b"onnx bytes").hexdigest()},
        {"role": "wav", "path": str(tmp_path / "gone.wav"), "bytes": None, "sha256": None},
    ]


def test_the_command_line_is_what_the_cli_was_given(monkeypatch):
    monkeypatch.setattr(provenance, "_command", None)
    assert provenance.collect()["command"] is None  # a library call: no command line
    provenance.record_command(["parity", "--report", "my report", "--mel", "a.npy"])
    command = provenance.command()
    assert command["argv"] == ["python -m pipeline", "parity", "--report", "my report", "--mel", "a.npy"]
    assert command["shell"] == "python -m pipeline parity --report 'my report' --mel a.npy"
    assert Path(command["cwd"]) == Path.cwd()
