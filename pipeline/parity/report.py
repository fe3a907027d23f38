"""Write a parity report folder: report.json, report.html and summary.txt.

:func:`write_report` publishes the folder through :class:`pipeline.runtime.artifacts.AtomicOutputDir`:
it appears whole or not at all (with a ``manifest.json``), an earlier report of this tool is
replaced, and a folder this tool did not write is refused unless ``force`` is set.
:func:`write_report_files` writes the three files into a folder that is itself still being
written (the ``report/`` subfolder of an export, published with the export).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.runtime.artifacts import AtomicOutputDir

from .report_html import render
from .report_json import dumps
from .run import ParityResult
from .terminal import summary_table

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
SUMMARY_TXT = "summary.txt"


def write_report(result: ParityResult, report_dir: Path, *, force: bool = False) -> Path:
    """Publish ``report_dir`` with the three files; returns the path of report.json."""
    output = AtomicOutputDir(Path(report_dir), force=force)
    with output as temp:
        write_report_files(result, temp)
        output.manifest["kind"] = "parity-report"
    return Path(report_dir) / REPORT_JSON


def write_report_files(result: ParityResult, folder: Path) -> Path:
    """Write the three files into ``folder`` (created if missing); returns report.json's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT_JSON).write_text(dumps(result), encoding="utf-8")
    (folder / REPORT_HTML).write_text(render(result), encoding="utf-8")
    (folder / SUMMARY_TXT).write_text(summary_table(result), encoding="utf-8")
    return folder / REPORT_JSON
