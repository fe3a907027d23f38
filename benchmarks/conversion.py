"""Wall time and peak memory of ``python -m pipeline export``, whole and per stage.

The export runs in a child process, as a user runs it. Its stage lines on stderr
(``[stage] ...`` / ``[stage] done in``) are time-stamped as they arrive, and the child's
resident set size is sampled from ``/proc`` every few milliseconds, so each stage gets its wall
time (the manifest's ``timings_s``) and the peak RSS seen while it ran. The whole run's peak
RSS is the kernel's (``wait4``), as ``/usr/bin/time`` reports it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import load_average

SAMPLE_PERIOD_S = 0.01
_START = re.compile(r"^\[(?P<stage>[^\]]+)\] \.\.\.$")
_DONE = re.compile(r"^\[(?P<stage>[^\]]+)\] done in ")


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def run_export(out: Path, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run one export into ``out`` (must not exist) and measure it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "pipeline", "export", "--out", str(out), *extra_args]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append((time.perf_counter(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[tuple[float, int]] = []
    while True:
        finished_pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if finished_pid:
            break
        rss = _rss_bytes(child.pid)
        if rss is not None:
            samples.append((time.perf_counter(), rss))
        time.sleep(SAMPLE_PERIOD_S)
    ended = time.perf_counter()
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if child.returncode != 0:
        tail = "\n".join(line for _, line in lines[-30:])
        raise RuntimeError(f"export failed with exit code {child.returncode}:\n{tail}")

    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report" / "report.json").read_text())
    return {
        "command": " ".join(["python", "-m", "pipeline", "export", "--out", "DIR", *extra_args]),
        "load_average": load_average(),
        "wall_s": round(ended - started, 3),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "stages": _stages(lines, samples, (started, ended), manifest["timings_s"], report["timings_s"]),
    }


def _stages(
    lines: list[tuple[float, str]],
    samples: list[tuple[float, int]],
    run: tuple[float, float],
    timings: dict[str, float],
    parity_timings: dict[str, float],
) -> list[dict[str, Any]]:
    """One row per stage in the order they ran: wall seconds and the peak RSS during it;
    plus the time before the first stage (interpreter and imports) and after the last.
    ``run``: when the child started and when it exited."""
    started, ended = run
    opened: dict[str, float] = {}
    spans: list[tuple[str, float, float]] = []
    for stamp, line in lines:
        if match := _START.match(line):
            opened[match["stage"]] = stamp
        elif (match := _DONE.match(line)) and match["stage"] in opened:
            spans.append((match["stage"], opened.pop(match["stage"]), stamp))
    spans.sort(key=lambda span: span[1])

    def peak(begin: float, end: float) -> int | None:
        inside = [rss for stamp, rss in samples if begin <= stamp <= end]
        return max(inside, default=None)

    rows = []
    if spans:
        first, last = spans[0][1], max(end for _, _, end in spans)
        rows.append({"stage": "(start-up: interpreter, imports)", "seconds": round(first - started, 3),
                     "peak_rss_bytes": peak(started, first)})
    for name, begin, end in spans:
        seconds = timings.get(name, parity_timings.get(name, round(end - begin, 3)))
        rows.append({"stage": name, "seconds": seconds, "peak_rss_bytes": peak(begin, end)})
    for name in (n for n in parity_timings if n.startswith("parity: run ")):
        rows.append({"stage": name, "seconds": parity_timings[name], "peak_rss_bytes": None})
    if "parity" in timings and "parity: total" in parity_timings:
        rows.append({"stage": "parity: write report", "peak_rss_bytes": None,
                     "seconds": round(timings["parity"] - parity_timings["parity: total"], 3)})
    if spans:
        rows.append({"stage": "(after the last stage: manifest, rename, exit)",
                     "seconds": round(ended - last, 3), "peak_rss_bytes": peak(last, ended)})
    return rows
