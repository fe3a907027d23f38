"""Running the CLI as a user does (child process, optional signal on a progress line) and
checking what a run printed and left on disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclass
class Finished:
    """A finished child: exit code (negative: killed by that signal), stderr, peak RSS."""

    returncode: int
    stderr: str
    max_rss_bytes: int


def run_watched(
    *args: str,
    when: str | None = None,
    then: Callable[[subprocess.Popen], None] | None = None,
    timeout: float = 900,
) -> Finished:
    """``python -m pipeline ARGS``; ``then(process)`` runs once, as soon as a stderr line equals
    ``when`` (e.g. ``"[parity] ..."``). The peak RSS is the child's own (``wait4``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=ENV,
    )
    assert process.stderr is not None
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        process.kill()

    watchdog = threading.Timer(timeout, stop)
    watchdog.start()
    lines = []
    try:
        with process.stderr:
            for line in process.stderr:
                lines.append(line)
                if then is not None and line.rstrip("\n") == when:
                    then(process)
                    then = None
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        watchdog.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    assert not timed_out.is_set(), f"no exit within {timeout} s:\n" + "".join(lines)[-3000:]
    return Finished(process.returncode, "".join(lines), usage.ru_maxrss * 1024)


def assert_one_error(returncode: int, stderr: str, exit_code: int, *fragments: str) -> str:
    """The run exited with ``exit_code``; the last stderr line is its only ``error:`` line and
    contains every fragment; no traceback was printed. Returns that line."""
    assert returncode == exit_code, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), stderr[-3000:]
    assert [line for line in lines if line.startswith("error")] == [lines[-1]], stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[-1]


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def leftovers(destination: Path) -> list[str]:
    """Siblings a run into ``destination`` may create, except its lock file."""
    prefix = f".{destination.name}."
    return sorted(p.name for p in destination.parent.iterdir()
                  if p.name.startswith(prefix) and not p.name.endswith(".lock"))
