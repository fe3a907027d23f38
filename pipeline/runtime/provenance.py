"""What a run needs to be reproduced: the tool's version and git commit, the command line, and
the sha256 of every input file it read. Recorded in ``report.json`` (``provenance``) and in an
output folder's ``manifest.json``.

- ``tool``: ``name``, ``version`` (the installed distribution's; null when not installed) and
  ``git``: ``{"commit", "dirty"}`` of the checkout holding the package's source folder, or null
  when that folder is not in a git checkout (installed from a wheel) or git is missing.
- ``command``: ``argv`` (``sys.argv`` with the program named ``python -m pipeline``), ``shell``
  (the same as one shell-quoted line) and ``cwd``, or null when the run did not come from the CLI.
- ``inputs``: one ``{"role", "path", "bytes", "sha256"}`` per file read, in the order given.
  Paths inside ``relative_to`` (an output folder still being written) are recorded relative to it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

TOOL_NAME = "autovc-onnx-tf"
PROGRAM = "python -m pipeline"
GIT_TIMEOUT_S = 10
SOURCE_DIR = Path(__file__).resolve().parents[1]  # the pipeline package

_command: dict[str, Any] | None = None


def record_command(args: Sequence[str], program: str = PROGRAM) -> None:
    """Remember the command line of this process (the CLI calls this with its arguments)."""
    global _command
    argv = [program, *map(str, args)]
    _command = {
        "argv": argv,
        "shell": " ".join([program, *(shlex.quote(a) for a in argv[1:])]),
        "cwd": os.getcwd(),
    }


def command() -> dict[str, Any] | None:
    """The recorded command line, or None when the run was not started from the CLI."""
    return None if _command is None else {**_command, "argv": list(_command["argv"])}


def tool() -> dict[str, Any]:
    """Name, installed version and git state of this tool."""
    try:
        version: str | None = metadata.version(TOOL_NAME)
    except metadata.PackageNotFoundError:
        version = None
    return {"name": TOOL_NAME, "version": version, "git": git_state(SOURCE_DIR)}


def git_state(folder: Path) -> dict[str, Any] | None:
    """``{"commit": HEAD, "dirty": bool}`` of the git checkout that tracks ``folder``; None when
    ``folder`` is not tracked by one or git cannot be run. Never raises, never writes to the
    repository (no optional locks, so not even an index refresh)."""
    head = _git(folder, "rev-parse", "--verify", "HEAD")
    # The folder must be part of that checkout, not merely lie inside some other repository
    # (e.g. an installed copy under a virtual environment that sits in a checkout).
    tracked = _git(folder, "ls-files", "--", ".")
    if not head or not tracked:
        return None
    status = _git(folder, "status", "--porcelain", "--", ":/")
    return {"commit": head.strip(), "dirty": None if status is None else bool(status.strip())}


def _git(folder: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
            env=env, stdin=subprocess.DEVNULL, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def display_path(path: Path | str, relative_to: Path | None = None) -> str:
    """``path`` as given, or relative to ``relative_to`` when it lies inside it."""
    if relative_to is not None:
        try:
            return Path(path).absolute().relative_to(Path(relative_to).absolute()).as_posix()
        except ValueError:
            pass
    return str(path)


def input_files(files: Iterable[tuple[str, Path | str | None]], relative_to: Path | None = None) -> list[dict[str, Any]]:
    """``{"role", "path", "bytes", "sha256"}`` per ``(role, path)``; None paths are skipped, a
    file that cannot be read is recorded with null size and digest."""
    records = []
    for role, path in files:
        if path is None:
            continue
        try:
            size: int | None = Path(path).stat().st_size
            digest: str | None = sha256_file(Path(path))
        except OSError:
            size = digest = None
        records.append({"role": role, "path": display_path(path, relative_to), "bytes": size, "sha256": digest})
    return records


def collect(files: Iterable[tuple[str, Path | str | None]] = (), relative_to: Path | None = None) -> dict[str, Any]:
    """The ``provenance`` object: tool, command and input files."""
    return {"tool": tool(), "command": command(), "inputs": input_files(files, relative_to)}


def build_input_files(
    *,
    checkpoint: Path | None = None,
    mel_files: Sequence[Path] | None = None,
    wav_files: Sequence[Path] | None = None,
    emb_src: Path | None = None,
    emb_trg: Path | None = None,
    speaker_encoder: Path | None = None,
    **_: Any,
) -> list[tuple[str, Path | None]]:
    """The files an export or parity run reads for its weights and input batch (the keyword
    arguments of :func:`pipeline.models.autovc.inputs.build_inputs`; other keys are ignored)."""
    return [
        ("checkpoint", checkpoint),
        *(("mel", Path(p)) for p in mel_files or []),
        *(("wav", Path(p)) for p in wav_files or []),
        ("emb_src", emb_src),
        ("emb_trg", emb_trg),
        ("speaker_encoder", speaker_encoder),
    ]
