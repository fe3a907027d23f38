"""Write a parity report folder: report.json, report.html and summary.txt.

The folder appears whole or not at all: the files are written into a hidden temp sibling
(``.<name>.partial-*``) which is then renamed to ``report_dir``. An existing ``report_dir`` is
replaced (moved aside, the new one renamed in, the old one deleted). Called inside a folder that
is itself still being written (e.g. an output folder published by
:class:`pipeline.artifacts.AtomicOutputDir`), the report is simply one more subfolder of it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .report_html import render
from .report_json import dumps
from .run import ParityResult
from .terminal import summary_table

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
SUMMARY_TXT = "summary.txt"


def write_report(result: ParityResult, report_dir: Path) -> Path:
    """Write the three files into ``report_dir`` atomically; returns the path of report.json."""
    report_dir = Path(report_dir).absolute()
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}.partial-", dir=report_dir.parent))
    temp.chmod(0o755)  # mkdtemp makes it private; a report is meant to be read
    try:
        (temp / REPORT_JSON).write_text(dumps(result), encoding="utf-8")
        (temp / REPORT_HTML).write_text(render(result), encoding="utf-8")
        (temp / SUMMARY_TXT).write_text(summary_table(result), encoding="utf-8")
        _replace(temp, report_dir)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return report_dir / REPORT_JSON


def _replace(new: Path, destination: Path) -> None:
    if not destination.exists():
        new.rename(destination)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old-", dir=destination.parent))
    old = destination.rename(trash / destination.name)
    try:
        new.rename(destination)
    except OSError:
        old.rename(destination)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
