"""Output folders appear whole or not at all, and never replace a folder that is not ours."""

import json
import subprocess
import sys
import textwrap

import pytest

from pipeline.runtime.artifacts import MANIFEST, AtomicOutputDir, is_ours
from pipeline.runtime.errors import PipelineError, UsageError


def _write(dest, text, **kwargs):
    with AtomicOutputDir(dest, **kwargs) as temp:
        (temp / "payload.txt").write_text(text)


def _siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock"))


def test_success_publishes_with_manifest(tmp_path):
    dest = tmp_path / "out"
    _write(dest, "one")
    assert (dest / "payload.txt").read_text() == "one"
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest["files"] == ["payload.txt"]
    assert is_ours(dest)
    assert _siblings(dest) == ["out"]


def test_failure_leaves_previous_output_and_no_partial(tmp_path):
    dest = tmp_path / "out"
    _write(dest, "one")
    with pytest.raises(RuntimeError):
        with AtomicOutputDir(dest) as temp:
            (temp / "payload.txt").write_text("two")
            raise RuntimeError("stage failed")
    assert (dest / "payload.txt").read_text() == "one"
    assert _siblings(dest) == ["out"]


def test_previous_output_of_ours_is_replaced(tmp_path):
    dest = tmp_path / "out"
    _write(dest, "one")
    _write(dest, "two")
    assert (dest / "payload.txt").read_text() == "two"
    assert _siblings(dest) == ["out"]


def test_foreign_folder_is_refused_unless_forced(tmp_path):
    dest = tmp_path / "photos"
    dest.mkdir()
    (dest / "holiday.jpg").write_text("precious")
    with pytest.raises(UsageError, match="not written by"):
        _write(dest, "one")
    assert (dest / "holiday.jpg").read_text() == "precious"
    _write(dest, "one", force=True)
    assert not (dest / "holiday.jpg").exists()


def test_empty_existing_folder_is_accepted(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    _write(dest, "one")
    assert (dest / "payload.txt").exists()


def test_file_in_the_way_is_a_usage_error(tmp_path):
    dest = tmp_path / "out"
    dest.write_text("a file")
    with pytest.raises(UsageError, match="not a folder"):
        _write(dest, "one")


def test_unwritable_parent_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="cannot write"):
        _write(blocker / "out", "one")


def test_second_concurrent_writer_fails_clearly(tmp_path):
    dest = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pipeline.runtime.artifacts import AtomicOutputDir
            with AtomicOutputDir({str(dest)!r}) as temp:
                (temp / "payload.txt").write_text("first")
                print("holding", flush=True)
                sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(PipelineError, match="another run is writing"):
            _write(dest, "second")
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
    assert (dest / "payload.txt").read_text() == "first"


def test_a_subfolder_our_manifest_lists_is_ours(tmp_path):
    """An export's report/ (listed in the export's manifest) may be rewritten by parity --report."""
    dest = tmp_path / "export"
    with AtomicOutputDir(dest) as temp:
        (temp / "report").mkdir()
        (temp / "report" / "report.json").write_text("{}")
    assert is_ours(dest / "report")
    (dest / "photos").mkdir()
    (dest / "photos" / "holiday.jpg").write_text("precious")
    assert not is_ours(dest / "photos")
    _write(dest / "report", "rewritten")
    assert (dest / "report" / "payload.txt").read_text() == "rewritten"
