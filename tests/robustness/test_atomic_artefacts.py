"""Output folders appear whole or not at all, under real ``export`` runs: Ctrl-C at several
stages and SIGKILL leave the previous artefact byte for byte, the next run clears what a killed
run left, and a second run into the same folder fails at once while the first one finishes."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from pipeline.runtime.artifacts import TOOL_NAME

from .helpers import assert_one_error, leftovers, run_watched, tree_digest

pytestmark = pytest.mark.slow

INTERRUPTED = "interrupted: no output was written"


@pytest.fixture
def previous(exported_autovc, tmp_path) -> tuple[Path, dict[str, str]]:
    """A copy of a real export (ours: it has our manifest) and the digest of every file in it."""
    source, _ = exported_autovc
    dest = tmp_path / "autovc"
    shutil.copytree(source, dest)
    return dest, tree_digest(dest)


def _interrupt(process) -> None:
    process.send_signal(signal.SIGINT)


def _assert_interrupted(returncode: int, stderr: str) -> None:
    assert returncode == 130, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert lines[-1] == INTERRUPTED, stderr[-3000:]
    assert lines.count(INTERRUPTED) == 1
    assert not [line for line in lines if line.startswith("error")]
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.parametrize("stage", ["torch -> onnx", "write savedmodel", "parity"])
def test_ctrl_c_keeps_the_previous_artefact_and_leaves_nothing_partial(previous, stage):
    dest, digest = previous
    run = run_watched("export", "--out", str(dest), when=f"[{stage}] ...", then=_interrupt)
    _assert_interrupted(run.returncode, run.stderr)
    assert f"[{stage}] done" not in run.stderr
    assert tree_digest(dest) == digest
    assert leftovers(dest) == []


def test_a_killed_run_leaves_the_previous_artefact_and_the_next_run_clears_its_temp_folder(previous):
    dest, digest = previous
    killed = run_watched("export", "--out", str(dest), when="[torch -> onnx] ...", then=lambda p: p.kill())
    assert killed.returncode == -signal.SIGKILL
    assert tree_digest(dest) == digest
    [stale] = leftovers(dest)
    assert stale.startswith(f".{dest.name}.partial-")  # hidden, and never under the destination's name

    next_run = run_watched("export", "--out", str(dest), when="[devices] ...", then=_interrupt)
    _assert_interrupted(next_run.returncode, next_run.stderr)
    assert leftovers(dest) == []
    assert tree_digest(dest) == digest


def test_a_run_killed_while_swapping_folders_is_undone_by_the_next_run(previous):
    """A kill between moving the previous artefact aside and moving the new one in leaves the
    destination missing; the next run puts the previous artefact back before anything else."""
    dest, digest = previous
    aside = dest.parent / f".{dest.name}.old-k1lled00"
    aside.mkdir()
    os.rename(dest, aside / "previous")
    run = run_watched("export", "--out", str(dest), when="[devices] ...", then=_interrupt)
    _assert_interrupted(run.returncode, run.stderr)
    assert tree_digest(dest) == digest
    assert leftovers(dest) == []


def test_a_second_run_into_the_same_folder_fails_at_once_and_the_first_one_finishes(second_export):
    out = second_export.out
    rival = second_export.rival
    assert_one_error(rival.returncode, rival.stderr, 1, f"another run is writing to {out} right now")
    assert second_export.run.returncode == 0, second_export.run.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tool"] == TOOL_NAME and manifest["parity"] == "pass"
    assert not (out / "notes.txt").exists()  # --force replaced the folder that was not ours
    assert leftovers(out) == []
